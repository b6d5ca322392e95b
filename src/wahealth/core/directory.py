"""Who is calling and what they may see: credential and catalog lookups behind short-lived caches.

Lookups are cached in-process for `ttl_seconds` (default 1 s), negative answers
included, so the hot path costs a dict lookup while a revoked key stops working
within a second on every replica. Each cache is bounded by entries and bytes
(`LOOKUP_MAX_ENTRIES`, `LOOKUP_MAX_BYTES`), and expired entries are dropped as
new ones arrive, so client-chosen keys cannot grow memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

from wahealth.core.errors import AccessDenied, NodeNotFound, Unauthenticated
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import (
    AccessKey,
    CatalogSource,
    CatalogStore,
    CredentialStore,
    Principal,
    SecretOpener,
    TokenHasher,
)
from wahealth.domain import normalize_phone_number

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

LOOKUP_MAX_ENTRIES = 100_000
LOOKUP_MAX_BYTES = 32 * 1024 * 1024


class TtlCache(Generic[K, V]):
    """A small read-through cache with one load per key at a time.

    When an entry expires under load, the first caller reloads it while the
    others keep the previous value, so a busy key costs one storage query per
    ttl instead of one per request in flight.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = LOOKUP_MAX_ENTRIES,
        max_bytes: int = LOOKUP_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: BoundedLru[K, tuple[float, V]] = BoundedLru(max_entries, max_bytes)
        self._loading: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._entries.size_bytes

    def get_now(self, key: K) -> V | None:
        """The value while it is fresh, without loading; None when missing or expired."""
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            return hit[1] if hit is not None else await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        now = self._clock()
        self._drop_expired(now)
        self._entries.put(key, (now + self._ttl, value), _size_of(key) + _size_of(value))
        return value

    def _drop_expired(self, now: float) -> None:
        # Entries are stored in expiry order (one ttl for all), so the oldest go first.
        while (oldest := self._entries.oldest()) is not None and oldest[1][0] <= now:
            self._entries.pop(oldest[0])

    def clear(self) -> None:
        self._entries.clear()


def _size_of(value: object) -> int:
    """A rough estimate of what a key or looked-up value retains."""
    if isinstance(value, str):
        return len(value) + 50
    if isinstance(value, tuple):
        return sum(_size_of(item) for item in value) + 56
    return 64


class Directory:
    """Resolves credentials to principals and user-facing names to Meta node ids."""

    def __init__(
        self,
        credentials: CredentialStore,
        catalog: CatalogStore,
        *,
        open_secret: SecretOpener,
        hash_token: TokenHasher,
        sync: CatalogSource | None = None,
        ttl_seconds: float = 1.0,
        sync_interval_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._credentials = credentials
        self._catalog = catalog
        self._open_secret = open_secret
        self._hash_token = hash_token
        self._sync = sync
        self._sync_interval = sync_interval_seconds
        self._clock = clock
        self._last_sync: dict[str, float] = {}
        self._access_keys: TtlCache[str, AccessKey | None] = TtlCache(ttl_seconds, clock=clock)
        self._tokens: TtlCache[tuple[str, str], Principal | None] = TtlCache(
            ttl_seconds, clock=clock
        )
        self._lookups: TtlCache[tuple[str, ...], object] = TtlCache(ttl_seconds, clock=clock)

    def forget(self) -> None:
        """Drop every cached lookup (after a local change to keys or the catalog)."""
        self._access_keys.clear()
        self._tokens.clear()
        self._lookups.clear()

    async def access_key(self, key_id: str) -> AccessKey | None:
        return await self._access_keys.get(key_id, lambda: self._load_access_key(key_id))

    def access_key_now(self, key_id: str) -> AccessKey | None:
        """The AccessKey if looked up moments ago (as `access_key` would answer); else None."""
        return self._access_keys.get_now(key_id)

    async def _load_access_key(self, key_id: str) -> AccessKey | None:
        row = await self._credentials.access_key(key_id)
        if row is None:
            return None
        account, qps, encrypted, revoked = row
        secret = self._open_secret(encrypted)
        if secret is None:
            log.error("cannot decrypt access key secret; wrong master key?", key_id=key_id)
            return None
        return AccessKey(Principal(account, qps), secret, revoked)

    async def d360_principal(self, api_key: str | None) -> Principal:
        if not api_key:
            raise Unauthenticated("missing D360-API-KEY header")
        key_hash = self._hash_token(api_key)

        async def load() -> Principal | None:
            row = await self._credentials.d360_key(key_hash)
            return None if row is None else Principal(row[0], row[1], row[2])

        principal = await self._tokens.get(("d360", key_hash), load)
        if principal is None:
            raise Unauthenticated("invalid D360-API-KEY")
        return principal

    async def graph_principal(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("missing access token")
        return await self.graph_principal_of_digest(self._hash_token(token))

    def token_digest(self, token: str) -> str:
        """The lookup digest of a token: what a session keeps instead of the token itself."""
        return self._hash_token(token)

    async def graph_principal_of_digest(self, token_hash: str) -> Principal:
        """`graph_principal` for a token known by its lookup digest (a signed-in session)."""

        async def load() -> Principal | None:
            row = await self._credentials.graph_token(token_hash)
            if row is None:
                return None
            return Principal(row[0], row[1], label=row[2] if len(row) > 2 else None)

        principal = await self._tokens.get(("graph", token_hash), load)
        if principal is None:
            raise Unauthenticated("invalid access token")
        return principal

    async def check_space(self, principal: Principal, space_id: str) -> None:
        """Raise AccessDenied unless the space exists and belongs to the principal's account."""

        async def load() -> object:
            return await self._catalog.account_of_space(space_id)

        owner = await self._lookups.get(("space", space_id), load)
        if owner != principal.account:
            raise AccessDenied(f"CustSpaceId {space_id} does not belong to the calling account")

    async def check_node(self, principal: Principal, node_id: str) -> tuple[str, str]:
        """(space id, WABA id) of the node, if it belongs to the principal's account;
        NodeNotFound otherwise."""

        async def load() -> object:
            return await self._catalog.node_owner(node_id, principal.account)

        owner = await self._lookups.get(("node", principal.account, node_id), load)
        if not isinstance(owner, tuple):
            raise NodeNotFound(f"node {node_id} is not known to this account")
        return owner

    async def check_waba(self, space_id: str, waba_id: str) -> None:
        async def load() -> object:
            return waba_id in await self._catalog.wabas_of_space(space_id)

        if not await self._lookups.get(("waba", space_id, waba_id), load):
            raise NodeNotFound(f"WABA {waba_id} is not in space {space_id}", what="waba")

    async def phone_number_id(self, space_id: str, phone_number: str) -> tuple[str, str]:
        """(phone_number_id, waba_id) for a number as a user writes it, syncing once on a miss."""
        digits = normalize_phone_number(phone_number)
        if not digits:
            raise NodeNotFound(f"phone number {phone_number!r} has no digits", what="phone")

        async def lookup() -> tuple[str, str] | None:
            return await self._catalog.phone_number_by_digits(space_id, digits)

        found = await self._resolve(("phone", space_id, digits), space_id, lookup)
        if found is None:
            raise NodeNotFound(f"phone number {digits} is not in space {space_id}", what="phone")
        return found

    async def template_id(self, space_id: str, code: str, language: str) -> tuple[str, str]:
        """(template_id, waba_id) for a template code and language, syncing once on a miss."""

        async def lookup() -> tuple[str, str] | None:
            return await self._catalog.template_by_code(space_id, code, language)

        found = await self._resolve(("template", space_id, code, language), space_id, lookup)
        if found is None:
            raise NodeNotFound(
                f"template {code} ({language}) is not in space {space_id}", what="template"
            )
        return found

    async def _resolve(
        self,
        key: tuple[str, ...],
        space_id: str,
        lookup: Callable[[], Awaitable[tuple[str, str] | None]],
    ) -> tuple[str, str] | None:
        async def load() -> object:
            found = await lookup()
            if found is None and await self._sync_space(space_id):
                found = await lookup()
            return found

        value = await self._lookups.get(key, load)
        return value if isinstance(value, tuple) else None

    async def _sync_space(self, space_id: str) -> bool:
        """Re-sync a space's catalog from Meta, at most once per interval; True if it ran."""
        if self._sync is None:
            return False
        now = self._clock()
        if now - self._last_sync.get(space_id, float("-inf")) < self._sync_interval:
            return False
        self._last_sync[space_id] = now
        for waba_id in await self._catalog.wabas_of_space(space_id):
            try:
                await self._sync.sync_waba(waba_id)
            except Exception as exc:  # noqa: BLE001 — a failed sync is a miss, not a crash
                log.warning("catalog sync on miss failed", waba_id=waba_id, error=repr(exc))
        self.forget()
        return True
