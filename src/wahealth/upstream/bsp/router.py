"""Each node's health from where its space takes it: Meta, 360dialog or Alibaba CAMS.

`BspRouter` stands where the Graph client stood for the health core, the fleet refresh
and the catalog sync (the same calls: `health`, `batch_health`, `phone_numbers`,
`message_templates`), so the cache, coalescing, stale-if-error, history, alerts and
dialects above it are the same for every upstream. A node of a BSP space goes to its
BSP; every other node, and every Graph read, to Meta.

The BSP nodes are learned by `discover`: one call per 360dialog channel (its answer
names the phone-number id and WABA) and per CAMS number or template (its answer names
the WABA). Their catalog (numbers and templates per WABA) is served from what was
learned, so the catalog sync writes it like Meta's. Meta's call budget counts only the
nodes sent to Meta (`meta_calls`); each BSP keeps its own limits (see `d360`, `cams`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from wahealth.core.ports import RateLimiter, UpstreamFailure
from wahealth.domain import EntityType, HealthReport, NodeKind
from wahealth.upstream.bsp.cams_report import CamsTarget
from wahealth.upstream.bsp.config import BspSpace, CamsAccount
from wahealth.upstream.bsp.d360 import D360Client, channel_key
from wahealth.upstream.bsp.holds import Holds
from wahealth.upstream.bsp.routes import CamsRoute, D360Route, Route
from wahealth.upstream.connections import ConnectedGraph
from wahealth.upstream.graph import GraphClient
from wahealth.upstream.records import PhoneNumberRecord, TemplateRecord

if TYPE_CHECKING:  # the Alibaba SDK (hundreds of modules) loads with the first CAMS space
    from wahealth.upstream.bsp.cams import CamsClient

log = structlog.get_logger(__name__)

# Told each space's WABAs found by a discovery after the first.
Placed = Callable[[dict[str, list[str]]], Awaitable[None]]

BSP_CONCURRENCY = 4  # BSP calls in flight at once within one batch
REDISCOVER_SECONDS = 30.0


@dataclass
class _Waba:
    """A BSP WABA's catalog, as discovery learned it."""

    space_id: str
    phone_numbers: dict[str, PhoneNumberRecord] = field(default_factory=dict)
    templates: dict[str, TemplateRecord] = field(default_factory=dict)


class BspRouter:
    """The health core's upstream: Meta for Meta spaces, each BSP for its own."""

    def __init__(
        self,
        graph: GraphClient | ConnectedGraph,
        *,
        limiter: RateLimiter,
        timeout_seconds: float = 10.0,
        d360_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.graph = graph
        self._limiter = limiter
        self._holds = Holds()
        self._d360 = D360Client(
            transport=d360_transport, timeout_seconds=timeout_seconds, holds=self._holds
        )
        self._timeout = timeout_seconds
        self._clock = clock
        self._spaces: dict[str, BspSpace] = {}
        self._cams: dict[str, CamsClient] = {}
        self._routes: dict[str, Route] = {}
        self._wabas: dict[str, _Waba] = {}
        self._undiscovered: set[str] = set()
        self._placed: Placed | None = None
        self._last_discovery = float("-inf")

    # --- configuration and discovery -------------------------------------------------------

    def configure(self, spaces: Iterable[BspSpace], placed: Placed | None = None) -> None:
        """Take these spaces' health from their BSPs (replacing any earlier set).

        `placed` is told what a later discovery (of a space its first one missed) found,
        each space's WABAs, so their catalog can be written.
        """
        self._placed = placed
        self._spaces = {space.space_id: space for space in spaces}
        self._cams = {
            space.space_id: self._cams_client(space.cams)
            for space in self._spaces.values()
            if space.kind == "cams" and space.cams is not None
        }
        self._routes, self._wabas = {}, {}
        self._undiscovered = set(self._spaces)

    @property
    def spaces(self) -> Sequence[BspSpace]:
        return tuple(self._spaces.values())

    def _cams_client(self, account: CamsAccount) -> CamsClient:
        from wahealth.upstream.bsp.cams import CamsClient  # loaded here: see the import above

        return CamsClient(
            account, limiter=self._limiter, holds=self._holds, timeout_seconds=self._timeout
        )

    async def discover(self, space_ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Learn the spaces' nodes from their BSPs; each space's WABAs (its catalog's keys).

        What cannot be asked now (the BSP is down) is left out and asked again later.
        """
        self._last_discovery = self._clock()
        wanted = list(self._spaces) if space_ids is None else list(space_ids)
        found: dict[str, list[str]] = {}
        for space_id in wanted:
            space = self._spaces.get(space_id)
            if space is None:
                continue
            complete = await (
                self._discover_d360(space) if space.kind == "d360" else self._discover_cams(space)
            )
            if complete:
                self._undiscovered.discard(space_id)
            found[space_id] = [w for w, waba in self._wabas.items() if waba.space_id == space_id]
        return found

    async def _discover_d360(self, space: BspSpace) -> bool:
        complete = True
        for channel in space.channels:
            try:
                report = await self._d360.health(channel)
            except UpstreamFailure as exc:
                log.warning(
                    "cannot discover a 360dialog channel",
                    space_id=space.space_id,
                    channel=channel_key(channel),
                    error=str(exc),
                )
                complete = False
                continue
            waba = report.entity(EntityType.WABA)
            if waba is None:
                log.warning("360dialog's answer names no WABA", space_id=space.space_id)
                complete = False
                continue
            self._routes[report.node_id] = D360Route(space.space_id, channel)
            self._routes.setdefault(waba.id, D360Route(space.space_id, channel, waba.id))
            record = PhoneNumberRecord(report.node_id, channel.phone_number or "")
            self._waba(waba.id, space.space_id).phone_numbers[record.id] = record
        return complete

    async def _discover_cams(self, space: BspSpace) -> bool:
        client = self._cams.get(space.space_id)
        if client is None or space.cams is None:
            return False
        targets = [
            CamsTarget(space.space_id, NodeKind.PHONE_NUMBER, phone_number=number)
            for number in space.cams.phone_numbers
        ] + [
            CamsTarget(
                space.space_id,
                NodeKind.MESSAGE_TEMPLATE,
                template_code=template.code,
                language=template.language,
            )
            for template in space.cams.templates
        ]
        gate = asyncio.Semaphore(BSP_CONCURRENCY)  # each call then waits for its slot alone

        async def ask(target: CamsTarget) -> HealthReport:
            async with gate:
                return await CamsRoute(space.space_id, client, target).health()

        results = await asyncio.gather(*(ask(t) for t in targets), return_exceptions=True)
        complete = True
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UpstreamFailure):
                    raise result
                log.warning(
                    "cannot discover a CAMS node",
                    space_id=space.space_id,
                    node_type=target.kind.value,
                    error=str(result),
                )
                complete = False
                continue
            waba = result.entity(EntityType.WABA)
            if waba is None:
                complete = False
                continue
            self._routes[target.node_id] = CamsRoute(space.space_id, client, target)
            waba_target = CamsTarget(space.space_id, NodeKind.WABA, waba_id=waba.id)
            self._routes.setdefault(waba.id, CamsRoute(space.space_id, client, waba_target))
            entry = self._waba(waba.id, space.space_id)
            if target.kind is NodeKind.PHONE_NUMBER:
                number = target.phone_number or ""
                entry.phone_numbers[target.node_id] = PhoneNumberRecord(target.node_id, number)
            else:
                entry.templates[target.node_id] = TemplateRecord(
                    target.node_id, target.template_code or "", target.language or ""
                )
        return complete

    def _waba(self, waba_id: str, space_id: str) -> _Waba:
        entry = self._wabas.get(waba_id)
        if entry is None or entry.space_id != space_id:
            entry = self._wabas[waba_id] = _Waba(space_id)
        return entry

    # --- the upstream's calls ----------------------------------------------------------------

    def is_bsp(self, node_id: str) -> bool:
        return node_id in self._routes

    def meta_calls(self, node_ids: Sequence[str]) -> int:
        """How many of these nodes are asked of Meta (what Meta's call budget counts)."""
        return sum(1 for node_id in node_ids if node_id not in self._routes)

    async def health(
        self, node_id: str, *, attempts: int | None = None, kind: NodeKind | None = None
    ) -> HealthReport:
        route = await self._route(node_id)
        if route is None:
            return await self.graph.health(node_id, attempts=attempts, kind=kind)
        return await self._ask(route)

    async def batch_health(
        self, node_ids: Sequence[str], *, kinds: Mapping[str, NodeKind] | None = None
    ) -> dict[str, HealthReport | Exception]:
        """Meta's nodes in Graph batches, BSP nodes each from its BSP, a few at a time."""
        unique = list(dict.fromkeys(node_ids))
        bsp = [n for n in unique if n in self._routes]
        meta = [n for n in unique if n not in self._routes]
        results: dict[str, HealthReport | Exception] = {}
        if meta:
            results.update(await self.graph.batch_health(meta, kinds=kinds))
        if bsp:
            gate = asyncio.Semaphore(BSP_CONCURRENCY)

            async def one(node_id: str) -> None:
                async with gate:
                    try:
                        results[node_id] = await self._ask(self._routes[node_id])
                    except UpstreamFailure as exc:
                        results[node_id] = exc

            await asyncio.gather(*(one(n) for n in bsp))
        return {node_id: results[node_id] for node_id in unique}

    async def _ask(self, route: Route) -> HealthReport:
        if isinstance(route, D360Route):
            return await route.health(self._d360)
        return await route.health()

    async def _route(self, node_id: str) -> Route | None:
        route = self._routes.get(node_id)
        if route is not None or not self._undiscovered:
            return route
        # A space not (fully) discovered at start may own this node: ask its BSP again.
        if self._clock() - self._last_discovery >= REDISCOVER_SECONDS:
            found = await self.discover(list(self._undiscovered))
            if self._placed is not None:
                try:
                    await self._placed(found)
                except Exception:
                    log.exception("cannot write the catalog of rediscovered BSP nodes")
        return self._routes.get(node_id)

    async def phone_numbers(self, waba_id: str) -> Sequence[Any]:
        entry = self._wabas.get(waba_id)
        if entry is None:
            return await self.graph.phone_numbers(waba_id)
        return list(entry.phone_numbers.values())

    async def message_templates(
        self, waba_id: str, *, name: str | None = None, language: str | None = None
    ) -> Sequence[Any]:
        entry = self._wabas.get(waba_id)
        if entry is None:
            return await self.graph.message_templates(waba_id, name=name, language=language)
        return [
            t
            for t in entry.templates.values()
            if (name is None or t.name == name) and (language is None or t.language == language)
        ]

    async def read(self, path: str, params: Mapping[str, str]) -> Any:
        return await self.graph.read(path, params)

    async def aclose(self) -> None:
        await self._d360.aclose()
