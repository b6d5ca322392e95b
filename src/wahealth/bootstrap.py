"""Apply the configuration to storage at every start, idempotently; set up the embedded demo."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from wahealth.auth.secretbox import SecretBox
from wahealth.auth.tokens import (
    hash_token,
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
)
from wahealth.bsp_wiring import store_space_upstream
from wahealth.monitor.connections import decrypted
from wahealth.settings import AccountConfig, MetaConnectionConfig, Settings, SpaceConfig
from wahealth.storage.connections import ConnectionRepository, StoredConnection
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.space_upstreams import SpaceUpstreamRepository
from wahealth.storage.tenancy import TenancyRepository

log = structlog.get_logger(__name__)

DEMO_ACCOUNT = "demo"
DEMO_SPACE = "demo-space"
DEMO_WABAS = ("102290129340398", "299399000000001")
DEMO_PHONE_NUMBER_ID = "106540352242922"
# What the built-in emulator's demo scenario accepts; not a secret.
DEMO_META_TOKEN = "demo-meta-token"  # noqa: S105


@dataclass(frozen=True, slots=True)
class NewCredentials:
    """Credentials created just now; shown once, never again (only hashes are kept)."""

    account: str
    access_key_id: str
    access_key_secret: str
    d360_key: str
    d360_phone_number_id: str
    graph_token: str


def tenancy_of(settings: Settings) -> tuple[list[AccountConfig], list[SpaceConfig]]:
    """The accounts and spaces to apply: the configured ones, or the demo set-up."""
    if not settings.embedded:
        return settings.accounts, settings.spaces
    return (
        [AccountConfig(name=DEMO_ACCOUNT, qps=settings.ratelimit.default_qps)],
        [SpaceConfig(id=DEMO_SPACE, account=DEMO_ACCOUNT, wabas=list(DEMO_WABAS))],
    )


async def apply_config(
    settings: Settings,
    tenancy: TenancyRepository,
    credentials: CredentialRepository,
    secretbox: SecretBox,
    upstreams: SpaceUpstreamRepository | None = None,
    connections: ConnectionRepository | None = None,
) -> NewCredentials | None:
    """Make storage hold what the config says; returns demo credentials if created now.

    With `upstreams`, each space's BSP upstream (or none: Meta) is stored too.
    """
    accounts, spaces = tenancy_of(settings)
    for account in accounts:
        await tenancy.upsert_account(account.name, account.qps or settings.ratelimit.default_qps)
        for key in account.access_keys:
            await credentials.put_access_key(account.name, key.id, secretbox.encrypt(key.secret))
        for d360 in account.d360_keys:
            await credentials.put_d360_key(
                account.name, hash_token(d360.key), d360.phone_number_id, "config"
            )
        for graph in account.graph_tokens:
            await credentials.put_graph_token(
                account.name, hash_token(graph.token), graph.label or "config"
            )
    for space in spaces:
        await tenancy.upsert_space(
            space.id, space.account, badges=space.badges, public_status=space.public_status
        )
        for waba_id in space.wabas:
            await tenancy.upsert_waba(waba_id, space.id)
        if upstreams is not None:
            await store_space_upstream(space, upstreams, secretbox)
    if connections is not None:
        for connection in settings.meta_connections:
            await put_connection(connections, secretbox, connection)
        for space in spaces:
            if space.connection is not None:
                await connections.set_space_connection(space.id, space.connection)
    if settings.embedded and not await credentials.list_credentials(DEMO_ACCOUNT):
        return await _create_demo_credentials(credentials, secretbox)
    return None


async def _create_demo_credentials(
    credentials: CredentialRepository, secretbox: SecretBox
) -> NewCredentials:
    created = NewCredentials(
        account=DEMO_ACCOUNT,
        access_key_id=new_access_key_id(),
        access_key_secret=new_access_key_secret(),
        d360_key=new_d360_key(),
        d360_phone_number_id=DEMO_PHONE_NUMBER_ID,
        graph_token=new_graph_token(),
    )
    await credentials.put_access_key(
        DEMO_ACCOUNT, created.access_key_id, secretbox.encrypt(created.access_key_secret)
    )
    await credentials.put_d360_key(
        DEMO_ACCOUNT, hash_token(created.d360_key), DEMO_PHONE_NUMBER_ID, "demo"
    )
    await credentials.put_graph_token(DEMO_ACCOUNT, hash_token(created.graph_token), "demo")
    log.info("created demo credentials", account=DEMO_ACCOUNT, access_key_id=created.access_key_id)
    return created


async def put_connection(
    connections: ConnectionRepository, secretbox: SecretBox, config: MetaConnectionConfig
) -> StoredConnection:
    """Store a connection, encrypted; one that holds the same secrets already is left as is."""
    token = config.access_token.get_secret_value()
    secret = None if config.app_secret is None else config.app_secret.get_secret_value()
    budget = config.meta_calls_per_minute
    stored = await connections.get(config.name)
    if stored is not None and decrypted(stored, secretbox) == (token, secret):
        if stored.calls_per_minute == budget:
            return stored
        return await connections.put(
            config.name,
            stored.token_encrypted,
            stored.app_secret_encrypted,
            same=True,
            calls_per_minute=budget,
        )
    return await connections.put(
        config.name,
        secretbox.encrypt(token),
        None if secret is None else secretbox.encrypt(secret),
        same=False,
        calls_per_minute=budget,
    )
