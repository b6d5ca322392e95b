"""Which replica is refreshing a node, and until when: the schedule's claims.

Revision ID: schedule_claims
Revises: space_upstreams
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "schedule_claims"
down_revision: str | Sequence[str] | None = "space_upstreams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: nodes scheduled before are unclaimed, no table copy needed.
    op.add_column("node_health", sa.Column("claimed_by", sa.String(), nullable=True))
    op.add_column(
        "node_health", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # SQLite drops columns only by copying the table: batch mode does that for it.
    with op.batch_alter_table("node_health") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
