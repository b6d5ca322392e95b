"""Who is delivering an alert, and until when: the outbox's claims, shared by every replica.

Revision ID: outbox_claims
Revises: master_key_check
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "outbox_claims"
down_revision: str | Sequence[str] | None = "master_key_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: alerts written before are unclaimed, no table copy needed.
    op.add_column("outbox", sa.Column("claimed_by", sa.String(), nullable=True))
    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite drops columns only by copying the table: batch mode does that for it.
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
