"""Each Meta app's own call budget: one per connection, the default app's for the rest.

Meta counts calls per app, and each Meta connection is its own app. `ConnectionBudgets`
says which `MetaBudget` pays for a node's Graph call: the budget of the connection its
space names (the connection's `calls_per_minute`, else the default per app), the default
app's budget (`[monitor] meta_calls_per_minute`) for spaces on the default token, and
none for a node routed to a BSP (each BSP keeps its own limits). It is itself the default
app's `MetaBudget`, so whatever takes one budget goes on working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wahealth.core.ports import BudgetGrant, MetaBudget
from wahealth.upstream.connections import Connection, ConnectionBook, ConnectionRoutes

DEFAULT_CONNECTION = "default"  # the default token's app, as metrics name it

# (connection name, calls per minute) -> that app's budget (in memory or in Redis)
MakeBudget = Callable[[str, int], MetaBudget]


class ConnectionBudgets:
    """The default app's budget, and each connection's, made on first use."""

    def __init__(
        self,
        default: MetaBudget,
        make: MakeBudget,
        book: ConnectionBook,
        routes: ConnectionRoutes | None,
        is_bsp: Callable[[str], bool] = lambda node_id: False,
    ) -> None:
        self._default = default
        self._make = make
        self._book = book
        self._routes = routes
        self._is_bsp = is_bsp
        self._made: dict[str, tuple[int, MetaBudget]] = {}

    @property
    def calls_per_minute(self) -> int:
        return self._default.calls_per_minute

    async def spend(
        self, calls: int, *, waba_id: str | None = None, partial: bool = False
    ) -> BudgetGrant:
        """Spend from the default app's budget."""
        return await self._default.spend(calls, waba_id=waba_id, partial=partial)

    async def spent(self) -> int:
        return await self._default.spent()

    async def aclose(self) -> None:
        for _, budget in self._made.values():
            await budget.aclose()
        await self._default.aclose()

    def of(self, connection: Connection) -> MetaBudget:
        """The connection's budget (made again when its calls per minute changed)."""
        limit = connection.calls_per_minute or self._default.calls_per_minute
        made = self._made.get(connection.name)
        if made is None or made[0] != limit:
            made = self._made[connection.name] = (limit, self._make(connection.name, limit))
        return made[1]

    async def budgets_of(
        self, node_ids: Sequence[str]
    ) -> list[tuple[MetaBudget | None, Sequence[str]]]:
        """The nodes grouped by the budget that pays for their calls (None: a BSP's)."""
        unique = list(dict.fromkeys(node_ids))
        meta = [n for n in unique if not self._is_bsp(n)]
        groups: list[tuple[MetaBudget | None, Sequence[str]]] = []
        if len(meta) < len(unique):
            groups.append((None, [n for n in unique if self._is_bsp(n)]))
        book = await self._book.current()
        names = await self._routes.connections_of(meta) if book and self._routes and meta else {}
        by_name: dict[str | None, list[str]] = {}
        for node_id in meta:
            name = names.get(node_id)
            by_name.setdefault(name if name in book else None, []).append(node_id)
        for name, members in by_name.items():
            groups.append((self._default if name is None else self.of(book[name]), members))
        return groups

    async def each(self) -> list[tuple[str, MetaBudget]]:
        """(connection, budget) of the default app and of every connection: for metrics."""
        book = await self._book.current()
        named = [(name, self.of(book[name])) for name in sorted(book)]
        return [(DEFAULT_CONNECTION, self._default), *named]
