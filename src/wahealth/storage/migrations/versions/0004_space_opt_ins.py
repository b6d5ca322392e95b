"""Spaces' opt-ins to the public views: node badges and the status page.

Revision ID: space_opt_ins
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "space_opt_ins"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("badges", "public_status")


def upgrade() -> None:
    # Not null with a server default: existing spaces stay private, no table copy needed.
    for name in _COLUMNS:
        op.add_column(
            "spaces", sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    # SQLite drops columns only by copying the table: batch mode does that for it.
    with op.batch_alter_table("spaces") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
