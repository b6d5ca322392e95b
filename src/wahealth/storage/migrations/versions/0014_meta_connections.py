"""Named Meta connections (token and app secret, encrypted) and the space's connection.

Revision ID: meta_connections
Revises: schedule_claims
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "meta_connections"
down_revision: str | Sequence[str] | None = "schedule_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "meta_connections",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("app_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("checked_at", ts, nullable=True),
        sa.Column("changed_at", ts, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_meta_connections")),
    )
    op.add_column("spaces", sa.Column("connection", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.drop_column("connection")
    op.drop_table("meta_connections")
