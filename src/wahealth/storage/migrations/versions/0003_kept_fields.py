"""Quality, messaging limits and statuses of numbers and templates; field transitions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PHONE_NUMBER_COLUMNS = (
    "messaging_limit_tier",
    "whatsapp_business_manager_messaging_limit",
    "throughput",
    "status",
    "name_status",
    "code_verification_status",
)
_TEMPLATE_COLUMNS = ("quality_score", "rejected_reason")


def upgrade() -> None:
    # Nullable columns only: a plain ADD COLUMN on both SQLite and PostgreSQL, no table copy.
    ts = sa.DateTime(timezone=True)
    for name in _PHONE_NUMBER_COLUMNS:
        op.add_column("phone_numbers", sa.Column(name, sa.String(), nullable=True))
    op.add_column("phone_numbers", sa.Column("observed_at", ts, nullable=True))
    for name in _TEMPLATE_COLUMNS:
        op.add_column("templates", sa.Column(name, sa.String(), nullable=True))
    op.add_column("templates", sa.Column("observed_at", ts, nullable=True))
    op.add_column("transitions", sa.Column("field", sa.String(), nullable=True))


def downgrade() -> None:
    # SQLite drops columns only by copying the table: batch mode does that for it.
    with op.batch_alter_table("transitions") as batch:
        batch.drop_column("field")
    with op.batch_alter_table("templates") as batch:
        for name in (*_TEMPLATE_COLUMNS, "observed_at"):
            batch.drop_column(name)
    with op.batch_alter_table("phone_numbers") as batch:
        for name in (*_PHONE_NUMBER_COLUMNS, "observed_at"):
            batch.drop_column(name)
