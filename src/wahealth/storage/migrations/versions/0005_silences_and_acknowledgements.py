"""Silences and acknowledgements of alerts; grouped alerts of one WABA-level change.

Revision ID: 0004_silences
Revises: space_opt_ins
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_silences"
down_revision: str | Sequence[str] | None = "space_opt_ins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("space_id", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("scope_id", sa.String(), nullable=False),
        sa.Column("starts_at", ts, nullable=False),
        sa.Column("ends_at", ts, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("ended_at", ts, nullable=True),
        sa.Column("end_alerted_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_silences_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_ends_at"), "silences", ["ends_at"])
    op.create_index(op.f("ix_silences_space_id"), "silences", ["space_id"])
    op.create_table(
        "acknowledgements",
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("transition_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("acknowledged_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_acknowledgements")),
    )
    # SQLite changes constraints only by copying the table: batch mode does that for it.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("group_key", sa.String(), nullable=True))
        batch.drop_constraint("uq_outbox_subscription_id_transition_id", type_="unique")
        batch.create_index(
            "ix_outbox_subscription_id_transition_id", ["subscription_id", "transition_id"]
        )
        batch.create_index("ix_outbox_group_key", ["group_key"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_group_key")
        batch.drop_index("ix_outbox_subscription_id_transition_id")
        batch.create_unique_constraint(
            "uq_outbox_subscription_id_transition_id", ["subscription_id", "transition_id"]
        )
        batch.drop_column("group_key")
    op.drop_table("acknowledgements")
    op.drop_table("silences")
