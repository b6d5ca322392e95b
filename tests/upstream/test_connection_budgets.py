"""Which Meta budget pays for a node: its connection's, the default app's, or none (a BSP's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wahealth.core.budget import MemoryCallBudget
from wahealth.core.ports import MetaBudget
from wahealth.upstream.budgets import ConnectionBudgets
from wahealth.upstream.connections import Connection, ConnectionBook
from wahealth.upstream.graph_credentials import GraphCredentials


class _Routes:
    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = names

    async def connections_of(self, node_ids: Sequence[str]) -> Mapping[str, str]:
        return {n: self.names[n] for n in node_ids if n in self.names}


def _budgets(book: ConnectionBook) -> tuple[ConnectionBudgets, dict[str, MetaBudget]]:
    made: dict[str, MetaBudget] = {}

    def make(name: str, calls_per_minute: int) -> MetaBudget:
        made[name] = MemoryCallBudget(calls_per_minute)
        return made[name]

    routes = _Routes({"a1": "acme", "a2": "acme", "b1": "beta", "g1": "gone"})
    budgets = ConnectionBudgets(
        MemoryCallBudget(600), make, book, routes, is_bsp=lambda node_id: node_id == "bsp1"
    )
    return budgets, made


async def test_nodes_are_grouped_by_their_connections_budget() -> None:
    book = ConnectionBook()
    book.replace(
        [
            Connection("acme", GraphCredentials("t-a"), calls_per_minute=5),
            Connection("beta", GraphCredentials("t-b")),
        ]
    )
    budgets, made = _budgets(book)
    groups = await budgets.budgets_of(["a1", "b1", "d1", "bsp1", "a2", "g1"])
    by_members = {tuple(members): budget for budget, members in groups}
    assert by_members[("bsp1",)] is None
    assert by_members[("a1", "a2")] is made["acme"]
    assert by_members[("b1",)] is made["beta"]
    # No connection, or one no longer known: the default app's budget.
    assert set(by_members) == {("bsp1",), ("a1", "a2"), ("b1",), ("d1", "g1")}
    assert made["acme"].calls_per_minute == 5
    assert made["beta"].calls_per_minute == 600  # the default per app
    assert [name for name, _ in await budgets.each()] == ["default", "acme", "beta"]


async def test_a_changed_budget_is_made_again_and_no_connection_needs_no_lookup() -> None:
    book = ConnectionBook()
    budgets, made = _budgets(book)
    [(budget, members)] = await budgets.budgets_of(["a1", "b1"])
    assert members == ["a1", "b1"]
    assert budget is not None
    assert budget.calls_per_minute == 600
    assert made == {}
    book.replace([Connection("acme", GraphCredentials("t"), calls_per_minute=5)])
    first = budgets.of(Connection("acme", GraphCredentials("t"), calls_per_minute=5))
    assert (await first.spend(5)).calls == 5
    again = budgets.of(Connection("acme", GraphCredentials("t"), calls_per_minute=7))
    assert again is not first
    assert again.calls_per_minute == 7
