"""The catalog: phone numbers and templates of each WABA, as synced from Meta.

It answers the questions the dialects ask before they can query Meta: which
phone_number_id is `8613800000001` in this space, which template id is
(`order_update`, `en`), and does this node id belong to the caller at all.

It keeps each node's kept fields too (quality, limits, statuses): a replace writes the
values it brings but never clears one Meta did not send; `PropertyRepository` records
their changes as transitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import Select, String, Table, delete, insert, literal, select, union_all, update

from wahealth.domain.model import NodeKind
from wahealth.domain.nodes import normalize_phone_number
from wahealth.domain.properties import PHONE_NUMBER_FIELDS, TEMPLATE_FIELDS
from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.storage._session import Factory, reading, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import UnknownWaba
from wahealth.storage.models import AccountRow, PhoneNumberRow, SpaceRow, TemplateRow, WabaRow
from wahealth.storage.tenancy import TenancyRepository

_CatalogRow = TypeVar("_CatalogRow", PhoneNumberRow, TemplateRow)


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    id: str
    waba_id: str
    display_phone_number: str
    digits: str
    verified_name: str | None
    quality_rating: str | None
    synced_at: datetime
    messaging_limit_tier: str | None = None
    whatsapp_business_manager_messaging_limit: str | None = None
    throughput: str | None = None
    status: str | None = None
    name_status: str | None = None
    code_verification_status: str | None = None
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    status: str | None
    category: str | None
    synced_at: datetime
    quality_score: str | None = None
    rejected_reason: str | None = None
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplaceSummary:
    added: int
    updated: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class PhoneNumberRef(NamedTuple):
    phone_number_id: str
    waba_id: str


class TemplateRef(NamedTuple):
    template_id: str
    waba_id: str


class NodeRef(NamedTuple):
    """A node the monitor watches."""

    node_id: str
    kind: NodeKind
    space_id: str


def catalog_nodes() -> Select[str, str, str]:
    """Every WABA, phone number and template as (node_id, kind, space_id) rows."""
    return (
        union_all(
            select(
                WabaRow.id.label("node_id"),
                literal(NodeKind.WABA.value, String).label("kind"),
                WabaRow.space_id.label("space_id"),
            ),
            select(
                PhoneNumberRow.id,
                literal(NodeKind.PHONE_NUMBER.value, String),
                WabaRow.space_id,
            ).join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id),
            select(
                TemplateRow.id,
                literal(NodeKind.MESSAGE_TEMPLATE.value, String),
                WabaRow.space_id,
            ).join(WabaRow, WabaRow.id == TemplateRow.waba_id),
        )
        .subquery("catalog_nodes")
        .select()
    )


class CatalogRepository:
    """Replace a WABA's numbers and templates; resolve user-facing names to node ids."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions
        self._tenancy = TenancyRepository(sessions)

    async def replace_phone_numbers(
        self,
        waba_id: str,
        records: Iterable[PhoneNumberRecord],
        synced_at: datetime | None = None,
    ) -> ReplaceSummary:
        """Make the WABA's numbers exactly `records`, in one transaction."""
        wanted = {
            record.id: {
                **_kept(record, PHONE_NUMBER_FIELDS),
                "display_phone_number": record.display_phone_number,
                "digits": normalize_phone_number(record.display_phone_number),
            }
            for record in records
        }
        return await self._replace(PhoneNumberRow, waba_id, wanted, synced_at or utcnow())

    async def replace_templates(
        self,
        waba_id: str,
        records: Iterable[TemplateRecord],
        synced_at: datetime | None = None,
    ) -> ReplaceSummary:
        """Make the WABA's templates exactly `records`, in one transaction."""
        wanted = {
            record.id: {
                "name": record.name,
                "language": record.language,
                **_kept(record, TEMPLATE_FIELDS),
            }
            for record in records
        }
        return await self._replace(TemplateRow, waba_id, wanted, synced_at or utcnow())

    async def _replace(
        self,
        model: type[_CatalogRow],
        waba_id: str,
        wanted: dict[str, dict[str, str | None]],
        synced_at: datetime,
    ) -> ReplaceSummary:
        """Bulk statements, not one ORM object per row: a WABA can list thousands of numbers."""
        columns = [model.__table__.c[name] for name in _fields_of(model)]
        async with writing(self._sessions) as session:
            waba = await session.get(WabaRow, waba_id, with_for_update=True)
            if waba is None:
                raise UnknownWaba(waba_id)
            # Rows of this WABA, and rows elsewhere that Meta now lists here (moved).
            stored: dict[str, dict[str, str | None]] = {}
            wanted_ids = list(wanted)
            for condition in [model.waba_id == waba_id] + [
                model.id.in_(chunk) for chunk in _chunks(wanted_ids, _IN_CHUNK)
            ]:
                rows = await session.execute(
                    select(model.id, model.waba_id, *columns).where(condition)
                )
                for row in rows:
                    stored[row[0]] = {
                        "waba_id": row[1],
                        **dict(zip(_fields_of(model), row[2:], strict=True)),
                    }
            for node_id, values in wanted.items():
                known = stored.get(node_id)
                if known is not None:  # a value Meta did not send is kept, not cleared
                    values.update({k: known[k] for k, v in values.items() if v is None})
            # Deleted first: a template re-created under the same name and language
            # has a new id and must not collide with the old row.
            removed = [node_id for node_id in stored if node_id not in wanted]
            for chunk in _chunks(removed, _IN_CHUNK):
                await session.execute(delete(model).where(model.id.in_(chunk)))
            added = [
                {"id": node_id, "waba_id": waba_id, "synced_at": synced_at, **values}
                for node_id, values in wanted.items()
                if node_id not in stored
            ]
            changed = [
                {"id": node_id, "waba_id": waba_id, **values}
                for node_id, values in wanted.items()
                if node_id in stored and stored[node_id] != {"waba_id": waba_id, **values}
            ]
            if added:  # the table, not the class: one Core executemany, no ORM bookkeeping
                await session.execute(insert(cast(Table, model.__table__)), added)
            if changed:
                await session.execute(update(model), changed)  # by primary key, executemany
            await session.execute(
                update(model)
                .where(model.waba_id == waba_id)
                .values(synced_at=synced_at)
                .execution_options(synchronize_session=False)
            )
            waba.synced_at = synced_at
            return ReplaceSummary(len(added), len(changed), len(removed))

    async def phone_numbers_of_waba(self, waba_id: str) -> list[PhoneNumber]:
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(PhoneNumberRow)
                .where(PhoneNumberRow.waba_id == waba_id)
                .order_by(PhoneNumberRow.id)
            )
            return [
                PhoneNumber(
                    r.id,
                    r.waba_id,
                    r.display_phone_number,
                    r.digits,
                    r.verified_name,
                    r.quality_rating,
                    r.synced_at,
                    messaging_limit_tier=r.messaging_limit_tier,
                    whatsapp_business_manager_messaging_limit=(
                        r.whatsapp_business_manager_messaging_limit
                    ),
                    throughput=r.throughput,
                    status=r.status,
                    name_status=r.name_status,
                    code_verification_status=r.code_verification_status,
                    observed_at=r.observed_at,
                )
                for r in rows
            ]

    async def templates_of_waba(self, waba_id: str) -> list[Template]:
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(TemplateRow)
                .where(TemplateRow.waba_id == waba_id)
                .order_by(TemplateRow.name, TemplateRow.language, TemplateRow.id)
            )
            return [
                Template(
                    r.id,
                    r.waba_id,
                    r.name,
                    r.language,
                    r.status,
                    r.category,
                    r.synced_at,
                    quality_score=r.quality_score,
                    rejected_reason=r.rejected_reason,
                    observed_at=r.observed_at,
                )
                for r in rows
            ]

    async def phone_number_by_digits(self, space_id: str, digits: str) -> PhoneNumberRef | None:
        """The number written `digits` (any punctuation) among the space's WABAs."""
        query = (
            select(PhoneNumberRow.id, PhoneNumberRow.waba_id)
            .join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id)
            .where(
                WabaRow.space_id == space_id,
                PhoneNumberRow.digits == normalize_phone_number(digits),
            )
            .order_by(PhoneNumberRow.id)
            .limit(1)
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        return None if found is None else PhoneNumberRef(*found)

    async def template_by_code(
        self, space_id: str, name: str, language: str, waba_id: str | None = None
    ) -> TemplateRef | None:
        """The template (name, language) in the space; `waba_id` picks among several WABAs."""
        query = (
            select(TemplateRow.id, TemplateRow.waba_id)
            .join(WabaRow, WabaRow.id == TemplateRow.waba_id)
            .where(
                WabaRow.space_id == space_id,
                TemplateRow.name == name,
                TemplateRow.language == language,
            )
            .order_by(TemplateRow.waba_id, TemplateRow.id)
            .limit(1)
        )
        if waba_id is not None:
            query = query.where(TemplateRow.waba_id == waba_id)
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        return None if found is None else TemplateRef(*found)

    async def node_in_account(self, node_id: str, account_name: str) -> str | None:
        """The space id if this phone number, template or WABA id is in one of the account's
        spaces, else None."""
        nodes = catalog_nodes().subquery()
        query = (
            select(nodes.c.space_id)
            .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(nodes.c.node_id == node_id, AccountRow.name == account_name)
            .limit(1)
        )
        async with reading(self._sessions) as session:
            space_id: str | None = await session.scalar(query)
            return space_id

    async def node_owner(self, node_id: str, account_name: str) -> tuple[str, str] | None:
        """(space id, WABA id) if this phone number, template or WABA id is in one of the
        account's spaces, else None."""
        owners = union_all(
            select(WabaRow.space_id.label("space_id"), WabaRow.id.label("waba_id")).where(
                WabaRow.id == node_id
            ),
            select(WabaRow.space_id, WabaRow.id)
            .join(PhoneNumberRow, PhoneNumberRow.waba_id == WabaRow.id)
            .where(PhoneNumberRow.id == node_id),
            select(WabaRow.space_id, WabaRow.id)
            .join(TemplateRow, TemplateRow.waba_id == WabaRow.id)
            .where(TemplateRow.id == node_id),
        ).subquery("owners")
        query = (
            select(owners.c.space_id, owners.c.waba_id)
            .join(SpaceRow, SpaceRow.id == owners.c.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(AccountRow.name == account_name)
            .limit(1)
        )
        async with reading(self._sessions) as session:
            row = (await session.execute(query)).first()
        return None if row is None else (str(row[0]), str(row[1]))

    async def nodes_of_space(self, space_id: str) -> list[NodeRef]:
        """Every WABA, phone number and template of a space."""
        nodes = catalog_nodes().subquery()
        return await self._nodes(select(nodes).where(nodes.c.space_id == space_id))

    async def all_nodes(self, include_disabled: bool = False) -> list[NodeRef]:
        """Every node to monitor; nodes of disabled accounts only on request."""
        nodes = catalog_nodes().subquery()
        query = select(nodes)
        if not include_disabled:
            query = (
                query.join(SpaceRow, SpaceRow.id == nodes.c.space_id)
                .join(AccountRow, AccountRow.id == SpaceRow.account_id)
                .where(AccountRow.disabled_at.is_(None))
            )
        return await self._nodes(query)

    async def _nodes(self, query: Select[str, str, str]) -> list[NodeRef]:
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
        refs = [NodeRef(node_id, NodeKind(kind), space) for node_id, kind, space in rows]
        return sorted(refs, key=lambda ref: (ref.space_id, ref.kind, ref.node_id))

    async def account_of_space(self, space_id: str) -> str | None:
        """The name of the account owning a space."""
        return await self._tenancy.account_of_space(space_id)

    async def wabas_of_space(self, space_id: str) -> list[str]:
        """Ids of the WABAs in a space."""
        return await self._tenancy.wabas_of_space(space_id)


_IN_CHUNK = 500  # ids per IN (...) list, well under any database's parameter limit
_FIELDS: dict[str, tuple[str, ...]] = {
    "phone_numbers": (*PHONE_NUMBER_FIELDS, "digits"),
    "templates": ("name", "language", *TEMPLATE_FIELDS),
}


def _kept(record: Any, names: tuple[str, ...]) -> dict[str, str | None]:
    """A record's kept fields; one that lacks a field (any record shape goes) did not send it."""
    return {name: getattr(record, name, None) for name in names}


def _fields_of(model: type[_CatalogRow]) -> tuple[str, ...]:
    """The synced columns of a catalog table (besides id, waba_id and synced_at)."""
    return _FIELDS[model.__tablename__]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
