"""Dashboard sessions signed out before their cookies expire (the dashboard's `SignOuts`).

A session cookie is self-contained (see `wahealth.web.dashboard.session`); signing out
records the session's random id here until the cookie would have expired anyway, so a
copy of the cookie kept after signing out opens nothing, in every worker. Rows past
their expiry are dropped at the next sign-out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from wahealth.storage._session import Factory, insert_for, reading, writing
from wahealth.storage.models import SignOutRow

MAX_SESSION_ID_CHARS = 128


class SignOutRepository:
    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def sign_out(self, session_id: str, expires_at: datetime) -> None:
        """Refuse this session from now until `expires_at`."""
        if not 0 < len(session_id) <= MAX_SESSION_ID_CHARS:
            return
        now = datetime.now(UTC)
        async with writing(self._sessions) as session:
            await session.execute(delete(SignOutRow).where(SignOutRow.expires_at <= now))
            insert = insert_for(session)(SignOutRow).values(
                session_id=session_id, expires_at=expires_at
            )
            await session.execute(insert.on_conflict_do_nothing())

    async def signed_out(self, session_id: str) -> bool:
        if not 0 < len(session_id) <= MAX_SESSION_ID_CHARS:
            return True
        async with reading(self._sessions) as session:
            found = await session.scalar(
                select(SignOutRow.session_id).where(SignOutRow.session_id == session_id)
            )
        return found is not None
