"""GET /status/{space}: a public page of each number and template with 90 daily bars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.web._public import (
    AVAILABLE_PHONE,
    BLOCKED,
    BLOCKED_TEMPLATE,
    DEMO_NODES,
    LIMITED_PHONE,
    OTHER_PHONE,
    OTHER_WABA,
    refresh,
    set_health,
    split_settings,
)

from wahealth.domain.catalog import describe
from wahealth.testing import DEMO, RunningApp, running_app
from wahealth.upstream.emulator.app import emulator_state

PUBLIC = {"public_status": True}


class _Bars(HTMLParser):
    """Each node section's bar classes and tooltips, and all visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, list[str]] = {}
        self.titles: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._node: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and (found.get("id") or "").startswith("node-"):
            self._node = (found["id"] or "").removeprefix("node-")
            self.bars[self._node], self.titles[self._node] = [], []
        elif tag == "rect" and self._node is not None:
            self.bars[self._node].append(found.get("class") or "")
        self._in_title = tag == "title" and self._node is not None

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._node = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self._node is not None:
            self.titles[self._node].append(data)
        self.text.append(data)


async def _json(running: RunningApp, space: str = DEMO.space, **params: str) -> dict[str, Any]:
    answer = await running.client.get(f"/status/{space}.json", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "max-age=60, public"
    body: dict[str, Any] = answer.json()
    return body


async def _html(running: RunningApp, space: str = DEMO.space) -> tuple[str, _Bars]:
    answer = await running.client.get(f"/status/{space}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    parsed = _Bars()
    parsed.feed(answer.text)
    return answer.text, parsed


async def _record(running: RunningApp, node_id: str, kind: str, at: datetime, status: str) -> None:
    payload = {"can_send_message": status, "entities": []}
    await running.components.history.record(
        node_id, kind, DEMO.space, status, payload, [], at, "poll"
    )


def _by_date(view: dict[str, Any], bars: list[str | None]) -> dict[date, str | None]:
    first = date.fromisoformat(view["from"])
    return {first + timedelta(days=i): status for i, status in enumerate(bars)}


async def test_bars_are_each_days_worst_status_from_stored_transitions(tmp_path: Path) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = midnight.date()
    history = [
        (30, 8, "AVAILABLE"),  # first report: no data before it
        (10, 8, "BLOCKED"),
        (10, 9, "AVAILABLE"),  # blocked for an hour: the day is BLOCKED
        (5, 12, "LIMITED"),
        (3, 1, "AVAILABLE"),  # the day starts LIMITED: LIMITED
    ]
    async with running_app(split_settings(tmp_path, demo=PUBLIC)) as running:
        for days_ago, hour, status in history:
            at = midnight - timedelta(days=days_ago) + timedelta(hours=hour)
            await _record(running, AVAILABLE_PHONE, "PHONE_NUMBER", at, status)
        # A template whose first report is older than the window: known on every day.
        old = midnight - timedelta(days=200)
        await _record(running, BLOCKED_TEMPLATE, "MESSAGE_TEMPLATE", old, "LIMITED")
        view = await _json(running)
        html, parsed = await _html(running)

    assert view["to"] in {day.isoformat(), (day + timedelta(days=1)).isoformat()}
    nodes = {node["id"]: node for node in view["nodes"]}
    assert list(nodes) == [AVAILABLE_PHONE, LIMITED_PHONE, BLOCKED_TEMPLATE]
    phone = nodes[AVAILABLE_PHONE]
    assert phone["status"] == "AVAILABLE"
    assert len(phone["bars"]) == 90
    expected: dict[date, str | None] = {}
    status: str | None = None
    for when in _by_date(view, phone["bars"]):
        starts = status
        changes = [s for d, h, s in history if (day - timedelta(days=d)) == when]
        for change in changes:
            status = change
        ranked = [s for s in (starts, *changes) if s is not None]
        order = ["AVAILABLE", "LIMITED", "BLOCKED"]
        expected[when] = max(ranked, key=order.index) if ranked else None
    assert _by_date(view, phone["bars"]) == expected
    assert expected[day - timedelta(days=31)] is None
    assert expected[day - timedelta(days=10)] == "BLOCKED"
    assert expected[day - timedelta(days=3)] == "LIMITED"
    assert set(nodes[BLOCKED_TEMPLATE]["bars"]) == {"LIMITED"}
    assert set(nodes[LIMITED_PHONE]["bars"]) == {None}  # never reported
    assert nodes[LIMITED_PHONE]["status"] == "unknown"

    # The page draws the same bars: one rect per day, classed by its status.
    assert parsed.bars[AVAILABLE_PHONE] == [s or "none" for s in phone["bars"]]
    titles = parsed.titles[AVAILABLE_PHONE]
    ten_days_ago = (day - timedelta(days=10)).isoformat()
    if view["to"] == day.isoformat():
        assert f"{ten_days_ago}: BLOCKED" in titles
    assert titles[0] == f"{view['from']}: no data"
    assert parsed.bars[LIMITED_PHONE] == ["none"] * 90
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


async def test_current_status_and_only_the_public_text(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo=PUBLIC)) as running:
        await set_health(running, AVAILABLE_PHONE, BLOCKED)
        await refresh(running, *DEMO_NODES)
        view = await _json(running)
        indonesian = await _json(running, lang="id")
        html, parsed = await _html(running)

    nodes = {node["id"]: node for node in view["nodes"]}
    assert {k: n["status"] for k, n in nodes.items()} == {
        AVAILABLE_PHONE: "BLOCKED",
        LIMITED_PHONE: "LIMITED",
        BLOCKED_TEMPLATE: "BLOCKED",
    }
    assert view["status"] == "BLOCKED"
    assert view["counts"] == {"AVAILABLE": 0, "LIMITED": 1, "BLOCKED": 2, "unknown": 0}
    assert nodes[AVAILABLE_PHONE]["name"] == "+86 138 0000 0001 (wahealth Demo)"
    assert nodes[BLOCKED_TEMPLATE]["name"] == "order_update (en)"
    # The catalog's description, not Meta's words, codes or solutions.
    assert nodes[AVAILABLE_PHONE]["description"] == [describe(141006)[0]]  # type: ignore[index]
    assert nodes[BLOCKED_TEMPLATE]["description"] == [describe(141002)[0]]  # type: ignore[index]
    assert {n["id"]: n["description"] for n in indonesian["nodes"]}[AVAILABLE_PHONE] == [
        describe(141006, "id")[0]  # type: ignore[index]
    ]
    for shown in (str(view), html):
        assert "internal ref 7731" not in shown
        assert "internal runbook" not in shown
        assert "141006" not in shown
        assert "141002" not in shown
    text = " ".join(parsed.text)
    assert "Some numbers or templates cannot send messages" in text
    assert describe(141006)[0] in text  # type: ignore[index]
    assert nodes[AVAILABLE_PHONE]["bars"][-1] == "BLOCKED"  # today


async def test_another_spaces_nodes_are_never_on_a_page(tmp_path: Path) -> None:
    settings = split_settings(tmp_path, demo=PUBLIC, other=PUBLIC)
    async with running_app(settings) as running:
        await refresh(running, *DEMO_NODES, OTHER_PHONE, OTHER_WABA)
        demo = await _json(running)
        demo_html, _ = await _html(running)
        other = await _json(running, DEMO.other_space)
        other_html, _ = await _html(running, DEMO.other_space)

    assert [n["id"] for n in demo["nodes"]] == [AVAILABLE_PHONE, LIMITED_PHONE, BLOCKED_TEMPLATE]
    assert [n["id"] for n in other["nodes"]] == [OTHER_PHONE]
    assert other["nodes"][0]["status"] == "BLOCKED"
    assert demo["total"] == 3
    assert other["total"] == 1
    for shown in (str(demo), demo_html):
        for foreign in (OTHER_PHONE, OTHER_WABA, DEMO.other_space, "0000 0009"):
            assert foreign not in shown
    for shown in (str(other), other_html):
        for foreign in (*DEMO_NODES, "102290129340398", DEMO.space + '"', "order_update"):
            assert foreign not in shown
    # The WABAs themselves are not listed, only numbers and templates.
    assert OTHER_WABA not in str(other)


async def test_no_page_without_the_opt_in(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, other=PUBLIC)) as running:
        client = running.client
        answers = {
            "not opted in": await client.get(f"/status/{DEMO.space}"),
            "not opted in, json": await client.get(f"/status/{DEMO.space}.json"),
            "no such space": await client.get("/status/nowhere"),
            "no such space, json": await client.get("/status/nowhere.json"),
        }
        assert (await client.get(f"/status/{DEMO.other_space}")).status_code == 200
        await running.components.tenancy.set_space_options(DEMO.other_space, public_status=False)
        answers["opted out"] = await client.get(f"/status/{DEMO.other_space}.json")
        await running.components.tenancy.set_space_options(DEMO.other_space, public_status=True)
        await running.components.tenancy.disable_account(DEMO.other_account)
        answers["account disabled"] = await client.get(f"/status/{DEMO.other_space}")

    for why, answer in answers.items():
        assert answer.status_code == 404, why
        if answer.headers["content-type"].startswith("application/json"):
            assert answer.json() == {"error": "no status page here"}, why
        else:
            assert "No status page here." in answer.text, why
        assert AVAILABLE_PHONE not in answer.text
        assert OTHER_PHONE not in answer.text


async def test_pages_and_bad_page_numbers(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo=PUBLIC)) as running:
        client = running.client
        first = await _json(running)
        beyond = await _json(running, page="2")
        bad = [await client.get(f"/status/{DEMO.space}.json", params={"page": p})
               for p in ("0", "-1", "x", "1e3", "9" * 40)]  # fmt: skip
        bad_html = await client.get(f"/status/{DEMO.space}", params={"page": "0"})

    assert (first["page"], first["pages"], first["total"]) == (1, 1, 3)
    assert (beyond["page"], beyond["nodes"], beyond["total"]) == (2, [], 3)
    for answer in bad:
        assert answer.status_code == 400
        assert answer.json() == {"error": "page must be a whole number from 1 to 100000"}
    assert bad_html.status_code == 400
    assert "page must be a whole number" in bad_html.text


async def test_changes_of_other_fields_are_not_status_changes(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo=PUBLIC)) as running:
        await refresh(running, AVAILABLE_PHONE)
        # Quality and limit changes are stored as transitions of their own field.
        patched = await running.client.patch(
            f"/_emulator/nodes/{AVAILABLE_PHONE}",
            json={"quality_rating": "RED", "messaging_limit_tier": "TIER_250"},
        )
        assert patched.status_code == 200
        assert running.components.emulator is not None
        await emulator_state(running.components.emulator).webhooks.drain()
        await running.components.monitor.webhooks.drain()
        fields = [
            t.field
            for t in await running.components.history.history(AVAILABLE_PHONE)
            if t.field is not None
        ]
        view = await _json(running)

    assert sorted(fields) == ["messaging_limit_tier", "quality_rating"]
    [phone] = [n for n in view["nodes"] if n["id"] == AVAILABLE_PHONE]
    assert phone["status"] == "AVAILABLE"
    assert set(phone["bars"][:-1]) == {None}
    assert phone["bars"][-1] == "AVAILABLE"
