"""Which space a node, WABA or space is in, within an account: who may silence what."""

from __future__ import annotations

from sqlalchemy import select

from wahealth.domain.records import SilenceScope
from wahealth.storage._session import Factory, reading
from wahealth.storage.catalog import catalog_nodes
from wahealth.storage.models import AccountRow, SpaceRow


class SilenceOwners:
    """Which space a node, WABA or space is in, within an account (`core.alerting.Owners`)."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def space_of(self, account: str | None, scope: SilenceScope, scope_id: str) -> str | None:
        if scope is SilenceScope.SPACE:
            query = select(SpaceRow.id).where(SpaceRow.id == scope_id)
        else:
            nodes = catalog_nodes().subquery()
            query = (
                select(SpaceRow.id)
                .join(nodes, nodes.c.space_id == SpaceRow.id)
                .where(nodes.c.node_id == scope_id)
            )
            if scope is SilenceScope.WABA:
                query = query.where(nodes.c.kind == "WABA")
        if account is not None:
            query = query.join(AccountRow, AccountRow.id == SpaceRow.account_id).where(
                AccountRow.name == account
            )
        async with reading(self._sessions) as session:
            found = await session.scalar(query.limit(1))
        return None if found is None else str(found)

    async def spaces_of(self, account: str) -> list[str]:
        query = (
            select(SpaceRow.id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(AccountRow.name == account)
            .order_by(SpaceRow.id)
        )
        async with reading(self._sessions) as session:
            return [str(space) for space in await session.scalars(query)]
