"""The admin API's request and response bodies: pydantic models, also the OpenAPI schemas.

Requests refuse fields they do not know (`extra="forbid"`), so a typo or a field this
version does not support yet is a 422 that names it, never silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import WithJsonSchema

from wahealth.domain.records import DEFAULT_ALERT_EVENTS, AlertEvent

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
META_ID_PATTERN = r"^[0-9]{1,32}$"
MAX_QPS = 100_000
MAX_OVERLAP_SECONDS = 30 * 24 * 3600
DEFAULT_OVERLAP_SECONDS = 24 * 3600

Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Letters, digits and . _ @ -, starting with a letter or digit; ≤ 100.",
        examples=["acme"],
    ),
]
MetaId = Annotated[str, Field(pattern=META_ID_PATTERN, examples=["102290129340398"])]


def _integral(value: Any) -> Any:
    """JSON has one number type: 5.0 is the integer 5 (but 5.5 and "5" are not integers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Qps = Annotated[
    int, Field(ge=1, le=MAX_QPS, description="Requests per second."), BeforeValidator(_integral)
]
KeyKindName = Literal["access-key", "d360", "graph"]
KeyState = Literal["live", "expiring", "expired", "revoked"]


class _Request(BaseModel):
    # Strict: `"true"` or `1` is not a boolean, `"5"` is not a number.
    model_config = ConfigDict(extra="forbid", strict=True)


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where in the body: field names and indexes.")
    msg: str


class Problem(BaseModel):
    """Every error answer: one line, and for a 422 which fields are wrong."""

    error: str
    details: list[FieldProblem] | None = None


class AccountCreate(_Request):
    name: Name
    qps: Qps | None = Field(default=None, description="Default: ratelimit.default_qps.")


def _refuse_nulls(data: Any) -> Any:
    """An update's fields may be left out, but not given as null."""
    if isinstance(data, dict):
        for name, value in data.items():
            if value is None:
                raise ValueError(f"{name} must not be null: leave it out to keep it")
    return data


class AccountUpdate(_Request):
    """At least one of the fields."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # Optional, but never null: the documented types say so.
    qps: Annotated[
        Qps | None,
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_QPS}),
    ] = None
    disabled: Annotated[
        bool | None,
        WithJsonSchema(
            {
                "type": "boolean",
                "description": "true: its keys stop authenticating; false: they work again.",
            }
        ),
    ] = None

    _no_nulls = model_validator(mode="before")(_refuse_nulls)

    @model_validator(mode="after")
    def _something(self) -> AccountUpdate:
        if self.qps is None and self.disabled is None:
            raise ValueError("nothing to change: give qps or disabled")
        return self


class Account(BaseModel):
    name: str
    qps: int
    disabled: bool
    created_at: datetime
    disabled_at: datetime | None
    spaces: list[str]


class Purged(BaseModel):
    """What a purge removed for good (`?purge=true`)."""

    transitions: int = Field(description="History entries removed.")
    nodes: int = Field(description="Nodes whose last known health was removed.")
    alerts: int = Field(description="Outbox entries (alerts) removed.")
    keys: int | None = Field(
        default=None, description="Keys and admin tokens removed (an account's purge only)."
    )


class AccountDeleted(BaseModel):
    name: str
    spaces: list[str] = Field(description="Its spaces, deleted with it.")
    revoked_keys: int = Field(description="Keys and admin tokens revoked by the deletion.")
    purged: Purged | None = Field(
        default=None, description="With ?purge=true: what was removed for good."
    )


class SpaceCreate(_Request):
    id: Name = Field(description="The space id (CAMS CustSpaceId).")
    account: Name
    wabas: list[MetaId] = Field(default_factory=list, max_length=1000)
    badges: bool = False
    public_status: bool = False


class WabaAdd(_Request):
    waba_id: MetaId


class Space(BaseModel):
    id: str
    account: str
    wabas: list[str]
    badges: bool
    public_status: bool
    created_at: datetime


class SpaceDeleted(BaseModel):
    id: str
    account: str | None = Field(description="Its account (null: it was deleted before).")
    wabas: list[str] = Field(description="The WABAs taken out of it.")
    revoked_keys: int = Field(description="360dialog keys of its numbers, revoked.")
    purged: Purged | None = Field(
        default=None, description="With ?purge=true: what was removed for good."
    )


Label = Annotated[str, Field(min_length=1, max_length=100, description="A note for listings.")]


class AccessKeyCreate(_Request):
    """An Alibaba-style AccessKey (id and secret) for the CAMS dialect."""

    account: Name
    kind: Literal["access-key"]


class D360KeyCreate(_Request):
    """A 360dialog API key, answering for one phone number of the account."""

    account: Name
    kind: Literal["d360"]
    phone_number_id: MetaId = Field(description="A synced phone number of the account.")
    label: Label | None = None


class GraphTokenCreate(_Request):
    """A Graph bearer token."""

    account: Name
    kind: Literal["graph"]
    label: Label | None = None


KeyCreate = Annotated[
    AccessKeyCreate | D360KeyCreate | GraphTokenCreate, Field(discriminator="kind")
]


class KeyRotate(_Request):
    overlap_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_OVERLAP_SECONDS,
            description="How long the old key keeps working (default 24 h; 0: it stops now).",
        ),
        BeforeValidator(_integral),
    ] = DEFAULT_OVERLAP_SECONDS


class Key(BaseModel):
    id: str = Field(description="ak:<AccessKey id>, d360:<n> or graph:<n>.")
    kind: KeyKindName
    account: str
    state: KeyState = Field(description="expiring: rotated, works until expires_at.")
    label: str | None
    phone_number_id: str | None
    hash_prefix: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None


class NewKey(Key):
    """A key just made: the only answer that carries its secret."""

    secret: str = Field(description="Shown once; only a hash or ciphertext is stored.")
    access_key_id: str | None = Field(description="For access keys: what SDKs are given.")


class Rotation(BaseModel):
    old: Key
    new: NewKey


class AuditEntry(BaseModel):
    id: int
    occurred_at: datetime
    actor: str = Field(description="Who: admin-token:<id> (<name>), or cli:<user>.")
    account: str | None = Field(description="The account the change concerns.")
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: int | None = Field(description="Pass as ?before= for the next page.")


Url = Annotated[
    str,
    Field(
        pattern=r"^https?://[!-~]+$",  # printable ASCII: the same in JSON Schema and Python
        max_length=2000,
        description="The webhook (http or https) alerts are POSTed to.",
        examples=["https://hooks.example.com/wahealth"],
    ),
]
Secret = Annotated[
    str,
    Field(min_length=1, max_length=500, description="Signs X-Wahealth-Signature; kept encrypted."),
]
Events = Annotated[list[AlertEvent], Field(min_length=1, max_length=len(AlertEvent))]
WebhookFormat = Literal["json", "slack"]


class SubscriptionCreate(_Request):
    url: Url
    secret: Secret | None = None
    on: Events = Field(default_factory=lambda: list(DEFAULT_ALERT_EVENTS))
    format: WebhookFormat = "json"


class SubscriptionUpdate(_Request):
    """At least one of the fields; `paused` holds its alerts until resumed."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    on: Annotated[
        Events | None,
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": len(AlertEvent),
                "items": {"type": "string", "enum": [event.value for event in AlertEvent]},
            }
        ),
    ] = None
    format: Annotated[
        WebhookFormat | None, WithJsonSchema({"type": "string", "enum": ["json", "slack"]})
    ] = None
    secret: Annotated[
        Secret | None, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 500})
    ] = None
    paused: Annotated[bool | None, WithJsonSchema({"type": "boolean"})] = None

    _no_nulls = model_validator(mode="before")(_refuse_nulls)

    @model_validator(mode="after")
    def _something(self) -> SubscriptionUpdate:
        if all(v is None for v in (self.on, self.format, self.secret, self.paused)):
            raise ValueError("nothing to change: give on, format, secret or paused")
        return self


class Subscription(BaseModel):
    id: int
    space: str
    url: str
    on: list[str]
    format: str
    signed: bool = Field(description="Whether deliveries carry X-Wahealth-Signature.")
    created_at: datetime
    paused_at: datetime | None


class SubscriptionRemoved(BaseModel):
    id: int
    dropped_alerts: bool = Field(description="Its undelivered alerts were removed with it.")


ConnectionState = Literal["unchecked", "ok", "refused"]


# Printable ASCII without spaces, as Meta's tokens and secrets are.
PRINTABLE_ASCII = r"^[!-~]+$"


class ConnectionCreate(_Request):
    name: Name
    access_token: str = Field(
        min_length=1,
        max_length=4096,
        pattern=PRINTABLE_ASCII,
        description="A system user token; shown never again.",
    )
    app_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=PRINTABLE_ASCII,
        description="The app's secret: every Graph call then carries appsecret_proof.",
    )
    meta_calls_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="This Meta app's own call budget; null: the default per app.",
    )


class Connection(BaseModel):
    """A Meta connection: never its token or app secret, only whether Meta takes them."""

    name: str
    state: ConnectionState = Field(
        description="unchecked; ok; refused (Meta answered 190, 200-299 or 10, or refused "
        "the appsecret_proof): its spaces' refresh is paused until a check succeeds."
    )
    problem: str | None = Field(description="Meta's refusal (code and message) when refused.")
    app_secret: bool = Field(description="Whether calls carry appsecret_proof.")
    meta_calls_per_minute: int | None = Field(
        description="Its own Meta call budget; null: the default per app."
    )
    spaces: list[str]
    checked_at: datetime | None
    changed_at: datetime
    created_at: datetime


class SpaceConnection(_Request):
    connection: Name | None = Field(
        description="The Meta connection the space's Graph calls use; null: the default token."
    )


class SpaceConnectionSet(BaseModel):
    space: str
    connection: str | None
