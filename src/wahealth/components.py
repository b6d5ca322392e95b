"""The composition root: every component wahealth runs, built once from the settings.

`build_components(settings, overrides)` builds each part from what it depends on, in
order, so nothing is wired after it is built. Nothing here does I/O: engines, HTTP and
Redis clients connect on first use, and the app's lifespan runs the start-up work and
closes them all (`Components.aclose`). Tests replace parts through `Overrides`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from wahealth.access_log import account_noting
from wahealth.admin.service import AdminStores
from wahealth.admin.tokens import AdminTokens
from wahealth.auth.cams_signature import CamsSignatureVerifier
from wahealth.auth.secretbox import SecretBox
from wahealth.auth.tokens import hash_token
from wahealth.backends import (
    RedisClients,
    create_nonce_store,
    create_rate_limiter,
    create_report_cache,
    create_shared_flight,
)
from wahealth.bootstrap import DEMO_META_TOKEN, NewCredentials
from wahealth.core.alerting import Alerting
from wahealth.core.backoff import Backoff
from wahealth.core.catalog_sync import CatalogSync
from wahealth.core.coalesce import SingleFlight
from wahealth.core.directory import Directory
from wahealth.core.graph_read import GraphReads
from wahealth.core.health import Freshness, HealthService
from wahealth.core.ports import MetaBudget, NonceStore, RateLimiter, ReportCache
from wahealth.core.queries import FailClosedNonces, HealthQueries
from wahealth.domain import HealthReport
from wahealth.metrics import (
    Instruments,
    Metrics,
    MetricsMode,
    PerNode,
    instrumented_cache,
    instrumented_limiter,
)
from wahealth.metrics.multiprocess import multiprocess_dir
from wahealth.metrics.shared import SharedMetrics
from wahealth.monitor.connections import connected
from wahealth.monitor.properties import TrackedCatalog
from wahealth.monitor.service import Monitor, build_recorder, build_sender, build_tracker
from wahealth.settings import Settings, master_key_of
from wahealth.storage import create_engine, session_factory
from wahealth.storage.admin import AdminTokenRepository, AuditLog
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.columns import utcnow
from wahealth.storage.connections import ConnectionRepository
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.deletion import Deletion
from wahealth.storage.graph_catalog import GraphCatalogRepository
from wahealth.storage.health import HealthRepository
from wahealth.storage.key_lifecycle import KeyLifecycle
from wahealth.storage.metrics_view import MetricsView
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.public_views import PublicViews
from wahealth.storage.purge import Purge
from wahealth.storage.silences import SilenceOwners, SilenceRepository
from wahealth.storage.space_upstreams import SpaceUpstreamRepository
from wahealth.storage.tenancy import TenancyRepository
from wahealth.upstream.bsp.router import BspRouter
from wahealth.upstream.connections import ConnectedGraph
from wahealth.upstream.emulator.app import create_emulator
from wahealth.upstream.emulator.scenario import load_scenario
from wahealth.upstream.graph import GraphClient
from wahealth.wiring import connection_budgets, counted, open_secret_of, target_checker

EMULATOR_BASE_URL = "http://emulator.internal"
EMULATOR_WEBHOOK_URL = "http://wahealth.internal/webhooks/meta"

TransportWrapper = Callable[[httpx.AsyncBaseTransport | None], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class Overrides:
    """Parts a test (or an embedding program) supplies instead of the configured ones."""

    # Wraps what the Graph client talks through (the emulator's ASGI transport, or None for
    # the network): put faults, delays or recorders in front of Meta.
    graph_transport: TransportWrapper | None = None
    report_cache: ReportCache | None = None
    nonces: NonceStore | None = None
    limiter: RateLimiter | None = None
    # The wall clock that key expiry (rotation), deletion and the audit log read; the
    # credential lookup caches follow it too. The CAMS signature check keeps the real one.
    clock: Callable[[], datetime] | None = None


class Forward:
    """An ASGI app that forwards to one set once: breaks the emulator → gateway cycle.

    The emulator (built first, since the Graph client talks to it) posts its Meta
    webhooks to the gateway's webhook endpoint, which is built after it.
    """

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.target is None:
            raise RuntimeError("webhook target not set")
        await self.target(scope, receive, send)


@dataclass
class Components:
    """What `build_components` made, by name."""

    settings: Settings
    metrics: Metrics | None
    secretbox: SecretBox
    engine: Any  # AsyncEngine
    sessions: Any  # async_sessionmaker
    tenancy: TenancyRepository
    credentials: CredentialRepository
    catalog: CatalogRepository
    history: HealthRepository
    redis: RedisClients
    cache: ReportCache
    nonces: NonceStore
    replay_guard: FailClosedNonces
    limiter: RateLimiter
    graph: GraphClient
    bsp: BspRouter  # the health core's upstream: Meta (`graph`) or each space's BSP
    space_upstreams: SpaceUpstreamRepository
    upstream: ConnectedGraph  # `graph` on each space's Meta connection
    connections: ConnectionRepository
    emulator: Starlette | None
    emulator_webhooks: Forward | None
    catalog_sync: CatalogSync
    directory: Directory
    health: HealthService
    queries: HealthQueries
    budget: MetaBudget
    monitor: Monitor
    graph_reads: GraphReads
    public_views: PublicViews
    alerting: Alerting
    admin: AdminStores
    admin_tokens: AdminTokens
    new_credentials: list[NewCredentials] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close every resource, last built first."""
        await self.health.aclose()
        await self.bsp.aclose()
        await self.graph.aclose()
        for store in (self.cache, self.nonces, self.limiter):
            await store.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


def open_secretbox(settings: Settings) -> SecretBox:
    """The master key: `master_key` (WAHEALTH_MASTER_KEY) or the key file."""
    return SecretBox.load(master_key_of(settings), settings.security.master_key_file)


def dashboard_session_key(secretbox: SecretBox) -> bytes:
    """The dashboard's cookie key: derived from the master key, so every worker agrees."""
    return bytes.fromhex(secretbox.token_hasher().keyed("wahealth dashboard session key v1"))


def with_emulator_webhooks(settings: Settings) -> Settings:
    """In emulator mode the emulator plays Meta's webhooks too: give the pair a secret."""
    up = settings.upstream
    if up.kind != "emulator" or not up.emulator_webhooks or settings.meta_webhooks.app_secret:
        return settings
    webhooks = settings.meta_webhooks.model_copy(update={"app_secret": secrets.token_hex(32)})
    return settings.model_copy(update={"meta_webhooks": webhooks})


def _graph(
    settings: Settings, overrides: Overrides, instruments: Instruments | None
) -> tuple[GraphClient, Starlette | None, Forward | None]:
    up = settings.upstream
    wrap = overrides.graph_transport
    on_call = instruments.observe_upstream_call if instruments is not None else None
    options: dict[str, Any] = {
        "api_version": up.api_version,
        "timeout": up.timeout_seconds,
        "max_attempts": up.max_attempts,
        "on_call": on_call,
        # Pages of numbers are asked their health only when the sync stores it.
        "edge_health": settings.catalog.sync_health,
    }
    if up.kind == "meta":
        if not up.access_token and not settings.meta_connections:
            raise ValueError("upstream.kind = 'meta' needs access_token or meta_connections")
        transport = counted(wrap(None) if wrap is not None else None, instruments)
        # Without a default token, spaces that name no connection get Meta's refusal.
        token = up.access_token or ""
        client = GraphClient(
            base_url=up.base_url, access_token=token, transport=transport, **options
        )
        return client, None, None
    scenario = load_scenario(up.scenario)
    forward = Forward()
    emulator = create_emulator(scenario, webhook_transport=httpx.ASGITransport(app=forward))
    token = up.access_token or next(iter(scenario.every_token), DEMO_META_TOKEN)
    emulated = httpx.ASGITransport(app=emulator)
    client = GraphClient(
        base_url=EMULATOR_BASE_URL,
        access_token=token,
        transport=counted(emulated if wrap is None else wrap(emulated), instruments),
        **options,
    )
    return client, emulator, forward


def build_components(settings: Settings, overrides: Overrides | None = None) -> Components:
    """Every component for these settings, each built from its dependencies."""
    overrides = overrides or Overrides()
    settings = with_emulator_webhooks(settings)
    secretbox = open_secretbox(settings)
    engine = create_engine(settings.storage.url)
    sessions = session_factory(engine)
    flight: SingleFlight[str, HealthReport] = SingleFlight()
    catalog = CatalogRepository(sessions)
    redis = RedisClients()
    cache = overrides.report_cache or create_report_cache(settings.cache.url, redis)
    # Polled by the waiters of another replica's fetch: not counted as the queries' lookups.
    shared = None
    if overrides.report_cache is None:
        shared = create_shared_flight(
            settings.cache.url, redis, cache, settings.upstream.timeout_seconds
        )
    instruments = (
        Instruments(coalescer=flight, shared_coalescer=shared)
        if MetricsMode(settings.metrics.mode) is not MetricsMode.OFF
        else None
    )
    limiter = overrides.limiter or create_rate_limiter(settings.ratelimit.url, redis)
    bsp_limiter = limiter  # BSP calls per second, counted apart from callers' requests
    if instruments is not None:
        cache = instrumented_cache(cache, instruments)
        limiter = instrumented_limiter(limiter)
    if settings.server.access_log:
        limiter = account_noting(limiter)  # the access log's account field
    nonces = overrides.nonces or create_nonce_store(settings.cache.url, redis)
    graph, emulator, forward = _graph(settings, overrides, instruments)
    sender = build_sender(settings, sessions, secretbox)
    tracker = build_tracker(settings, sessions, sender)
    connections = ConnectionRepository(sessions)
    upstream, watch = connected(
        graph, connections, secretbox, sender.wake, settings.monitor.interval_seconds
    )
    # BSP spaces go to their BSP, the rest to Meta on each space's connection.
    bsp = BspRouter(
        upstream, limiter=bsp_limiter, timeout_seconds=settings.upstream.timeout_seconds
    )
    tenancy = TenancyRepository(sessions)
    recorder = build_recorder(settings, sessions, sender)
    cache_settings = settings.cache
    budget = connection_budgets(settings, redis, upstream.book, connections, bsp.is_bsp)
    health = HealthService(
        upstream=bsp,
        cache=cache,
        freshness=Freshness(
            ttl_seconds=cache_settings.ttl_seconds,
            stale_while_revalidate_seconds=cache_settings.stale_while_revalidate_seconds,
            retain_seconds=cache_settings.retain_seconds,
            query_deadline_seconds=settings.upstream.query_deadline_seconds,
        ),
        observers=(recorder.observe,),
        backoff=Backoff(),
        flight=flight,
        budget=budget,
        shared=shared,
    )
    # The numbers' health comes with the sync's pages: stored like a refresh's.
    synced_health = health if settings.catalog.sync_health else None
    catalog_sync = CatalogSync(bsp, TrackedCatalog(catalog, tracker), synced_health)
    clock = overrides.clock or utcnow
    hasher = secretbox.token_hasher()
    credentials = CredentialRepository(sessions, hasher, clock=clock)
    override_clock = overrides.clock
    directory = Directory(
        credentials,
        catalog,
        open_secret=open_secret_of(secretbox),
        hash_token=hash_token,
        sync=catalog_sync,
        sync_interval_seconds=settings.catalog.min_sync_interval_seconds,
        clock=time.monotonic if override_clock is None else lambda: override_clock().timestamp(),
    )
    replay_guard = FailClosedNonces(nonces)
    history = HealthRepository(sessions)
    queries = HealthQueries(
        directory=directory,
        health=health,
        limiter=limiter,
        signatures=CamsSignatureVerifier(
            access_key=directory.access_key,
            access_key_now=directory.access_key_now,
            nonces=replay_guard,
            max_skew_seconds=settings.security.signature_max_skew_seconds,
        ),
        transitions=history,
    )
    monitor = Monitor.build(
        settings, sessions, secretbox, sender, health, bsp, budget, tracker, watch
    )
    graph_reads = GraphReads(
        directory=directory,
        health=health,
        catalog=GraphCatalogRepository(sessions),
        upstream=upstream,
        limiter=limiter,
        budget=budget,
        ttl_seconds=cache_settings.ttl_seconds,
    )
    metrics = None
    if instruments is not None:
        metrics_view = MetricsView(sessions)
        metrics = Metrics(
            instruments,
            count_alerts=OutboxRepository(sessions).count_by_state,
            fleet=metrics_view,
            per_node=PerNode(settings.metrics.per_node, settings.metrics.per_node_max_nodes),
            rounds=monitor.refresher,
            multiprocess_dir=multiprocess_dir(),
            replica=settings.server.replica_name(),
            shared=SharedMetrics(
                budget,
                alert_claims=metrics_view.alert_claims_held,
                schedule_claims=metrics_view.schedule_claims_held,
            ),
            connections=connections.states,
        )
    return Components(
        settings=settings,
        metrics=metrics,
        secretbox=secretbox,
        engine=engine,
        sessions=sessions,
        tenancy=tenancy,
        credentials=credentials,
        catalog=catalog,
        history=history,
        redis=redis,
        cache=cache,
        nonces=nonces,
        replay_guard=replay_guard,
        limiter=limiter,
        graph=graph,
        bsp=bsp,
        space_upstreams=SpaceUpstreamRepository(sessions),
        upstream=upstream,
        connections=connections,
        emulator=emulator,
        emulator_webhooks=forward,
        catalog_sync=catalog_sync,
        directory=directory,
        health=health,
        queries=queries,
        budget=budget,
        monitor=monitor,
        graph_reads=graph_reads,
        public_views=PublicViews(sessions),
        alerting=Alerting(SilenceOwners(sessions), SilenceRepository(sessions)),
        admin=AdminStores(
            tenancy=tenancy,
            credentials=credentials,
            lifecycle=KeyLifecycle(sessions, hasher, clock=clock),
            deletion=Deletion(sessions, clock),
            purge=Purge(sessions),
            catalog=catalog,
            audit=AuditLog(sessions, clock),
            secretbox=secretbox,
            default_qps=settings.ratelimit.default_qps,
            forget=directory.forget,
            clock=clock,
            outbox=OutboxRepository(sessions),
            check_target=target_checker(settings),
            connections=connections,
            check_connection=watch.check,
            connections_changed=upstream.book.forget,
            space_upstreams=SpaceUpstreamRepository(sessions),
        ),
        admin_tokens=AdminTokens(AdminTokenRepository(sessions), hasher),
    )
