"""create_app(settings): build every component, wire the dialects, run the lifespan.

This is the one place that picks concrete backends (by URL) and the upstream.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wahealth.auth.secretbox import SecretBox
from wahealth.bootstrap import DEMO_META_TOKEN, NewCredentials, apply_config
from wahealth.cache.base import NonceStore, ReportCache
from wahealth.cache.factory import create_nonce_store, create_report_cache
from wahealth.core.catalog_sync import CatalogSync
from wahealth.core.directory import Directory
from wahealth.core.gateway import Gateway
from wahealth.core.health import Freshness, HealthService
from wahealth.dialects.cams.routes import routes as cams_routes
from wahealth.dialects.d360.routes import routes as d360_routes
from wahealth.dialects.graph.routes import routes as graph_routes
from wahealth.logs import configure_logging
from wahealth.metrics import (
    METRICS_PATH,
    InstrumentedCache,
    Metrics,
    MetricsMode,
    coalescer_of,
    instrument_graph,
    metrics_endpoint,
)
from wahealth.middleware import DirectRoutes, RequestIdMiddleware
from wahealth.monitor.service import Monitor
from wahealth.ratelimit.base import RateLimiter
from wahealth.ratelimit.factory import create_rate_limiter
from wahealth.settings import Settings, load_settings
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.health import HealthRepository
from wahealth.storage.tenancy import TenancyRepository
from wahealth.upstream.emulator.app import create_emulator, emulator_state
from wahealth.upstream.emulator.scenario import load_scenario
from wahealth.upstream.graph import GraphClient
from wahealth.web.dashboard import Dashboard, dashboard_routes

log = structlog.get_logger(__name__)

EMULATOR_BASE_URL = "http://emulator.internal"
EMBEDDED_WEBHOOK_URL = "http://wahealth.internal/webhooks/meta"


@dataclass
class Services:
    """What create_app built, for the CLI, the tests and the monitor."""

    settings: Settings
    gateway: Gateway
    graph: GraphClient
    catalog_sync: CatalogSync
    tenancy: TenancyRepository
    credentials: CredentialRepository
    catalog: CatalogRepository
    secretbox: SecretBox
    emulator: Starlette | None
    sessions: Any
    monitor: Monitor
    new_credentials: NewCredentials | None = None
    ready: bool = False


def _upstream(settings: Settings) -> tuple[GraphClient, Starlette | None]:
    up = settings.upstream
    if up.kind == "meta":
        if not up.access_token:
            raise ValueError("upstream.kind = 'meta' needs upstream.access_token")
        return (
            GraphClient(
                base_url=up.base_url,
                api_version=up.api_version,
                access_token=up.access_token,
                timeout=up.timeout_seconds,
                max_attempts=up.max_attempts,
            ),
            None,
        )
    emulator = create_emulator(load_scenario(up.scenario))
    client = GraphClient(
        base_url=EMULATOR_BASE_URL,
        api_version=up.api_version,
        access_token=up.access_token or DEMO_META_TOKEN,
        transport=httpx.ASGITransport(app=emulator),
        timeout=up.timeout_seconds,
        max_attempts=up.max_attempts,
    )
    return client, emulator


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Last resort: log the traceback, answer a plain 500 with no details on the wire."""
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Paths and methods no dialect owns: a JSON error in Graph's envelope, not plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    message = (
        f"Unknown path components: {request.url.path}"
        if status == 404
        else f"Unsupported {request.method.lower()} request."
    )
    error = {"message": message, "type": "OAuthException", "code": 2500 if status == 404 else 100}
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def create_app(settings: Settings) -> Starlette:
    """The wahealth ASGI application for these settings."""
    metrics_on = MetricsMode(settings.metrics.mode)
    metrics = Metrics() if metrics_on is not MetricsMode.OFF else None
    graph, emulator = _upstream(settings)
    if metrics is not None:
        instrument_graph(graph, metrics)
    embedded_webhooks = emulator is not None and settings.embedded
    if embedded_webhooks and not settings.meta_webhooks.app_secret:
        # In the embedded default the emulator plays Meta's webhooks too; give the pair a
        # shared secret so the chain (webhook -> refresh -> transition -> alert) runs offline.
        settings = settings.model_copy(
            update={
                "meta_webhooks": settings.meta_webhooks.model_copy(
                    update={"app_secret": secrets.token_hex(32)}
                )
            }
        )
    engine = create_engine(settings.storage.url)
    sessions = session_factory(engine)
    tenancy = TenancyRepository(sessions)
    catalog = CatalogRepository(sessions)
    secretbox = SecretBox.load(
        os.environ.get("WAHEALTH_MASTER_KEY"), settings.security.master_key_file
    )
    credentials = CredentialRepository(sessions, secretbox.token_hasher())
    cache: ReportCache = create_report_cache(settings.cache.url)
    if metrics is not None:
        cache = InstrumentedCache(cache, metrics)
    nonces: NonceStore = create_nonce_store(settings.cache.url)
    limiter: RateLimiter = create_rate_limiter(settings.ratelimit.url)
    directory = Directory(
        credentials,
        catalog,
        secretbox,
        sync_interval_seconds=settings.catalog.min_sync_interval_seconds,
    )
    sync = CatalogSync(graph, catalog, on_change=directory.forget)
    directory.set_sync(sync)
    health = HealthService(
        upstream=graph,
        cache=cache,
        freshness=Freshness(
            ttl_seconds=settings.cache.ttl_seconds,
            stale_while_revalidate_seconds=settings.cache.stale_while_revalidate_seconds,
            retain_seconds=settings.cache.retain_seconds,
        ),
    )
    gateway = Gateway(
        directory=directory,
        health=health,
        limiter=limiter,
        nonces=nonces,
        signature_max_skew_seconds=settings.security.signature_max_skew_seconds,
    )
    monitor = Monitor(
        settings=settings,
        health=health,
        graph=graph,
        sessions=sessions,
        secretbox=secretbox,
        directory=directory,
        catalog_sync=sync,
        admit=gateway.admit,
    )
    health.observers.append(monitor.observe)
    if metrics is not None:
        metrics.coalescer = coalescer_of(health)
        metrics.sessions = sessions
    services = Services(
        settings=settings,
        gateway=gateway,
        graph=graph,
        catalog_sync=sync,
        tenancy=tenancy,
        credentials=credentials,
        catalog=catalog,
        secretbox=secretbox,
        emulator=emulator,
        sessions=sessions,
        monitor=monitor,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            for closer in (
                graph.aclose,
                cache.aclose,
                nonces.aclose,
                limiter.aclose,
                health.aclose,
            ):
                stack.push_async_callback(closer)
            await upgrade(settings.storage.url)
            services.new_credentials = await apply_config(settings, tenancy, credentials, secretbox)
            if settings.catalog.sync_on_start:
                await sync.sync_all(await tenancy.all_wabas())
            await monitor.start()
            stack.push_async_callback(monitor.stop)
            if emulator is not None:
                # Webhooks the emulator is still sending reach a running monitor first.
                stack.push_async_callback(emulator_state(emulator).webhooks.drain)
            services.ready = True
            log.info("wahealth ready", upstream=settings.upstream.kind)
            try:
                yield
            finally:
                services.ready = False

    async def healthz(request: Request) -> Response:
        if not services.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    dialect_routes = [*cams_routes(gateway), *d360_routes(gateway), *graph_routes(gateway)]
    route_list: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if emulator is not None:
        # The emulator's admin API keeps its own /_emulator/ paths.
        route_list.append(Route("/_emulator/{rest:path}", emulator))
    route_list += monitor.routes()
    route_list += dashboard_routes(
        Dashboard(directory, tenancy, catalog, HealthRepository(sessions))
    )
    route_list += dialect_routes
    middleware = [
        Middleware(
            RequestIdMiddleware,
            observe=metrics.observe_request if metrics is not None else None,
        ),
        Middleware(DirectRoutes, routes=dialect_routes),
    ]
    if metrics is not None:
        route_list.insert(0, Route(METRICS_PATH, metrics_endpoint(metrics, metrics_on)))
    app = Starlette(
        routes=route_list,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.services = services
    app.state.metrics = metrics
    if emulator is not None and embedded_webhooks and settings.meta_webhooks.app_secret:
        webhooks = emulator_state(emulator).webhooks
        webhooks.transport = httpx.ASGITransport(app=app)
        webhooks.register(EMBEDDED_WEBHOOK_URL, settings.meta_webhooks.app_secret)
    return app


async def prepare_storage(settings: Settings) -> NewCredentials | None:
    """Migrate and apply the config once (the CLI does this before starting workers)."""
    await upgrade(settings.storage.url)
    engine = create_engine(settings.storage.url)
    try:
        sessions = session_factory(engine)
        secretbox = SecretBox.load(
            os.environ.get("WAHEALTH_MASTER_KEY"), settings.security.master_key_file
        )
        return await apply_config(
            settings,
            TenancyRepository(sessions),
            CredentialRepository(sessions, secretbox.token_hasher()),
            secretbox,
        )
    finally:
        await engine.dispose()


def app_from_environment() -> Starlette:
    """Factory for server workers: settings from $WAHEALTH_CONFIG and the environment."""
    configure_logging()
    config = os.environ.get("WAHEALTH_CONFIG")
    return create_app(load_settings(Path(config) if config else None))
