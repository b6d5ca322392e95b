"""Who is calling and what they may see: credential and catalog lookups behind short-lived caches.

Lookups are cached in-process for `ttl_seconds` (default 1 s), negative answers
included, so the hot path costs a dict lookup while a revoked key stops working
within a second on every replica.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.auth.tokens import hash_token
from wahealth.core.errors import AccessDenied, NodeNotFound, Unauthenticated
from wahealth.core.ports import CatalogSource, CatalogStore, CredentialStore
from wahealth.domain import normalize_phone_number

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Principal:
    """The rate-limited account behind a credential."""

    account: str
    qps: int
    phone_number_id: str | None = None  # a 360dialog key is bound to one number


@dataclass(frozen=True, slots=True)
class AccessKey:
    principal: Principal
    secret: str
    revoked: bool


class TtlCache(Generic[K, V]):
    """A small read-through cache with one load per key at a time.

    When an entry expires under load, the first caller reloads it while the
    others keep the previous value, so a busy key costs one storage query per
    ttl instead of one per request in flight.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

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
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude but bounded; entries are cheap to reload
        self._entries[key] = (self._clock() + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


class Directory:
    """Resolves credentials to principals and user-facing names to Meta node ids."""

    def __init__(
        self,
        credentials: CredentialStore,
        catalog: CatalogStore,
        secretbox: SecretBox,
        *,
        sync: CatalogSource | None = None,
        ttl_seconds: float = 1.0,
        sync_interval_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._credentials = credentials
        self._catalog = catalog
        self._secretbox = secretbox
        self._sync = sync
        self._sync_interval = sync_interval_seconds
        self._clock = clock
        self._last_sync: dict[str, float] = {}
        self._access_keys: TtlCache[str, AccessKey | None] = TtlCache(ttl_seconds, clock=clock)
        self._tokens: TtlCache[tuple[str, str], Principal | None] = TtlCache(
            ttl_seconds, clock=clock
        )
        self._lookups: TtlCache[tuple[str, ...], object] = TtlCache(ttl_seconds, clock=clock)

    def set_sync(self, sync: CatalogSource) -> None:
        """Where to re-sync the catalog from on a miss."""
        self._sync = sync

    def forget(self) -> None:
        """Drop every cached lookup (after a local change to keys or the catalog)."""
        self._access_keys.clear()
        self._tokens.clear()
        self._lookups.clear()

    async def access_key(self, key_id: str) -> AccessKey | None:
        return await self._access_keys.get(key_id, lambda: self._load_access_key(key_id))

    async def _load_access_key(self, key_id: str) -> AccessKey | None:
        row = await self._credentials.access_key(key_id)
        if row is None:
            return None
        account, qps, encrypted, revoked = row
        try:
            secret = self._secretbox.decrypt(encrypted)
        except SecretBoxError:
            log.error("cannot decrypt access key secret; wrong master key?", key_id=key_id)
            return None
        return AccessKey(Principal(account, qps), secret, revoked)

    async def d360_principal(self, api_key: str | None) -> Principal:
        if not api_key:
            raise Unauthenticated("missing D360-API-KEY header")
        key_hash = hash_token(api_key)

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
        token_hash = hash_token(token)

        async def load() -> Principal | None:
            row = await self._credentials.graph_token(token_hash)
            return None if row is None else Principal(row[0], row[1])

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

    async def check_node(self, principal: Principal, node_id: str) -> str:
        """The node's space, if it belongs to the principal's account; NodeNotFound otherwise."""

        async def load() -> object:
            return await self._catalog.node_in_account(node_id, principal.account)

        space = await self._lookups.get(("node", principal.account, node_id), load)
        if not isinstance(space, str):
            raise NodeNotFound(f"node {node_id} is not known to this account")
        return space

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
        return True
