"""The tables, as typed SQLAlchemy models.

Meta's ids (spaces, WABAs, phone numbers, templates, nodes) are strings: they
are opaque to us and longer than a 64-bit integer is guaranteed to hold. Our own
ids are integers. Every change to these models needs an Alembic migration; the
tests fail when the migrations and the models disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, MetaData, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wahealth.storage.columns import JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Indexes a migration creates only where the database can (PostgreSQL with pg_trgm, for
# the fleet page's search): not in the models, and no difference from them where present.
OPTIONAL_INDEX_PREFIX = "ix_search_"


def in_models(
    item: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object`: whether a schema item is compared with the models."""
    optional = type_ == "index" and (name or "").startswith(OPTIONAL_INDEX_PREFIX)
    return not (optional and reflected and compare_to is None)


class Base(DeclarativeBase):
    """Declarative base with named constraints, so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
        str: String(),
    }


class AccountRow(Base):
    """The rate-limited principal that owns spaces and credentials."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    qps: Mapped[int] = mapped_column(default=5, server_default=text("5"))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    # Deleted accounts are kept (disabled) so their history still names them.
    deleted_at: Mapped[datetime | None]


class SpaceRow(Base):
    """A tenant space; the id is the CAMS CustSpaceId."""

    __tablename__ = "spaces"

    id: Mapped[str] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime]
    # Opt-ins to the public views: badges of its nodes, and its status page.
    badges: Mapped[bool] = mapped_column(default=False, server_default=false())
    public_status: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A deleted space has no WABAs and is invisible to callers; its history is kept.
    deleted_at: Mapped[datetime | None]
    # The Meta connection its Graph calls use (None: `upstream.access_token`).
    connection: Mapped[str | None]


class WabaRow(Base):
    """A WhatsApp Business Account, placed in one space."""

    __tablename__ = "wabas"

    id: Mapped[str] = mapped_column(primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id"), index=True)
    business_id: Mapped[str | None]
    app_id: Mapped[str | None]
    name: Mapped[str | None]
    synced_at: Mapped[datetime | None]


class PhoneNumberRow(Base):
    """A phone number of a WABA, as last synced from Meta.

    Its kept fields (quality, limits, statuses: Meta's names and values) are updated by
    the sync, the fleet refresh and Meta's webhooks; `observed_at` is when they were
    last seen, so an older observation arriving later is not applied over a newer one.
    """

    __tablename__ = "phone_numbers"
    __table_args__ = (Index(None, "display_phone_number", "id"),)  # the fleet page's name order

    id: Mapped[str] = mapped_column(primary_key=True)
    waba_id: Mapped[str] = mapped_column(ForeignKey("wabas.id", ondelete="CASCADE"), index=True)
    display_phone_number: Mapped[str]
    digits: Mapped[str] = mapped_column(index=True)
    verified_name: Mapped[str | None]
    quality_rating: Mapped[str | None]
    messaging_limit_tier: Mapped[str | None]
    whatsapp_business_manager_messaging_limit: Mapped[str | None]
    throughput: Mapped[str | None]
    status: Mapped[str | None]
    name_status: Mapped[str | None]
    code_verification_status: Mapped[str | None]
    observed_at: Mapped[datetime | None]
    synced_at: Mapped[datetime]


class TemplateRow(Base):
    """A message template of a WABA, as last synced from Meta (kept fields: as numbers')."""

    __tablename__ = "templates"
    __table_args__ = (
        UniqueConstraint("waba_id", "name", "language"),
        Index(None, "name", "language", "id"),  # the fleet page's name order
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    waba_id: Mapped[str] = mapped_column(ForeignKey("wabas.id", ondelete="CASCADE"))
    name: Mapped[str]
    language: Mapped[str]
    status: Mapped[str | None]
    category: Mapped[str | None]
    quality_score: Mapped[str | None]
    rejected_reason: Mapped[str | None]
    observed_at: Mapped[datetime | None]
    synced_at: Mapped[datetime]


class AccessKeyRow(Base):
    """An Alibaba-style AccessKey; the secret is kept encrypted because HMAC needs it back."""

    __tablename__ = "access_keys"

    id: Mapped[str] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: it authenticates until then, and never after.
    expires_at: Mapped[datetime | None]


class D360KeyRow(Base):
    """A 360dialog API key, bound to one phone number, stored only as a hash."""

    __tablename__ = "d360_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_hash: Mapped[str] = mapped_column(unique=True, index=True)
    phone_number_id: Mapped[str]
    label: Mapped[str | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: it authenticates until then, and never after.
    expires_at: Mapped[datetime | None]


class GraphTokenRow(Base):
    """A Graph bearer token, stored only as a hash."""

    __tablename__ = "graph_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(unique=True, index=True)
    label: Mapped[str | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: it authenticates until then, and never after.
    expires_at: Mapped[datetime | None]


class NodeHealthRow(Base):
    """The last known health of a monitored node and when to look again.

    `checked_at` is the last attempt, `fetched_at` the last successful fetch;
    a node that was scheduled but never fetched has no payload yet.
    """

    __tablename__ = "node_health"
    __table_args__ = (
        Index(None, "can_send_message", "node_id"),  # the fleet page's status
        Index(None, "node_id", "can_send_message"),  # a node's status from the index alone
    )

    node_id: Mapped[str] = mapped_column(primary_key=True)
    node_kind: Mapped[str]
    space_id: Mapped[str | None]
    can_send_message: Mapped[str | None]
    payload: Mapped[dict[str, Any] | None]
    error_codes: Mapped[list[str]]
    fetched_at: Mapped[datetime | None] = mapped_column(index=True)
    checked_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # The replica refreshing it, until the lease ends; both None when unclaimed (and always
    # on SQLite, where one process refreshes the fleet).
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]


class TransitionRow(Base):
    """A change of a node: what it was, what it became, and why we looked.

    `field` is null for a change of health (before/after: overall statuses), else the
    kept field that changed (before/after: its values).
    """

    __tablename__ = "transitions"
    __table_args__ = (
        Index(None, "node_id", "occurred_at"),
        {"sqlite_autoincrement": True},  # ids are never reused: they anchor paging and alerts
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    node_id: Mapped[str]
    node_kind: Mapped[str]
    space_id: Mapped[str | None]
    before: Mapped[str | None]
    after: Mapped[str]
    changes: Mapped[dict[str, Any]]
    error_codes: Mapped[list[str]]
    cause: Mapped[str]
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    field: Mapped[str | None]


class AlertSubscriptionRow(Base):
    """A webhook that wants to hear about transitions in a space."""

    __tablename__ = "alert_subscriptions"
    __table_args__ = (UniqueConstraint("space_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id"))
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    on_events: Mapped[list[str]]
    format: Mapped[str]
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class OutboxRow(Base):
    """One alert to deliver to one subscription; the id is the alert id receivers see."""

    __tablename__ = "outbox"
    # Not unique per (subscription, transition): the alert that a silence ended refers to
    # the node's last transition, which may have had its own alert.
    __table_args__ = (
        Index(None, "subscription_id", "transition_id"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("alert_subscriptions.id", ondelete="CASCADE")
    )
    transition_id: Mapped[int] = mapped_column(
        ForeignKey("transitions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str]
    payload: Mapped[dict[str, Any]]
    state: Mapped[str]
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    # Untried alerts of one WABA-level change share it and are merged into one.
    group_key: Mapped[str | None] = mapped_column(index=True)
    # The sender (replica id) delivering it, until the lease ends; both None when unclaimed.
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]


class SilenceRow(Base):
    """No alert is delivered for nodes in scope (a node, a WABA, a space) for a while."""

    __tablename__ = "silences"
    __table_args__ = (Index(None, "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str]
    scope_id: Mapped[str]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None]
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_alerted_at: Mapped[datetime | None]


class AcknowledgementRow(Base):
    """Someone saw a node's problem: no repeat alert while its status stays the same."""

    __tablename__ = "acknowledgements"

    node_id: Mapped[str] = mapped_column(primary_key=True)
    status: Mapped[str]
    transition_id: Mapped[int | None]
    acknowledged_by: Mapped[str | None]
    note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime]


class SignOutRow(Base):
    """A dashboard session signed out before its cookie expires: refused until then."""

    __tablename__ = "dashboard_sign_outs"
    __table_args__ = (Index(None, "expires_at"),)

    session_id: Mapped[str] = mapped_column(primary_key=True)
    expires_at: Mapped[datetime]


class AdminTokenRow(Base):
    """A bearer token for the admin API, stored only as a keyed hash.

    The token names its row (`whadm_<id>_<secret>`), so checking it is one primary-key
    read and a constant-time comparison. A token scoped to an account manages only it.
    """

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    token_hash: Mapped[str]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    """One change made through the admin API or the CLI: who, what, when."""

    __tablename__ = "audit_log"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str]
    account: Mapped[str | None] = mapped_column(index=True)
    action: Mapped[str]
    target: Mapped[str]
    details: Mapped[dict[str, Any]]


class MasterKeyCheckRow(Base):
    """Which master key the stored secrets are under: a keyed digest of a fixed text.

    One row (id 1). A replica whose key gives another digest refuses to start; the digest
    reveals nothing of the key.
    """

    __tablename__ = "master_key_check"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    digest: Mapped[str]
    updated_at: Mapped[datetime]


# Tables of the upstreams a space can have besides the default Meta token; their own
# module, imported here so that the metadata (and so every migration check) holds them.
from wahealth.storage import models_upstreams as _upstream_tables  # noqa: E402, F401
