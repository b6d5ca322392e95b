"""The dashboard's signed-out sessions: a cookie signed out is refused until it expires.

Revision ID: dashboard_sign_outs
Revises: fleet_page_indexes
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dashboard_sign_outs"
down_revision: str | Sequence[str] | None = "fleet_page_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sign_outs",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_dashboard_sign_outs")),
    )
    op.create_index(
        op.f("ix_dashboard_sign_outs_expires_at"), "dashboard_sign_outs", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dashboard_sign_outs_expires_at"), table_name="dashboard_sign_outs")
    op.drop_table("dashboard_sign_outs")
