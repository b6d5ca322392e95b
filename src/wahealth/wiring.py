"""Small adapters the composition root (`components`) builds components with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.backends import RedisClients, create_call_budget
from wahealth.core.ports import MetaBudget, SecretOpener
from wahealth.metrics.instruments import Instruments, MetaCallCounter
from wahealth.monitor.targets import TargetError, check_target
from wahealth.settings import Settings
from wahealth.upstream.budgets import ConnectionBudgets
from wahealth.upstream.connections import ConnectionBook, ConnectionRoutes


def counted(
    transport: httpx.AsyncBaseTransport | None, instruments: Instruments | None
) -> httpx.AsyncBaseTransport | None:
    """Every request to Meta (or what plays it) counted, outside any test's wrapper."""
    if instruments is None:
        return transport
    return MetaCallCounter(transport or httpx.AsyncHTTPTransport(), instruments)


def target_checker(settings: Settings) -> Callable[[str], Awaitable[str | None]]:
    """Why an alert target is refused (None: it is fine), as `wahealth alerts add` checks it."""
    allow_private = settings.alerts.allow_private_targets

    async def refusal(url: str) -> str | None:
        try:
            await check_target(url, allow_private=allow_private)
        except TargetError as exc:
            return str(exc)
        return None

    return refusal


def open_secret_of(secretbox: SecretBox) -> SecretOpener:
    def open_secret(encrypted: str) -> str | None:
        try:
            return secretbox.decrypt(encrypted)
        except SecretBoxError:
            return None

    return open_secret


def connection_budgets(
    settings: Settings,
    redis: RedisClients,
    book: ConnectionBook,
    routes: ConnectionRoutes,
    is_bsp: Callable[[str], bool],
) -> ConnectionBudgets:
    """The Meta budget per app: the default token's, and each connection's own (in Redis
    under `connection:<name>`), on the rate limiter's URL."""
    url, monitor = settings.ratelimit.url, settings.monitor
    per_waba = monitor.meta_calls_per_minute_per_waba

    def make(name: str, calls_per_minute: int) -> MetaBudget:
        return create_call_budget(url, redis, calls_per_minute, per_waba, app=f"connection:{name}")

    default = create_call_budget(url, redis, monitor.meta_calls_per_minute, per_waba)
    return ConnectionBudgets(default, make, book, routes, is_bsp)
