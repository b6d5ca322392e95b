"""The admin API: admin tokens, the audit log, key expiry (rotation), deleted accounts/spaces.

Revision ID: admin_api
Revises: dashboard_sign_outs
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "admin_api"
down_revision: str | Sequence[str] | None = "dashboard_sign_outs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_TABLES = ("access_keys", "d360_keys", "graph_tokens")
DELETABLE = ("accounts", "spaces")


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    for table in KEY_TABLES:
        op.add_column(table, sa.Column("expires_at", ts, nullable=True))
    for table in DELETABLE:
        op.add_column(table, sa.Column("deleted_at", ts, nullable=True))
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_admin_tokens_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", ts, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_log_occurred_at"), "audit_log", ["occurred_at"])
    op.create_index(op.f("ix_audit_log_account"), "audit_log", ["account"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_account"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_occurred_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("admin_tokens")
    for table in reversed(DELETABLE):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_at")
    for table in reversed(KEY_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("expires_at")
