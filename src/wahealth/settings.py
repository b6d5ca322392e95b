"""One typed settings object, read from a TOML file and overridden by WAHEALTH_* variables.

Nested values use a double underscore: `WAHEALTH_SERVER__PORT=9000`,
`WAHEALTH_UPSTREAM__ACCESS_TOKEN=...`. The file path comes from `--config` or
`WAHEALTH_CONFIG`; with neither, the embedded defaults run everything locally.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from wahealth.domain.records import DEFAULT_ALERT_EVENTS, AlertEvent
from wahealth.settings_bsp import (
    CamsUpstreamConfig,
    D360ChannelConfig,
    UpstreamKind,
    check_space_upstream,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    # On SIGTERM, /readyz answers 503 at once while requests are still served for this long,
    # so a load balancer's health check takes the replica out before its socket closes.
    drain_seconds: float = Field(default=5.0, ge=0, le=300)
    # Each /readyz probe (storage, Redis) gives up after this long and counts as failed.
    ready_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    # One structured log line per request (request id, dialect, account, status, latency).
    access_log: bool = False
    # Names this replica in /metrics (the `replica` label); unset: `<hostname>:<port>`.
    replica_id: str | None = Field(default=None, min_length=1, max_length=200)

    def replica_name(self) -> str:
        """How /metrics names this replica: `replica_id`, or `<hostname>:<port>`."""
        return self.replica_id or f"{socket.gethostname()}:{self.port}"

    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"


class StorageSettings(_Section):
    url: str = "sqlite+aiosqlite:///wahealth.db"


class UpstreamSettings(_Section):
    kind: Literal["emulator", "meta"] = "emulator"
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    access_token: str | None = None
    scenario: Path | None = None  # emulator only; the built-in demo when unset
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # How long a query waits for Meta before answering stale (or 503 with Retry-After):
    # below the official SDKs' read timeouts, so clients get an answer, not a timeout.
    query_deadline_seconds: float = Field(default=3.0, gt=0, le=60)
    # The emulator's admin API (/_emulator/) answers loopback clients only unless opened.
    emulator_admin_open: bool = False
    # The emulator plays Meta's webhooks too: a node changed through its admin API is
    # notified to this gateway's /webhooks/meta (with a per-process secret unless
    # meta_webhooks.app_secret is set). Off: changes are seen only by polls and queries.
    emulator_webhooks: bool = True


class CacheSettings(_Section):
    url: str = "memory://"
    ttl_seconds: float = Field(default=60.0, ge=0)
    stale_while_revalidate_seconds: float = Field(default=30.0, ge=0)
    retain_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)


class RateLimitSettings(_Section):
    url: str = "memory://"
    default_qps: int = Field(default=5, ge=1)


class SecuritySettings(_Section):
    master_key_file: Path = Path("wahealth.key")
    signature_max_skew_seconds: int = Field(default=900, ge=1)


class CatalogSettings(_Section):
    sync_on_start: bool = True
    # Each synced page of phone numbers brings their health too (the edge is asked
    # `health_status`): stored, cached and recorded like a refresh's, cause `sync`.
    sync_health: bool = True
    min_sync_interval_seconds: float = Field(default=30.0, ge=0)


class SpaceConfig(_Section):
    id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    wabas: list[str] = Field(default_factory=list)
    # Public, unauthenticated views of the space, by opt-in: SVG badges of its nodes
    # (/badge/{node_id}.svg) and its status page (/status/{space_id}). Unset keeps what
    # storage holds (`wahealth spaces set`); true or false here is applied at each start.
    badges: bool | None = None
    public_status: bool | None = None
    # Where the space's health comes from: Meta, 360dialog or Alibaba CAMS (settings_bsp).
    upstream: UpstreamKind = "meta"
    d360_channels: list[D360ChannelConfig] = Field(default_factory=list)
    cams: CamsUpstreamConfig | None = None

    @model_validator(mode="after")
    def _upstream(self) -> SpaceConfig:
        check_space_upstream(self.upstream, self.d360_channels, self.cams)
        return self

    # The `[[meta_connections]]` entry whose token its Graph calls use (unset:
    # `upstream.access_token`).
    connection: str | None = Field(default=None, min_length=1)


class MetaConnectionConfig(_Section):
    """A named Meta connection: a (system user) token, and the app secret that makes every
    Graph call on it carry `appsecret_proof`. Stored encrypted; never logged."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
    access_token: SecretStr
    app_secret: SecretStr | None = None
    # This Meta app's own call budget (unset: `[monitor] meta_calls_per_minute`).
    meta_calls_per_minute: int | None = Field(default=None, ge=1)

    @field_validator("access_token", "app_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        text = None if value is None else value.get_secret_value()
        if text is not None and not (text and text.isascii() and text.isprintable()):
            raise ValueError("must be printable ASCII, not empty")
        if text is not None and " " in text:
            raise ValueError("must not contain spaces")
        return value


class AccessKeyConfig(_Section):
    id: str = Field(min_length=1)
    secret: str = Field(min_length=1)


class D360KeyConfig(_Section):
    key: str = Field(min_length=1)
    phone_number_id: str = Field(min_length=1)


class GraphTokenConfig(_Section):
    token: str = Field(min_length=1)
    # Who acts with this token: acknowledgements and silences record it ("config" if unset).
    label: str | None = Field(default=None, min_length=1, max_length=100)


class AccountConfig(_Section):
    name: str = Field(min_length=1)
    qps: int | None = Field(default=None, ge=1)
    access_keys: list[AccessKeyConfig] = Field(default_factory=list)
    d360_keys: list[D360KeyConfig] = Field(default_factory=list)
    graph_tokens: list[GraphTokenConfig] = Field(default_factory=list)


class MonitorSettings(_Section):
    enabled: bool = True
    interval_seconds: float = Field(default=60.0, gt=0)
    # Meta's call budget for the whole deployment: queries, webhooks and the refresh loop of
    # every replica together (shared through Redis when ratelimit.url names one).
    meta_calls_per_minute: int = Field(default=600, ge=1)
    # Each WABA's own share of it, as Meta limits a WABA's calls too (unset: no WABA limit).
    meta_calls_per_minute_per_waba: int | None = Field(default=None, ge=1)
    # How long a replica's alert sender holds the alerts it claimed; one it held and did
    # not answer for (it died, or stalled) is any replica's again after this.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    # How long a replica's fleet refresh holds the due nodes it claimed (PostgreSQL); the
    # nodes of one that died, or stalled, are any replica's again after this.
    schedule_lease_seconds: float = Field(default=60.0, gt=0)


class SubscriptionConfig(_Section):
    """One subscription of a space, naming one or more channels.

    `url` is a webhook (JSON, or Slack's shape with `format = "slack"`), `slack` a Slack
    incoming webhook, `email` addresses to mail; each channel is stored as a
    subscription of its own, with the same events. Webhooks are signed with `secret`.
    """

    space: str
    url: str | None = None
    slack: str | None = None
    email: list[str] = Field(default_factory=list)
    secret: str | None = Field(default=None, min_length=1)
    on: list[AlertEvent] = Field(default_factory=lambda: list(DEFAULT_ALERT_EVENTS))
    format: Literal["json", "slack"] = "json"

    @model_validator(mode="after")
    def _channels(self) -> SubscriptionConfig:
        if self.url is None and self.slack is None and not self.email:
            raise ValueError("a subscription names at least one of url, slack or email")
        if (self.url is not None or self.slack is not None) and self.secret is None:
            raise ValueError("a webhook or slack subscription needs a secret")
        for address in self.email:
            local, at, domain = address.partition("@")
            if not (local and at and "." in domain) or any(c in address for c in " ,<>\r\n"):
                raise ValueError(f"{address!r} is not an e-mail address")
        return self


class SmtpSettings(_Section):
    """Where e-mail alerts are sent from.

    `security`: `starttls` (upgrade a plain connection, port 587), `tls` (TLS from the
    start, port 465) or `none` (plain text: only for a relay on the same host).
    """

    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)  # 587, 465 or 25 by `security`
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "wahealth@localhost"
    validate_certs: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class AlertSettings(_Section):
    allow_private_targets: bool = False
    max_attempts: int = Field(default=8, ge=1)
    flap_window_seconds: float = Field(default=300.0, ge=0)
    # The first alert of a WABA-level change waits this long for the same change of the
    # WABA's other numbers and templates, so that they go out as one alert.
    group_wait_seconds: float = Field(default=10.0, ge=0)
    # How often ended silences are checked for nodes still not AVAILABLE.
    silence_poll_seconds: float = Field(default=5.0, gt=0)
    subscriptions: list[SubscriptionConfig] = Field(default_factory=list)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)


class MetricsSettings(_Section):
    # on: /metrics for anyone who reaches the app; local: loopback peers only; off: no counting.
    mode: Literal["on", "local", "off"] = "on"
    # Series per node (status; quality and messaging limit of each phone number): true,
    # false, or "auto": while the fleet has at most `per_node_max_nodes` nodes. Counts by
    # space, kind and status are always served.
    per_node: bool | Literal["auto"] = "auto"
    per_node_max_nodes: int = Field(default=10_000, ge=0)


class MetaWebhookSettings(_Section):
    verify_token: str | None = None
    app_secret: str | None = None
    # A validly signed body is acted on once; repeats within the window get 200, no work.
    replay_window_seconds: float = Field(default=86400.0, gt=0)
    # Webhook-triggered refreshes of one node: at most one per this many seconds.
    min_refresh_interval_seconds: float = Field(default=5.0, ge=0)


class RetentionSettings(_Section):
    """How long rows are kept before the background pruning deletes them.

    Signature nonces and Meta webhook digests need no pruning: they live in the nonce
    store with a time to live (twice the signature skew; `meta_webhooks.replay_window_seconds`).
    """

    enabled: bool = True
    interval_seconds: float = Field(default=3600.0, gt=0)
    # The console shows 90 daily bars: history must cover at least that.
    history_days: float = Field(default=120.0, ge=90)
    delivered_alerts_days: float = Field(default=30.0, gt=0)
    dead_alerts_days: float = Field(default=90.0, gt=0)
    batch_size: int = Field(default=1000, ge=1)


class Settings(BaseSettings):
    """Everything wahealth reads at start."""

    model_config = SettingsConfigDict(
        env_prefix="WAHEALTH_", env_nested_delimiter="__", extra="forbid"
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    meta_webhooks: MetaWebhookSettings = Field(default_factory=MetaWebhookSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    spaces: list[SpaceConfig] = Field(default_factory=list)
    accounts: list[AccountConfig] = Field(default_factory=list)
    meta_connections: list[MetaConnectionConfig] = Field(default_factory=list)
    # The key that encrypts stored secrets (`WAHEALTH_MASTER_KEY`); when unset, the key
    # file `security.master_key_file` is used (and created on first start).
    master_key: SecretStr | None = None
    config_file: Path | None = None

    @field_validator("accounts")
    @classmethod
    def _unique_accounts(cls, accounts: list[AccountConfig]) -> list[AccountConfig]:
        names = [a.name for a in accounts]
        if len(names) != len(set(names)):
            raise ValueError("account names must be unique")
        return accounts

    @model_validator(mode="after")
    def _known_connections(self) -> Settings:
        names = [c.name for c in self.meta_connections]
        if len(names) != len(set(names)):
            raise ValueError("meta_connections names must be unique")
        # A space may name a connection made through the CLI or the admin API: checked at start.
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file: operators override one value without editing TOML.
        return (env_settings, init_settings)

    @property
    def embedded(self) -> bool:
        """True when nothing about tenancy was configured: run the demo set-up."""
        return not self.accounts and not self.spaces


def master_key_of(settings: Settings) -> str | None:
    """The configured master key, if any (the key file is used otherwise)."""
    return settings.master_key.get_secret_value() if settings.master_key is not None else None


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML file (if any) and the environment into Settings."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        data["config_file"] = path
    try:
        return Settings(**data)
    except ValueError as exc:
        where = path if path is not None else "environment"
        raise ConfigError(f"invalid configuration ({where}): {exc}") from exc
