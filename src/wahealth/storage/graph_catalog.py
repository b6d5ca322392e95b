"""The catalog as the Graph read API reads it: nodes and edges with Meta's field names.

Each row's columns that carry a Meta field (the column is named as Meta names the field)
are handed over; a column added to the catalog with Meta's name is served from here
without a change to this module, and a field the catalog does not store is read from
Meta by the core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from wahealth.core.ports import CatalogNode
from wahealth.domain import properties
from wahealth.domain.model import NodeKind
from wahealth.storage._session import Factory, reading
from wahealth.storage.models import PhoneNumberRow, TemplateRow, WabaRow

# Meta's fields of each node type the catalog may keep, by their Graph names: the
# identifying ones and the kept fields (`wahealth.domain.properties`); only those that are
# columns are read.
PHONE_NUMBER_FIELDS = ("id", *properties.PHONE_NUMBER_FIELDS, "platform_type", "account_mode")
TEMPLATE_FIELDS = ("id", "name", "language", *properties.TEMPLATE_FIELDS)
WABA_FIELDS = ("id", "name")

_Row = PhoneNumberRow | TemplateRow | WabaRow


def _columns(model: type[_Row], names: Sequence[str]) -> tuple[str, ...]:
    table_columns = model.__table__.columns
    return tuple(name for name in names if name in table_columns)


def _fields(row: _Row, columns: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in columns}


class GraphCatalogRepository:
    """`GraphCatalog` over the catalog tables."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions
        self._phone_columns = _columns(PhoneNumberRow, PHONE_NUMBER_FIELDS)
        self._template_columns = _columns(TemplateRow, TEMPLATE_FIELDS)
        self._waba_columns = _columns(WabaRow, WABA_FIELDS)

    async def node(self, node_id: str) -> CatalogNode | None:
        async with reading(self._sessions) as session:
            phone = await session.get(PhoneNumberRow, node_id)
            if phone is not None:
                return self._phone(phone)
            template = await session.get(TemplateRow, node_id)
            if template is not None:
                return self._template(template)
            waba = await session.get(WabaRow, node_id)
            if waba is not None:
                fields = _fields(waba, self._waba_columns)
                return CatalogNode(waba.id, NodeKind.WABA.value, waba.id, fields)
        return None

    async def edge(self, waba_id: str, edge: str) -> Sequence[CatalogNode]:
        async with reading(self._sessions) as session:
            if edge == "phone_numbers":
                phones = await session.scalars(
                    select(PhoneNumberRow)
                    .where(PhoneNumberRow.waba_id == waba_id)
                    .order_by(PhoneNumberRow.id)
                )
                return [self._phone(row) for row in phones]
            if edge == "message_templates":
                templates = await session.scalars(
                    select(TemplateRow)
                    .where(TemplateRow.waba_id == waba_id)
                    .order_by(TemplateRow.name, TemplateRow.language, TemplateRow.id)
                )
                return [self._template(row) for row in templates]
        raise ValueError(f"no catalog edge {edge!r}")

    def _phone(self, row: PhoneNumberRow) -> CatalogNode:
        fields = _fields(row, self._phone_columns)
        return CatalogNode(row.id, NodeKind.PHONE_NUMBER.value, row.waba_id, fields)

    def _template(self, row: TemplateRow) -> CatalogNode:
        fields = _fields(row, self._template_columns)
        return CatalogNode(row.id, NodeKind.MESSAGE_TEMPLATE.value, row.waba_id, fields)
