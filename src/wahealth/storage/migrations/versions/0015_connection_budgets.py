"""A Meta connection's own call budget (calls per minute; null: the default per app).

Revision ID: connection_budgets
Revises: meta_connections
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "connection_budgets"
down_revision: str | Sequence[str] | None = "meta_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meta_connections") as batch:
        batch.add_column(sa.Column("calls_per_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meta_connections") as batch:
        batch.drop_column("calls_per_minute")
