"""create_app(settings, overrides=...): the components, their routes, middleware and lifespan.

The components are built by `build_components` (the composition root); this module
adds the HTTP side: the dialects (dispatched before Starlette's router), the web
adapters, `/healthz` and `/readyz`, `/metrics`, the emulator's admin API, and the error handlers.
The lifespan runs the start-up work (migrate, apply the config, sync the catalog,
start the monitor) and closes everything after.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wahealth import collector
from wahealth.access_log import AccessLog, AccessLogMiddleware, LoggedDialects
from wahealth.admin.endpoints import admin_routes
from wahealth.backends import uses_redis
from wahealth.bootstrap import NewCredentials, apply_config
from wahealth.bsp_wiring import start_bsp_upstreams
from wahealth.components import (
    EMULATOR_WEBHOOK_URL,
    Components,
    Overrides,
    build_components,
    dashboard_session_key,
    open_secretbox,
)
from wahealth.core.bulk import BulkHealth
from wahealth.core.gate import PreSendGate
from wahealth.dialects.cams.routes import routes as cams_routes
from wahealth.dialects.d360.routes import routes as d360_routes
from wahealth.dialects.graph.routes import routes as graph_routes
from wahealth.logs import configure_logging
from wahealth.master_key import refuse_a_new_key, verify_master_key
from wahealth.metrics import METRICS_PATH, MetricsMode, metrics_endpoint
from wahealth.middleware import DirectDialects, RequestIdMiddleware, Target
from wahealth.readiness import STOP_MARKER_ENV, Probe, Readiness, redis_probe, storage_probe
from wahealth.settings import Settings, load_settings
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.alerts_view import AlertsView
from wahealth.storage.connections import ConnectionRepository
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.fleet_view import FleetView
from wahealth.storage.master_key_checks import MasterKeyCheckRepository
from wahealth.storage.sign_outs import SignOutRepository
from wahealth.storage.space_upstreams import SpaceUpstreamRepository
from wahealth.storage.tenancy import TenancyRepository
from wahealth.upstream.emulator.app import emulator_state
from wahealth.web.badges import badge_routes
from wahealth.web.bulk import bulk_routes
from wahealth.web.dashboard import Dashboard, dashboard_routes
from wahealth.web.gate import gate_routes
from wahealth.web.history import history_routes
from wahealth.web.meta_webhooks import MetaWebhookEndpoint
from wahealth.web.silences import silence_routes
from wahealth.web.status_page import status_page_routes

__all__ = ["Components", "Overrides", "create_app", "prepare_storage"]

log = structlog.get_logger(__name__)

# Paths whose errors are {"error": "..."}; every other unowned path answers like Graph.
PLAIN_ERROR_PREFIXES = ("/_emulator/", "/api/")


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Last resort: log the traceback, answer a plain 500 with no details on the wire."""
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Paths and methods no dialect owns: a JSON error in Graph's envelope, not plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    message = (
        f"Unknown path components: {request.url.path[:200]}"
        if status == 404
        else f"Unsupported {request.method.lower()} request."
    )
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if request.url.path.startswith(PLAIN_ERROR_PREFIXES):
        # Our JSON API and the emulator's admin API answer in their own shape.
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    error = {"message": message, "type": "OAuthException", "code": 2500 if status == 404 else 100}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class LoopbackOnly:
    """Serves `app` to loopback peers only; others get a 404, as if it were not there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        try:
            local = client is not None and ipaddress.ip_address(client[0]).is_loopback
        except ValueError:
            local = False
        if not local:
            raise HTTPException(status_code=404)
        await self.app(scope, receive, send)


def _routes(components: Components, readiness: Readiness) -> list[BaseRoute]:
    settings = components.settings
    webhooks = MetaWebhookEndpoint(
        verify_token=settings.meta_webhooks.verify_token,
        app_secret=settings.meta_webhooks.app_secret,
        notices=components.monitor.webhooks,
        seen=components.replay_guard,
        replay_window_seconds=settings.meta_webhooks.replay_window_seconds,
        connection_secrets=components.upstream.app_secrets,
    )
    if components.emulator_webhooks is not None:
        components.emulator_webhooks.target = Starlette(routes=webhooks.routes())
    routes: list[BaseRoute] = [*readiness.routes()]
    if components.metrics is not None:
        mode = MetricsMode(settings.metrics.mode)
        routes.append(Route(METRICS_PATH, metrics_endpoint(components.metrics, mode)))
    if components.emulator is not None:
        # The emulator's admin API keeps its own /_emulator/ paths; it has no authentication.
        admin: ASGIApp = components.emulator
        if not settings.upstream.emulator_admin_open:
            admin = LoopbackOnly(admin)
        routes.append(Route("/_emulator/{rest:path}", admin))
    routes += history_routes(components.queries, components.alerting)
    routes += silence_routes(components.queries, components.alerting)
    routes += bulk_routes(BulkHealth(components.queries))
    routes += admin_routes(components.admin, components.admin_tokens)
    routes += webhooks.routes()
    routes += dashboard_routes(
        Dashboard(
            directory=components.directory,
            spaces=components.tenancy,
            fleet=FleetView(components.sessions),
            health=components.history,
            alerts=AlertsView(components.sessions),
            alerting=components.alerting,
            sign_outs=SignOutRepository(components.sessions),
            session_key=dashboard_session_key(components.secretbox),
            connections=components.connections,
        )
    )
    routes += badge_routes(components.public_views)
    routes += status_page_routes(components.public_views)
    return routes


def _readiness(components: Components, stop_marker: Path | None) -> Readiness:
    """Storage, and each Redis the settings use, probed through the components' clients."""
    settings = components.settings
    probes: dict[str, Probe] = {"storage": storage_probe(components.engine)}
    roles: dict[str, list[str]] = {}
    for role, url in (("cache", settings.cache.url), ("ratelimit", settings.ratelimit.url)):
        if uses_redis(url):
            roles.setdefault(url, []).append(role)
    for url, used_by in roles.items():
        # Named by role, never by URL: a URL may carry a password.
        name = "redis" if len(roles) == 1 else f"redis ({', '.join(used_by)})"
        probes[name] = redis_probe(components.redis.for_url(url))
    return Readiness(
        probes, timeout_seconds=settings.server.ready_timeout_seconds, stop_marker=stop_marker
    )


def create_app(
    settings: Settings, *, overrides: Overrides | None = None, stop_marker: Path | None = None
) -> Starlette:
    """The wahealth ASGI application for these settings.

    `stop_marker`: a file whose existence means "stopping" (`/readyz` answers 503); the
    server creates it on SIGTERM, before its drain period.
    """
    components = build_components(settings, overrides)
    readiness = _readiness(components, stop_marker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(components.aclose)
            if components.metrics is not None:
                await stack.enter_async_context(components.metrics.publishing())
            await _start(components)
            stack.push_async_callback(components.monitor.stop)
            if components.emulator is not None:
                # Webhooks the emulator is still sending reach a running monitor first.
                stack.push_async_callback(emulator_state(components.emulator).webhooks.drain)
            readiness.started = True
            log.info("wahealth ready", upstream=components.settings.upstream.kind)
            try:
                yield
            finally:
                readiness.stopping = True

    queries = components.queries
    gate = PreSendGate(queries, components.catalog)
    by_dialect = {
        "cams": cams_routes(queries),
        "d360": d360_routes(queries),
        "graph": graph_routes(queries, components.graph_reads),
        "gate": gate_routes(gate),  # a send loop's hot path too
    }
    dialects = [route for routes in by_dialect.values() for route in routes]
    metrics = components.metrics
    observe = metrics.instruments.observe_request if metrics is not None else None
    plain = DirectDialects(dialects, observe)
    direct: DialectServer = plain
    middleware = [Middleware(RequestIdMiddleware, observe=observe)]
    if settings.server.access_log:  # chosen once: with the log off, requests pay nothing
        access_log = AccessLog()
        dialect_of = {r.endpoint: name for name, rs in by_dialect.items() for r in rs}
        direct = LoggedDialects(plain, dialect_of, access_log)
        middleware.insert(0, Middleware(AccessLogMiddleware, log=access_log))
    app = WahealthApp(
        direct,
        routes=[*_routes(components, readiness), *dialects],
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.components = components
    return app


class DialectServer(Protocol):
    """What serves the dialect paths: `DirectDialects`, or it with the access log."""

    def match(self, scope: Scope) -> Target | None: ...

    async def serve(self, target: Target, scope: Scope, receive: Receive, send: Send) -> None: ...


class WahealthApp(Starlette):
    """Starlette, with the dialect paths served before its middleware stack (the hot path)."""

    def __init__(self, dialects: DialectServer, **options: Any) -> None:
        super().__init__(**options)
        self._dialects = dialects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self._dialects.match(scope)
            if endpoint is not None:
                await self._dialects.serve(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _start(components: Components) -> None:
    settings = components.settings
    await upgrade(settings.storage.url)
    checks = MasterKeyCheckRepository(components.sessions)
    await verify_master_key(settings, components.secretbox, checks)
    created = await apply_config(
        settings,
        components.tenancy,
        components.credentials,
        components.secretbox,
        components.space_upstreams,
        components.connections,
    )
    if created is not None:
        components.new_credentials.append(created)
    await start_bsp_upstreams(
        components.bsp,
        components.space_upstreams,
        components.tenancy,
        components.secretbox,
        components.catalog_sync,
    )
    if settings.catalog.sync_on_start:
        await components.catalog_sync.sync_all(await components.tenancy.all_wabas())
    emulated = components.emulator is not None and settings.upstream.emulator_webhooks
    if components.emulator is not None and emulated and settings.meta_webhooks.app_secret:
        # The emulator plays Meta: its webhooks for node changes reach this gateway.
        emulator_state(components.emulator).webhooks.register(
            EMULATOR_WEBHOOK_URL, settings.meta_webhooks.app_secret
        )
    await components.monitor.start()


async def prepare_storage(settings: Settings) -> NewCredentials | None:
    """Migrate, check the master key and apply the config once (before workers start).

    `MasterKeyRefused` when this replica's key is not the stored secrets' key, or when it has
    none and the database holds secrets (no key is created then).
    """
    await upgrade(settings.storage.url)
    engine = create_engine(settings.storage.url)
    try:
        sessions = session_factory(engine)
        checks = MasterKeyCheckRepository(sessions)
        await refuse_a_new_key(settings, checks)
        secretbox = open_secretbox(settings)
        await verify_master_key(settings, secretbox, checks)
        return await apply_config(
            settings,
            TenancyRepository(sessions),
            CredentialRepository(sessions, secretbox.token_hasher()),
            secretbox,
            SpaceUpstreamRepository(sessions),
            ConnectionRepository(sessions),
        )
    finally:
        await engine.dispose()


def app_from_environment() -> Starlette:
    """Factory for server workers: settings from $WAHEALTH_CONFIG and the environment."""
    config = os.environ.get("WAHEALTH_CONFIG")
    settings = load_settings(Path(config) if config else None)
    configure_logging(settings.server.log_level)
    marker = os.environ.get(STOP_MARKER_ENV)
    app = create_app(settings, stop_marker=Path(marker) if marker else None)
    collector.settle()  # a worker keeps what it has built now for its whole life
    return app
