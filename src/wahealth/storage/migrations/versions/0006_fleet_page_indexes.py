"""Indexes for the dashboard's fleet page: name orders, status and age of health.

Each branch of a fleet page reads an index range in its own order (see
`wahealth.storage.fleet_query`): phone numbers by display number, templates by name and
language, stored health by status or by when it was fetched.

Revision ID: fleet_page_indexes
Revises: 0004_silences
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "fleet_page_indexes"
down_revision: str | Sequence[str] | None = "0004_silences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("phone_numbers", ("display_phone_number", "id")),
    ("templates", ("name", "language", "id")),
    ("node_health", ("can_send_message", "node_id")),
    ("node_health", ("fetched_at",)),
)


def upgrade() -> None:
    for table, columns in INDEXES:
        op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def downgrade() -> None:
    for table, columns in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table_name=table)
