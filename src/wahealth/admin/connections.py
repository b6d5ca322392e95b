"""Meta connections through the admin use cases: list, create (and check), check, delete, and
which connection a space uses. Operators only: a connection's token reaches every node of
its businesses, so a tenant token may not create one or point a space at one.

Neither the token nor the app secret is ever answered, audited or logged: they are stored
encrypted under the master key; answers and the audit say only whether an app secret is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from wahealth.admin import schemas
from wahealth.admin.service import AdminBase
from wahealth.admin.tokens import Caller
from wahealth.storage.connections import ConnectionRepository, StoredConnection, UnknownConnection

Check = Callable[[str], Awaitable[None]]


def shown_connection(stored: StoredConnection) -> schemas.Connection:
    return schemas.Connection(
        name=stored.name,
        state=stored.state,
        problem=stored.problem,
        app_secret=stored.app_secret_encrypted is not None,
        meta_calls_per_minute=stored.calls_per_minute,
        spaces=list(stored.spaces),
        checked_at=stored.checked_at,
        changed_at=stored.changed_at,
        created_at=stored.created_at,
    )


class Connections(AdminBase):
    """Named Meta connections."""

    @property
    def _repo(self) -> ConnectionRepository:
        assert self.stores.connections is not None, "connections need their repository"
        return self.stores.connections

    async def _get(self, name: str) -> StoredConnection:
        found = await self._repo.get(name)
        if found is None:
            raise UnknownConnection(name)
        return found

    async def list(self, caller: Caller) -> list[schemas.Connection]:
        self.operator_only(caller, "Meta connections")
        return [shown_connection(c) for c in await self._repo.list_connections()]

    async def get(self, caller: Caller, name: str) -> schemas.Connection:
        self.operator_only(caller, "Meta connections")
        return shown_connection(await self._get(name))

    async def create(self, caller: Caller, body: schemas.ConnectionCreate) -> schemas.Connection:
        """Store (or replace) a connection, then check it with Meta; the answer says how it went."""
        self.operator_only(caller, "Meta connections")
        box = self.stores.secretbox
        secret = None if body.app_secret is None else box.encrypt(body.app_secret)
        await self._repo.put(
            body.name, box.encrypt(body.access_token), secret, same=False,
            calls_per_minute=body.meta_calls_per_minute,
        )  # fmt: skip
        await self.changed(
            caller, "connection.create", f"connection:{body.name}", None,
            app_secret=body.app_secret is not None,
            meta_calls_per_minute=body.meta_calls_per_minute,
        )  # fmt: skip
        self.stores.connections_changed()
        await self.stores.check_connection(body.name)
        return shown_connection(await self._get(body.name))

    async def check(self, caller: Caller, name: str) -> schemas.Connection:
        self.operator_only(caller, "Meta connections")
        await self._get(name)
        await self.stores.check_connection(name)
        checked = await self._get(name)
        await self.changed(
            caller, "connection.check", f"connection:{name}", None, state=checked.state
        )
        return shown_connection(checked)

    async def delete(self, caller: Caller, name: str) -> schemas.Connection:
        self.operator_only(caller, "Meta connections")
        gone = await self._repo.delete(name)
        await self.changed(caller, "connection.delete", f"connection:{name}", None)
        self.stores.connections_changed()
        return shown_connection(gone)

    async def set_space(
        self, caller: Caller, space_id: str, body: schemas.SpaceConnection
    ) -> schemas.SpaceConnectionSet:
        self.operator_only(caller, "a space's Meta connection")
        await self._repo.set_space_connection(space_id, body.connection)
        account = await self.stores.tenancy.account_of_space(space_id)
        await self.changed(
            caller, "space.connection", f"space:{space_id}", account, connection=body.connection
        )
        self.stores.connections_changed()
        return schemas.SpaceConnectionSet(space=space_id, connection=body.connection)
