"""Indexes for the fleet page's search and its never-fetched nodes.

Everywhere: `node_health (node_id, can_send_message)`, so that "never fetched" (no
stored status) is answered from an index alone, node by node, in any order.

On PostgreSQL, when the `pg_trgm` extension is there or can be created: trigram indexes
on what a search matches inside a name (a number's verified name and digits, a
template's name), and prefix indexes on the ids (a number's digits are matched as the
start of an id). A search means the same without them (a substring, case-insensitive);
only slower. They are not in the models (`models.OPTIONAL_INDEX_PREFIX`): a database
without the extension lacks them and is still at head.

Revision ID: fleet_search_indexes
Revises: admin_api
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fleet_search_indexes"
down_revision: str | Sequence[str] | None = "admin_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

# (name, table, column, method, operator class): PostgreSQL with pg_trgm only.
SEARCH_INDEXES = (
    (
        "ix_search_phone_numbers_verified_name",
        "phone_numbers",
        "verified_name",
        "gin",
        "gin_trgm_ops",
    ),
    ("ix_search_phone_numbers_digits", "phone_numbers", "digits", "gin", "gin_trgm_ops"),
    ("ix_search_templates_name", "templates", "name", "gin", "gin_trgm_ops"),
    ("ix_search_phone_numbers_id", "phone_numbers", "id", "btree", "varchar_pattern_ops"),
    ("ix_search_templates_id", "templates", "id", "btree", "varchar_pattern_ops"),
)


def _trigram_schema() -> str | None:
    """The schema pg_trgm is installed in (created here if this role may), or None."""
    bind = op.get_bind()
    installed = sa.text(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    )
    schema: str | None = bind.scalar(installed)
    if schema is not None:
        return schema
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning("pg_trgm is not available (%s): the fleet search will scan", error.orig)
        return None
    created: str | None = bind.scalar(installed)
    return created


def upgrade() -> None:
    op.create_index(
        op.f("ix_node_health_node_id_can_send_message"),
        "node_health",
        ["node_id", "can_send_message"],
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _trigram_schema()
    if schema is None:
        return
    for name, table, column, method, ops in SEARCH_INDEXES:
        # The trigram classes are named with their schema, which need not be on the path.
        qualified = f"{schema}.{ops}" if ops.startswith("gin_trgm") else ops
        op.create_index(
            name, table, [column], postgresql_using=method, postgresql_ops={column: qualified}
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, *_ in reversed(SEARCH_INDEXES):
            op.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
    op.drop_index(op.f("ix_node_health_node_id_can_send_message"), table_name="node_health")
