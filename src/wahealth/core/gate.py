"""The pre-send gate: may this phone number send (this template) right now, and if not, why.

One request of the caller's limit, whatever it checks. The steps, after authentication and
admission: parse → the space is the caller's → resolve the phone number (and template) in
it → their health (cache first, at most one upstream call per node, as every query) and
their catalog status → `gate_verdict`, the domain's pure rule.

The catalog statuses are read per WABA and remembered for `ttl_seconds` (1 s, like the
directory's lookups), so a busy gate costs one catalog read per WABA a second. Verdicts
are remembered per (reports, statuses, strictness): a repeated question about unchanged
reports costs lookups, not the rule again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from wahealth.core.directory import TtlCache
from wahealth.core.errors import NodeNotFound
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import Principal
from wahealth.core.queries import (
    REMEMBER_SECONDS,
    ByNodeId,
    ByPhoneNumber,
    ByTemplate,
    Credential,
    HealthQueries,
)
from wahealth.domain import HealthReport, NodeKind, ReportSource
from wahealth.domain.gate import GateNode, Verdict, gate_verdict
from wahealth.domain.languages import ENGLISH, Language

STATUS_TTL_SECONDS = 1.0
# A repeat of the same question (same credential, same query string) within
# REMEMBER_SECONDS skips the lookups: as for the dialects, a revoked token stops working
# within about a second.
REMEMBERED_MAX_ENTRIES = 20_000
REMEMBERED_MAX_BYTES = 16 * 1024 * 1024
VERDICTS_MAX_ENTRIES = 10_000
VERDICTS_MAX_BYTES = 16 * 1024 * 1024

# A report as the health core serves it: the same moment and source is the same report.
_ReportKey = tuple[str, datetime, ReportSource]
_VerdictKey = tuple[_ReportKey, str | None, _ReportKey | None, str | None, bool, Language]


class CatalogStatuses(Protocol):
    """A WABA's phone numbers and templates as the catalog holds them (storage implements it).

    Each item has an `id`; its `status` (when it has one) is what the gate weighs.
    """

    async def phone_numbers_of_waba(self, waba_id: str) -> Sequence[Any]: ...

    async def templates_of_waba(self, waba_id: str) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class GateQuery:
    """What to check: a phone number (by number or id) and, optionally, a template."""

    space_id: str
    phone: ByPhoneNumber | ByNodeId
    template: ByTemplate | ByNodeId | None = None
    strict: bool = False
    lang: Language = ENGLISH  # of the reasons' texts (not the template's language)


@dataclass(frozen=True, slots=True)
class GateAnswer:
    """The verdict, how old its oldest report was when given (seconds), its texts' language."""

    verdict: Verdict
    age_seconds: float
    language: Language = ENGLISH


@dataclass(frozen=True, slots=True)
class _Node:
    node_id: str
    waba_id: str
    status: str | None  # the catalog's


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What a gate question resolved to, remembered briefly for repeats."""

    expires_at: float
    principal: Principal
    strict: bool
    lang: Language
    phone: _Node
    template: _Node | None


@dataclass(frozen=True, slots=True)
class _WabaStatuses:
    phone_numbers: Mapping[str, str | None]
    templates: Mapping[str, str | None]


class PreSendGate:
    """The gate's use case, for an authenticated caller (`check`) or a known one (`check_as`)."""

    def __init__(
        self,
        queries: HealthQueries,
        catalog: CatalogStatuses,
        *,
        ttl_seconds: float = STATUS_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queries = queries
        self._catalog = catalog
        self._clock = clock
        self._monotonic = monotonic
        self._remembered: BoundedLru[tuple[str, ...], _Resolved] = BoundedLru(
            REMEMBERED_MAX_ENTRIES, REMEMBERED_MAX_BYTES
        )
        self._statuses: TtlCache[str, _WabaStatuses] = TtlCache(ttl_seconds, max_entries=10_000)
        self._verdicts: BoundedLru[_VerdictKey, Verdict] = BoundedLru(
            VERDICTS_MAX_ENTRIES, VERDICTS_MAX_BYTES
        )

    async def check(
        self,
        credential: Credential,
        query: GateQuery | Callable[[], GateQuery],
        *,
        same_as: tuple[str, ...] | None = None,
    ) -> GateAnswer:
        """Authenticate, count one request, then check; a `CoreError` when it cannot.

        The query may be a parser: it runs after admission, so bad parameters count too.
        `same_as` names the request as sent (credential and query): a repeat within
        `REMEMBER_SECONDS` counts against the same limit but skips the credential, catalog
        and status lookups, as a repeated dialect query does.
        """
        if same_as is not None:
            hit = self._remembered.get(same_as)
            if hit is not None and hit.expires_at > self._monotonic():
                await self._queries.admit(hit.principal)
                return await self._verdict_of(hit)
        principal = await self._queries.caller(credential)
        resolved = await self._resolve_all(principal, query() if callable(query) else query)
        if same_as is not None:
            size = sum(len(part) for part in same_as) + 400
            self._remembered.put(same_as, resolved, size)
        return await self._verdict_of(resolved)

    async def check_as(self, principal: Principal, query: GateQuery) -> GateAnswer:
        """The verdict for an account already known (the command line, in-process)."""
        return await self._verdict_of(await self._resolve_all(principal, query))

    async def _resolve_all(self, principal: Principal, query: GateQuery) -> _Resolved:
        phone_id, phone_waba = await self._resolve(principal, query, query.phone, "phone")
        phone_status = (await self._of_waba(phone_waba)).phone_numbers
        if phone_id not in phone_status:
            raise NodeNotFound(
                f"node {phone_id} is not a phone number of space {query.space_id!r}", what="phone"
            )
        phone = _Node(phone_id, phone_waba, phone_status[phone_id])
        expires_at = self._monotonic() + REMEMBER_SECONDS
        if query.template is None:
            return _Resolved(expires_at, principal, query.strict, query.lang, phone, None)
        template_id, template_waba = await self._resolve(
            principal, query, query.template, "template"
        )
        template_status = (await self._of_waba(template_waba)).templates
        if template_id not in template_status:
            raise NodeNotFound(
                f"node {template_id} is not a template of space {query.space_id!r}",
                what="template",
            )
        template = _Node(template_id, template_waba, template_status[template_id])
        return _Resolved(expires_at, principal, query.strict, query.lang, phone, template)

    async def _verdict_of(self, resolved: _Resolved) -> GateAnswer:
        health = self._queries.health
        phone, template = resolved.phone, resolved.template
        # One after the other: a hit costs no task and no turn of the event loop. Only when
        # both miss does the template's fetch wait for the number's (each is bounded by the
        # query deadline, and the monitor keeps a fleet's reports cached).
        phone_report = await health.get(phone.node_id, waba_id=phone.waba_id)
        template_report = (
            None
            if template is None
            else await health.get(template.node_id, waba_id=template.waba_id)
        )
        key: _VerdictKey = (
            _key_of(phone_report),
            phone.status,
            None if template_report is None else _key_of(template_report),
            None if template is None else template.status,
            resolved.strict,
            resolved.lang,
        )
        verdict = self._verdicts.get(key)
        if verdict is None:
            nodes = [GateNode(phone_report, NodeKind.PHONE_NUMBER, phone.status)]
            if template is not None and template_report is not None:
                nodes.append(GateNode(template_report, NodeKind.MESSAGE_TEMPLATE, template.status))
            verdict = gate_verdict(nodes, strict=resolved.strict, lang=resolved.lang)
            size = sum(len(r.description or "") + len(r.solution or "") for r in verdict.reasons)
            self._verdicts.put(key, verdict, size + 100 * len(verdict.reasons) + 300)
        now = datetime.fromtimestamp(self._clock(), UTC)
        return GateAnswer(verdict, verdict.age_seconds(now), resolved.lang)

    async def _resolve(
        self,
        principal: Principal,
        query: GateQuery,
        node: ByPhoneNumber | ByTemplate | ByNodeId,
        what: str,
    ) -> tuple[str, str]:
        try:
            return await self._queries.resolve_in_space(principal, query.space_id, node)
        except NodeNotFound as exc:
            if exc.what == "space" or not isinstance(node, ByNodeId):
                raise
            # An id of another space, or no node at all: say what the caller asked for.
            label = "phone number" if what == "phone" else what
            raise NodeNotFound(
                f"{label} id {node.node_id} is not in space {query.space_id!r}", what=what
            ) from None

    async def _of_waba(self, waba_id: str) -> _WabaStatuses:
        async def load() -> _WabaStatuses:
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            templates = await self._catalog.templates_of_waba(waba_id)
            return _WabaStatuses(
                {str(n.id): getattr(n, "status", None) for n in numbers},
                {str(t.id): getattr(t, "status", None) for t in templates},
            )

        return await self._statuses.get(waba_id, load)


def _key_of(report: HealthReport) -> _ReportKey:
    return (report.node_id, report.fetched_at, report.source)
