"""The one use case every dialect calls: the health of a node, for the caller who asks.

A dialect parses its request into a credential and a query, makes one call, and renders
what comes back (or the `CoreError` raised, by its error table). The steps are always
the same and in the same order: authenticate → admit (the account's rate limit) →
parse the query → ownership → resolve names to Meta ids → health.

The query may be given as a zero-argument parser: it then runs after admission, so a
caller without a valid credential learns nothing about which parameters are wrong, and
parameter errors still count against the caller's limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from wahealth.core.directory import Directory
from wahealth.core.errors import (
    AccessDenied,
    NodeNotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
)
from wahealth.core.health import HealthService
from wahealth.core.immediate import (
    ImmediateNonceStore,
    ImmediateRateLimiter,
    immediate_limiter,
    immediate_nonces,
)
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import (
    BackendUnavailable,
    NonceStore,
    Principal,
    RateLimiter,
    SignatureVerifier,
)
from wahealth.domain import HealthReport
from wahealth.domain.records import Transition

log = structlog.get_logger(__name__)

# What a client is told to wait when a backend is down: long enough not to hammer us, short
# enough that callers notice the recovery of a restarted Redis within a second or two.
BACKEND_RETRY_AFTER_SECONDS = 1.0


# --- Credentials: how the caller proves who it is -----------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A 360dialog `D360-API-KEY` (bound to one phone number)."""

    value: str | None


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A Graph access token (`Authorization: Bearer` or `access_token=`)."""

    value: str | None


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A signed request (CAMS); checked by the `SignatureVerifier` port."""

    request: Any


@dataclass(frozen=True, slots=True)
class VerifiedCaller:
    """A caller whose signed request the dialect has already verified (and its nonce claimed)."""

    principal: Principal


Credential = ApiKey | BearerToken | SignedCall | VerifiedCaller


# --- Queries: which node --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByNodeId:
    """A Meta node id the caller's account owns (phone number, template or WABA)."""

    node_id: str


@dataclass(frozen=True, slots=True)
class KeyNumber:
    """The phone number the caller's API key is bound to (360dialog)."""


@dataclass(frozen=True, slots=True)
class ByPhoneNumber:
    """A phone number as users write it (`86138…`), within a space."""

    space_id: str
    phone_number: str


@dataclass(frozen=True, slots=True)
class ByTemplate:
    """A message template by code and language, within a space."""

    space_id: str
    code: str
    language: str


@dataclass(frozen=True, slots=True)
class ByWaba:
    """A WABA of a space."""

    space_id: str
    waba_id: str


Query = ByNodeId | KeyNumber | ByPhoneNumber | ByTemplate | ByWaba
QueryParser = Callable[[], Query]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Up to `limit` transitions of a node, older than transition id `before` when given."""

    node_id: str
    limit: int
    before: int | None = None


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    """One page of transitions; `next_before` is the cursor of the next page, if any."""

    node_id: str
    transitions: tuple[Transition, ...]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class Answer:
    """The health report for a query, and the query as parsed (renderers echo parts of it)."""

    report: HealthReport
    query: Query
    node_id: str


class TransitionLog(Protocol):
    """A node's transitions, newest first (storage implements it)."""

    async def history(
        self, node_id: str, limit: int = 50, before_id: int | None = None
    ) -> Sequence[Transition]: ...


@dataclass(frozen=True, slots=True)
class FailClosedNonces:
    """A nonce store whose outage refuses the request (`ServiceUnavailable`).

    Signature checks claim nonces through this, so an unreachable store answers the
    dialect's own "try again" error and never admits a request whose nonce could not
    be recorded.
    """

    store: NonceStore

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        try:
            return await self.store.claim(nonce, ttl_seconds)
        except BackendUnavailable as exc:
            log.warning("nonce store unavailable; refusing the request", error=str(exc))
            raise ServiceUnavailable(
                "the replay check is temporarily unavailable",
                retry_after=BACKEND_RETRY_AFTER_SECONDS,
            ) from exc

    def immediate(self) -> ImmediateNonceStore | None:
        """The store's synchronous twin, if it has one (an in-process store never fails)."""
        return immediate_nonces(self.store)

    async def aclose(self) -> None:
        await self.store.aclose()


# A caller that asks again within this long skips the credential and catalog lookups
# (their answers are remembered, bounded): half the directory's one second, so a revoked
# key still stops working within about a second.
REMEMBER_SECONDS = 0.5
REMEMBERED_MAX_ENTRIES = 50_000
REMEMBERED_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Resolved:
    expires_at: float
    principal: Principal
    query: Query
    node_id: str
    waba_id: str


@dataclass(frozen=True, slots=True)
class HealthQueries:
    """Health (and history) of a node for an authenticated, rate-limited caller."""

    directory: Directory
    health: HealthService
    limiter: RateLimiter
    signatures: SignatureVerifier
    transitions: TransitionLog | None = None
    clock: Callable[[], float] = time.monotonic
    _remembered: BoundedLru[Hashable, _Resolved] = field(
        default_factory=lambda: BoundedLru(REMEMBERED_MAX_ENTRIES, REMEMBERED_MAX_BYTES)
    )
    _immediate: ImmediateRateLimiter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_immediate", immediate_limiter(self.limiter))

    def repeat_now(
        self, same_as: tuple[str, ...], principal: Principal | None = None
    ) -> Answer | None:
        """A repeat's answer when nothing needs awaiting; None: call `health_of` instead.

        That is: the request was resolved moments ago (see `health_of`'s `same_as`), the
        node's report is fresh in an in-process cache, and the limiter decides at once. A
        signed call passes its verified `principal`, which must be the one remembered.
        Nothing is counted unless an answer (or `Throttled`) comes back.
        """
        limiter = self._immediate
        if limiter is None:
            return None
        hit = self._recalled(same_as)
        if hit is None or (principal is not None and hit.principal != principal):
            return None
        report = self.health.get_now(hit.node_id)
        if report is None:
            return None
        account = hit.principal
        decision = limiter.acquire_now(account.account, account.qps)
        if not decision.allowed:
            raise Throttled(decision.retry_after)
        return Answer(report, hit.query, hit.node_id)

    async def health_of(
        self,
        credential: Credential | Callable[[], ApiKey | BearerToken],
        query: Query | QueryParser,
        *,
        same_as: tuple[str, ...] | None = None,
    ) -> Answer:
        """The report for `query` as `credential` may see it; a `CoreError` otherwise.

        `same_as` names the request in raw form (credential and query as sent): a repeat
        within `REMEMBER_SECONDS` reuses the earlier lookups, and the credential and query
        (either may be given as a zero-argument parser) are not even parsed. A signed call
        (never given lazily) is verified every time; then only its query's resolution is
        reused.
        """
        signed = isinstance(credential, SignedCall | VerifiedCaller)
        hit = self._recalled(same_as)
        if hit is not None and not signed:
            await self.admit(hit.principal)
            return await self._answer(hit.query, hit.node_id, hit.waba_id)
        principal = await self.caller(credential() if callable(credential) else credential)
        if hit is not None and hit.principal == principal:
            return await self._answer(hit.query, hit.node_id, hit.waba_id)
        parsed = query() if callable(query) else query
        node_id, waba_id = await self.resolve(principal, parsed)
        if same_as is not None:
            resolved = _Resolved(
                self.clock() + REMEMBER_SECONDS, principal, parsed, node_id, waba_id
            )
            self._remembered.put(same_as, resolved, sum(len(part) for part in same_as) + 200)
        return await self._answer(parsed, node_id, waba_id)

    def _recalled(self, same_as: tuple[str, ...] | None) -> _Resolved | None:
        if same_as is None:
            return None
        hit = self._remembered.get(same_as)
        return hit if hit is not None and hit.expires_at > self.clock() else None

    async def _answer(self, query: Query, node_id: str, waba_id: str) -> Answer:
        return Answer(await self.health.get(node_id, waba_id=waba_id), query, node_id)

    async def history_of(
        self, credential: Credential, page: HistoryPage | Callable[[], HistoryPage]
    ) -> HistoryAnswer:
        """A page of an owned node's transitions, newest first, and the cursor to the next."""
        principal = await self.caller(credential)
        parsed = page() if callable(page) else page
        await self.resolve(principal, ByNodeId(parsed.node_id))
        if self.transitions is None:
            return HistoryAnswer(parsed.node_id, (), None)
        # One more than asked for says whether a next page exists.
        rows = await self.transitions.history(parsed.node_id, parsed.limit + 1, parsed.before)
        shown = tuple(rows[: parsed.limit])
        more = len(rows) > parsed.limit and bool(shown)
        return HistoryAnswer(parsed.node_id, shown, shown[-1].id if more else None)

    async def caller(self, credential: Credential) -> Principal:
        """Authenticate and count one request against the caller's account."""
        principal = await self.authenticate(credential)
        await self.admit(principal)
        return principal

    async def authenticate(self, credential: Credential) -> Principal:
        if isinstance(credential, SignedCall):
            return await self.signatures.verify(credential.request)
        if isinstance(credential, VerifiedCaller):
            return credential.principal
        if isinstance(credential, ApiKey):
            return await self.directory.d360_principal(credential.value)
        return await self.directory.graph_principal(credential.value)

    async def admit(self, principal: Principal, cost: int = 1) -> None:
        """Count `cost` requests (one, unless a bulk call); raise Throttled past the limit.

        Raises ServiceUnavailable when the limiter cannot be asked: an unlimited gateway
        would spend the shared Meta budget, so it fails closed.
        """
        try:
            decision = await self.limiter.acquire(principal.account, principal.qps, cost)
        except BackendUnavailable as exc:
            log.warning(
                "rate limiter unavailable; refusing the request",
                account=principal.account,
                error=str(exc),
            )
            raise ServiceUnavailable(
                "the rate limiter is temporarily unavailable",
                retry_after=BACKEND_RETRY_AFTER_SECONDS,
            ) from exc
        if not decision.allowed:
            raise Throttled(decision.retry_after)

    async def resolve(self, principal: Principal, query: Query) -> tuple[str, str]:
        """(Meta node id, its WABA's id) of a query, checking the caller owns the node."""
        directory = self.directory
        if isinstance(query, ByNodeId):
            _, waba_id = await directory.check_node(principal, query.node_id)
            return query.node_id, waba_id
        if isinstance(query, KeyNumber):
            if principal.phone_number_id is None:
                raise Unauthenticated("this credential is not bound to a phone number")
            # A key bound to a number outside its account's spaces answers nothing.
            _, waba_id = await directory.check_node(principal, principal.phone_number_id)
            return principal.phone_number_id, waba_id
        await directory.check_space(principal, query.space_id)
        if isinstance(query, ByPhoneNumber):
            return await directory.phone_number_id(query.space_id, query.phone_number)
        if isinstance(query, ByTemplate):
            return await directory.template_id(query.space_id, query.code, query.language)
        await directory.check_waba(query.space_id, query.waba_id)
        return query.waba_id, query.waba_id

    async def resolve_in_space(
        self, principal: Principal, space_id: str, query: ByNodeId | ByPhoneNumber | ByTemplate
    ) -> tuple[str, str]:
        """(Meta node id, its WABA's id) of a node that must be in `space_id` of the caller.

        An unknown space, a node of another space and a node not in the catalog are all
        `NodeNotFound`, each saying which.
        """
        directory = self.directory
        try:
            await directory.check_space(principal, space_id)
        except AccessDenied:
            raise NodeNotFound(
                f"space {space_id[:128]!r} is not known to this account", what="space"
            ) from None
        if isinstance(query, ByPhoneNumber):
            return await directory.phone_number_id(space_id, query.phone_number)
        if isinstance(query, ByTemplate):
            return await directory.template_id(space_id, query.code, query.language)
        elsewhere = NodeNotFound(f"node {query.node_id} is not in space {space_id[:128]!r}")
        try:
            space_of_node, waba_id = await directory.check_node(principal, query.node_id)
        except NodeNotFound:
            raise elsewhere from None
        if space_of_node != space_id:
            raise elsewhere
        return query.node_id, waba_id
