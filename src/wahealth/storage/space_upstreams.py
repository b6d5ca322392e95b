"""Which spaces take their health from a BSP, with what settings (secrets encrypted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from wahealth.storage._session import Factory, insert_for, reading, writing
from wahealth.storage.models_upstreams import SpaceUpstreamRow


@dataclass(frozen=True, slots=True)
class StoredUpstream:
    """A space's BSP upstream as stored: `secrets_encrypted` is opened by the caller."""

    space_id: str
    kind: str
    settings: Mapping[str, Any]
    secrets_encrypted: str


class SpaceUpstreamRepository:
    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def put(
        self, space_id: str, kind: str, settings: Mapping[str, Any], secrets_encrypted: str
    ) -> None:
        """Make the space take its health from this upstream (replacing what was stored)."""
        values = {
            "kind": kind,
            "settings": dict(settings),
            "secrets_encrypted": secrets_encrypted,
            "updated_at": datetime.now(UTC),
        }
        async with writing(self._sessions) as session:
            insert = insert_for(session)(SpaceUpstreamRow).values(space_id=space_id, **values)
            await session.execute(
                insert.on_conflict_do_update(
                    index_elements=[SpaceUpstreamRow.space_id], set_=values
                )
            )

    async def remove(self, space_id: str) -> None:
        """The space takes its health from Meta again."""
        async with writing(self._sessions) as session:
            await session.execute(
                delete(SpaceUpstreamRow).where(SpaceUpstreamRow.space_id == space_id)
            )

    async def all(self) -> list[StoredUpstream]:
        async with reading(self._sessions) as session:
            rows = (await session.scalars(select(SpaceUpstreamRow))).all()
        return [
            StoredUpstream(row.space_id, row.kind, row.settings, row.secrets_encrypted)
            for row in rows
        ]
