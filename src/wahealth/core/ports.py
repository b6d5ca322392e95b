"""What the use cases need from the outside world: the ports, owned here, implemented elsewhere.

`cache/`, `ratelimit/`, `storage/`, `upstream/` and `auth/` implement these; the core
imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from wahealth.domain import HealthReport


class BackendUnavailable(Exception):
    """A backend (Redis, for the cache, the limiter and the nonce store) did not answer.

    Raised by every port operation instead of the client library's own errors, so the
    core chooses a policy per use: a report cache read counts as a miss, while a limiter
    or nonce store that cannot be asked refuses the request.
    """


# --- Upstream ----------------------------------------------------------------------------


class UpstreamFailure(Exception):
    """The upstream (Meta, or the emulator playing it) gave no usable answer.

    `retry_after` is the upstream's own estimate of when to ask again, in seconds.
    Anything not more specific below is transient: serve stale, or answer "try later".
    """

    retry_after: float | None = None


class UpstreamNotFound(UpstreamFailure):
    """The node does not exist upstream, or the upstream credential cannot see it."""


class UpstreamThrottled(UpstreamFailure):
    """The upstream throttled us; `per_waba` when the limit is the WABA's, not the app's."""

    per_waba: bool = False


class UpstreamAuthFailure(UpstreamFailure):
    """The upstream credential is invalid, expired or lacks a permission."""


class UpstreamRejected(UpstreamFailure):
    """The upstream refused what was asked with an error of its own (a field it does not have,
    a parameter it does not take): the caller's mistake, to be passed on as the upstream said it.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: int,
        subcode: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.error_type = error_type


class HealthUpstream(Protocol):
    """Where fresh reports come from (the Graph client, against Meta or the emulator)."""

    async def health(self, node_id: str, *, attempts: int | None = None) -> HealthReport:
        """The node's report; `attempts` caps the tries (None: the client's own default)."""
        ...

    async def batch_health(
        self, node_ids: Sequence[str]
    ) -> Mapping[str, HealthReport | Exception]: ...


class GraphReadUpstream(Protocol):
    """Graph reads made on a caller's behalf (fields and edges wahealth does not keep)."""

    async def read(self, path: str, params: Mapping[str, str]) -> Any:
        """`GET /<version>/<path>` with `params`: the decoded JSON answer.

        Raises `UpstreamRejected` when the upstream refuses the request itself,
        `UpstreamNotFound` for a node it does not know, other `UpstreamFailure`s otherwise.
        """
        ...


class CatalogUpstream(Protocol):
    """Where the catalog comes from: a WABA's phone numbers and message templates."""

    async def phone_numbers(self, waba_id: str) -> Sequence[Any]: ...

    async def message_templates(self, waba_id: str) -> Sequence[Any]: ...


# --- Report cache, nonces, limiter ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedReport:
    """Meta's health_status JSON for a node (as bytes) and when it was fetched (unix seconds).

    `outdated` marks a report known to be superseded (a Meta webhook said the node
    changed): it may still be served, but only as stale.
    """

    node_id: str
    payload: bytes
    fetched_at: float
    outdated: bool = False


class ReportCache(Protocol):
    """Last known report per node. Entries live `retain_seconds` so stale ones can be served."""

    async def get(self, node_id: str) -> CachedReport | None: ...

    async def put(self, entry: CachedReport, retain_seconds: float) -> None: ...

    async def mark_outdated(self, node_id: str) -> None:
        """Keep the entry but flag it superseded (no-op when there is none)."""
        ...

    async def delete(self, node_id: str) -> None: ...

    async def aclose(self) -> None: ...


class NonceStore(Protocol):
    """Remembers signature nonces (and webhook digests) so a signed request is used once."""

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request is admitted; if not, how long until one would be (seconds)."""

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """Admits at most `limit` requests per key in any sliding one-second window."""

    async def acquire(self, key: str, limit: int, cost: int = 1) -> Decision:
        """Admit and count `cost` requests for `key` (at most `limit`), or deny them all.

        `BackendUnavailable` when the limiter cannot be asked.
        """
        ...

    async def aclose(self) -> None: ...


# --- The Meta call budget and the fetch locks -----------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """Calls granted from the Meta budget (0 when none), and seconds until one more fits."""

    calls: int
    retry_after: float = 0.0


class MetaBudget(Protocol):
    """Meta's call budget: at most `calls_per_minute` Graph calls in any 60 s, for the app.

    Counted as Meta counts them: each batch sub-request is a call. Shared by the refresh
    loop and on-demand queries (and, in Redis, by every replica). A call that names its
    WABA is also counted against that WABA's own limit, when one is set.
    """

    @property
    def calls_per_minute(self) -> int: ...

    async def spend(
        self, calls: int, *, waba_id: str | None = None, partial: bool = False
    ) -> BudgetGrant:
        """Spend `calls` (or, with `partial`, as many of them as fit now; else none).

        `BackendUnavailable` when the budget cannot be asked.
        """
        ...

    async def spent(self) -> int:
        """Calls counted in the 60 s ending now (the app's)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class NodeBudgets(MetaBudget, Protocol):
    """A `MetaBudget` (the default app's) that knows which budget pays for each node: its
    Meta connection's (each Meta app has its own), or none (a BSP's node: not Meta's)."""

    async def budgets_of(
        self, node_ids: Sequence[str]
    ) -> Sequence[tuple[MetaBudget | None, Sequence[str]]]:
        """The nodes grouped by the budget that pays for their calls (None: no Meta budget)."""
        ...


class FetchLocks(Protocol):
    """Short leases on a fetch, so that one replica at a time calls Meta for a node."""

    async def acquire(self, key: str, lease_seconds: float) -> str | None:
        """A token for the lease when it was free (None: another holds it)."""
        ...

    async def renew(self, key: str, token: str, lease_seconds: float) -> bool:
        """Extend a lease still held with `token`; False when it was lost."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give up a lease held with `token` (no-op if it expired or was taken over)."""
        ...

    async def aclose(self) -> None: ...


# --- Observers -----------------------------------------------------------------------------


class ReportObserver(Protocol):
    """Told about every report fetched from upstream (the monitor records transitions)."""

    async def __call__(self, report: HealthReport, cause: str) -> None: ...


@runtime_checkable
class BatchReportObserver(Protocol):
    """An observer that also takes many reports at once (the recorder: one write per chunk).

    `observe_many` must leave the same effect as calling the observer with each report in
    order; the core falls back to that, report by report, when the batch call fails.
    """

    async def __call__(self, report: HealthReport, cause: str) -> None: ...

    async def observe_many(self, reports: Sequence[HealthReport], cause: str) -> None: ...


# --- Credentials and catalog ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """The rate-limited account behind a credential."""

    account: str
    qps: int
    phone_number_id: str | None = None  # a 360dialog key is bound to one number
    label: str | None = None  # the credential's label: who acknowledges or silences


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An AccessKey as a signature check needs it: whose it is and its secret."""

    principal: Principal
    secret: str
    revoked: bool


class CredentialStore(Protocol):
    """Credential lookups, by AccessKey id or by a key/token hash."""

    async def access_key(self, key_id: str) -> tuple[str, int, str, bool] | None:
        """(account name, account qps, encrypted secret, revoked) for an AccessKey id."""
        ...

    async def d360_key(self, key_hash: str) -> tuple[str, int, str] | None:
        """(account name, account qps, phone_number_id) for an unrevoked 360dialog key."""
        ...

    async def graph_token(self, token_hash: str) -> tuple[str, int, str | None] | None:
        """(account name, account qps, label) for an unrevoked Graph token."""
        ...


class CatalogStore(Protocol):
    """Which spaces, WABAs, numbers and templates exist and who owns them."""

    async def account_of_space(self, space_id: str) -> str | None: ...

    async def phone_number_by_digits(self, space_id: str, digits: str) -> tuple[str, str] | None:
        """(phone_number_id, waba_id) of a number within a space."""
        ...

    async def template_by_code(
        self, space_id: str, name: str, language: str
    ) -> tuple[str, str] | None:
        """(template_id, waba_id) of a template within a space."""
        ...

    async def node_owner(self, node_id: str, account_name: str) -> tuple[str, str] | None:
        """(space id, WABA id) if the phone number, template or WABA belongs to the account."""
        ...

    async def wabas_of_space(self, space_id: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class CatalogNode:
    """A phone number, template or WABA as the catalog keeps it, fields named as Meta names them.

    `fields` holds what the catalog stores (a None value: not known), `waba_id` the WABA
    it belongs to (its own id for a WABA).
    """

    node_id: str
    kind: str  # a `NodeKind` value: PHONE_NUMBER, MESSAGE_TEMPLATE or WABA
    waba_id: str
    fields: Mapping[str, Any]


class GraphCatalog(Protocol):
    """The catalog's nodes and edges for the Graph read API."""

    async def node(self, node_id: str) -> CatalogNode | None: ...

    async def edge(self, waba_id: str, edge: str) -> Sequence[CatalogNode]:
        """A WABA's `phone_numbers` or `message_templates`, in the catalog's order."""
        ...


class CatalogWriter(Protocol):
    """Where a synced catalog is written."""

    async def replace_phone_numbers(self, waba_id: str, records: Sequence[Any]) -> object: ...

    async def replace_templates(self, waba_id: str, records: Sequence[Any]) -> object: ...


class SyncedHealth(Protocol):
    """Where the health the catalog sync brings goes (the health core's `accept_many`)."""

    async def accept_many(self, reports: Sequence[HealthReport], *, cause: str) -> None: ...


class CatalogSource(Protocol):
    """Re-syncs one WABA's catalog from upstream (the catalog sync)."""

    async def sync_waba(self, waba_id: str) -> object: ...


class SecretOpener(Protocol):
    """Decrypts stored AccessKey secrets; None when a secret cannot be read (wrong key)."""

    def __call__(self, encrypted: str) -> str | None: ...


class TokenHasher(Protocol):
    """How 360dialog keys and Graph tokens are looked up: their stored hash."""

    def __call__(self, token: str) -> str: ...


class DigestKeys(Protocol):
    """How token digests are stored: keyed with a server-side secret (see auth.tokens)."""

    def keyed(self, digest: str) -> str:
        """The stored form of a lookup digest, under the newest key."""
        ...

    def accepted(self, digest: str) -> tuple[str, ...]:
        """Every stored form that matches `digest` (older keys, the unkeyed form)."""
        ...


class SignatureVerifier(Protocol):
    """Checks a signed request (CAMS) and says whose key signed it.

    Raises a `SignatureRejected` (or `ServiceUnavailable` when the replay check cannot
    be made); the request object is the dialect's, opaque to the core.
    """

    async def verify(self, request: Any) -> Principal: ...
