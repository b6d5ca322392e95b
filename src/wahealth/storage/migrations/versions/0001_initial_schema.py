"""Initial schema: tenancy, credentials, catalog, health history and the alert outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    """JSON documents: JSONB on PostgreSQL, JSON text elsewhere."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("qps", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("disabled_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "spaces",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_spaces_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spaces")),
    )
    op.create_index(op.f("ix_spaces_account_id"), "spaces", ["account_id"])
    op.create_table(
        "wabas",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("space_id", sa.String(), nullable=False),
        sa.Column("business_id", sa.String(), nullable=True),
        sa.Column("app_id", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("synced_at", ts, nullable=True),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name=op.f("fk_wabas_space_id_spaces")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wabas")),
    )
    op.create_index(op.f("ix_wabas_space_id"), "wabas", ["space_id"])
    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("waba_id", sa.String(), nullable=False),
        sa.Column("display_phone_number", sa.String(), nullable=False),
        sa.Column("digits", sa.String(), nullable=False),
        sa.Column("verified_name", sa.String(), nullable=True),
        sa.Column("quality_rating", sa.String(), nullable=True),
        sa.Column("synced_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["waba_id"],
            ["wabas.id"],
            name=op.f("fk_phone_numbers_waba_id_wabas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_numbers")),
    )
    op.create_index(op.f("ix_phone_numbers_digits"), "phone_numbers", ["digits"])
    op.create_index(op.f("ix_phone_numbers_waba_id"), "phone_numbers", ["waba_id"])
    op.create_table(
        "templates",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("waba_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("synced_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["waba_id"], ["wabas.id"], name=op.f("fk_templates_waba_id_wabas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint(
            "waba_id", "name", "language", name=op.f("uq_templates_waba_id_name_language")
        ),
    )

    op.create_table(
        "access_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_access_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_keys")),
    )
    op.create_index(op.f("ix_access_keys_account_id"), "access_keys", ["account_id"])
    op.create_table(
        "d360_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("phone_number_id", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_d360_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_d360_keys")),
    )
    op.create_index(op.f("ix_d360_keys_account_id"), "d360_keys", ["account_id"])
    op.create_index(op.f("ix_d360_keys_key_hash"), "d360_keys", ["key_hash"], unique=True)
    op.create_table(
        "graph_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_graph_tokens_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_tokens")),
    )
    op.create_index(op.f("ix_graph_tokens_account_id"), "graph_tokens", ["account_id"])
    op.create_index(op.f("ix_graph_tokens_token_hash"), "graph_tokens", ["token_hash"], unique=True)
    op.create_table(
        "revisions",
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("topic", name=op.f("pk_revisions")),
    )

    op.create_table(
        "node_health",
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("node_kind", sa.String(), nullable=False),
        sa.Column("space_id", sa.String(), nullable=True),
        sa.Column("can_send_message", sa.String(), nullable=True),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("error_codes", _json(), nullable=False),
        sa.Column("fetched_at", ts, nullable=True),
        sa.Column("checked_at", ts, nullable=True),
        sa.Column("next_due_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_health")),
    )
    op.create_index(op.f("ix_node_health_next_due_at"), "node_health", ["next_due_at"])
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("node_kind", sa.String(), nullable=False),
        sa.Column("space_id", sa.String(), nullable=True),
        sa.Column("before", sa.String(), nullable=True),
        sa.Column("after", sa.String(), nullable=False),
        sa.Column("changes", _json(), nullable=False),
        sa.Column("error_codes", _json(), nullable=False),
        sa.Column("cause", sa.String(), nullable=False),
        sa.Column("occurred_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transitions")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_transitions_node_id_occurred_at"), "transitions", ["node_id", "occurred_at"]
    )
    op.create_index(op.f("ix_transitions_occurred_at"), "transitions", ["occurred_at"])

    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("space_id", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("on_events", _json(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("disabled_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name=op.f("fk_alert_subscriptions_space_id_spaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_subscriptions")),
        sa.UniqueConstraint("space_id", "url", name=op.f("uq_alert_subscriptions_space_id_url")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("transition_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("delivered_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["alert_subscriptions.id"],
            name=op.f("fk_outbox_subscription_id_alert_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transition_id"],
            ["transitions.id"],
            name=op.f("fk_outbox_transition_id_transitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint(
            "subscription_id", "transition_id", name=op.f("uq_outbox_subscription_id_transition_id")
        ),
    )
    op.create_index(op.f("ix_outbox_state_next_attempt_at"), "outbox", ["state", "next_attempt_at"])
    op.create_index(op.f("ix_outbox_transition_id"), "outbox", ["transition_id"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "outbox",
        "alert_subscriptions",
        "transitions",
        "node_health",
        "revisions",
        "graph_tokens",
        "d360_keys",
        "access_keys",
        "templates",
        "phone_numbers",
        "wabas",
        "spaces",
        "accounts",
    ):
        op.drop_table(table)
