"""Which master key the stored secrets are under (one keyed digest), checked at start.

Revision ID: master_key_check
Revises: fleet_search_indexes
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "master_key_check"
down_revision: str | Sequence[str] | None = "fleet_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "master_key_check",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_key_check")),
    )


def downgrade() -> None:
    op.drop_table("master_key_check")
