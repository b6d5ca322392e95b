"""The dashboard's pages over HTTP: the fleet (filters, search, sort, pages, counts), a node
(errors and fixes in the reader's language, uptime, timeline, deliveries) and the alerts
(by state, retrying a dead letter, subscriptions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.web._console import (
    HOOK,
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_BLOCKED,
    WABA_BLOCKED,
    WABA_OK,
    Page,
    dead_alert,
    query_demo_nodes,
    record_history,
    sign_in,
)

from wahealth.domain.catalog import describe, translate_info
from wahealth.domain.records import PhoneNumberRecord
from wahealth.storage.outbox import OutboxRepository
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

EXTRA_WABA = "777000000000001"
DISPLAY_NAME_PENDING = (  # seed 003's LIMITED reason
    "Your display name has not been approved yet. "
    "Your message limit will increase after the display name is approved."
)


async def _bigger_fleet(running: RunningApp) -> list[str]:
    """A third WABA with 30 numbers in the demo space (never fetched: UNKNOWN)."""
    components = running.components
    await components.tenancy.upsert_waba(EXTRA_WABA, DEMO.space, name="Extra Brand")
    numbers = [
        PhoneNumberRecord(f"5550000000{n:02d}", f"+62 811 0000 {n:02d}", f"Extra shop {n}")
        for n in range(30)
    ]
    await components.catalog.replace_phone_numbers(EXTRA_WABA, numbers)
    return [number.id for number in numbers]


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo app with three nodes fetched, signed in as the demo account."""
    async with running_app(demo_settings(tmp_path)) as running:
        await query_demo_nodes(running.client, running.components)
        await sign_in(running.client)
        yield running


async def _page(running: RunningApp, path: str, **params: str) -> Page:
    answer = await running.client.get(path, params=params or None)
    assert answer.status_code == 200, answer.text
    return Page(answer.text)


async def test_the_fleet_shows_names_statuses_and_counts(console: RunningApp) -> None:
    page = await _page(console, "/dashboard")
    rows = page.rows["node"]
    # Worst first: the BLOCKED template, the LIMITED number, the never-fetched, the rest.
    assert list(rows)[:2] == [TEMPLATE_BLOCKED, PHONE_LIMITED]
    assert list(rows)[-1] == PHONE_OK
    assert rows[TEMPLATE_BLOCKED].startswith("order_update en template BLOCKED")
    assert "PENDING" in rows[TEMPLATE_BLOCKED]  # the template's own status
    assert "141002" in rows[TEMPLATE_BLOCKED]
    assert rows[PHONE_LIMITED].startswith(
        "+86 138 0000 0002 wahealth Demo Support phone number LIMITED"
    )
    # Quality, messaging limit tier and Meta's status of the number, as the catalog keeps them.
    assert "LIMITED GREEN TIER_250 CONNECTED" in rows[PHONE_LIMITED]
    assert "UNKNOWN" in rows[PHONE_ON_BLOCKED_WABA]
    assert "never" in rows[PHONE_ON_BLOCKED_WABA]
    assert page.rows["status"] == {
        "BLOCKED": "BLOCKED 1",
        "LIMITED": "LIMITED 1",
        "UNKNOWN": "UNKNOWN 3",
        "AVAILABLE": "AVAILABLE 1",
    }
    assert "Nodes 1\N{EN DASH}6 of 6" in page.text


async def test_filters_search_and_sorts(console: RunningApp) -> None:
    blocked = await _page(console, "/dashboard", status="BLOCKED")
    assert list(blocked.rows["node"]) == [TEMPLATE_BLOCKED]
    assert "Nodes 1\N{EN DASH}1 of 1" in blocked.text
    # The counts stay those of the other filters, so the chips still say where to go.
    assert blocked.rows["status"]["LIMITED"] == "LIMITED 1"

    wabas = await _page(console, "/dashboard", kind="waba")
    assert set(wabas.rows["node"]) == {WABA_OK, WABA_BLOCKED}
    templates = await _page(console, "/dashboard", kind="template", status="AVAILABLE")
    assert templates.rows["node"] == {}
    assert "No node matches." in templates.text

    by_number = await _page(console, "/dashboard", q="+86 138-0000-0002")
    assert list(by_number.rows["node"]) == [PHONE_LIMITED]
    by_name = await _page(console, "/dashboard", q="demo billing")
    assert list(by_name.rows["node"]) == [PHONE_ON_BLOCKED_WABA]
    by_template = await _page(console, "/dashboard", q="ORDER_update")
    assert list(by_template.rows["node"]) == [TEMPLATE_BLOCKED]
    by_id = await _page(console, "/dashboard", q=WABA_BLOCKED)
    assert list(by_id.rows["node"]) == [WABA_BLOCKED]

    by_id_desc = await _page(console, "/dashboard", sort="id", dir="desc")
    ids = list(by_id_desc.rows["node"])
    assert ids == sorted(ids, reverse=True)
    by_name_asc = await _page(console, "/dashboard", sort="name")
    assert list(by_name_asc.rows["node"])[:3] == [PHONE_OK, PHONE_LIMITED, PHONE_ON_BLOCKED_WABA]
    by_age = await _page(console, "/dashboard", sort="age")
    never = [WABA_OK, WABA_BLOCKED, PHONE_ON_BLOCKED_WABA]
    assert list(by_age.rows["node"])[:3] == sorted(never)  # never fetched: oldest of all
    # The sort links keep the filters and flip the direction of the current sort.
    assert (
        "?status=BLOCKED&sort=name&dir=desc"
        in (await _page(console, "/dashboard", status="BLOCKED", sort="name")).links
    )


async def test_pages_of_a_bigger_fleet(console: RunningApp) -> None:
    extra = await _bigger_fleet(console)
    seen: list[str] = []
    for page_number in (1, 2):
        page = await _page(console, "/dashboard", sort="name", per="25", page=str(page_number))
        seen += list(page.rows["node"])
    assert len(seen) == len(set(seen)) == 6 + 1 + 30  # the demo's, the WABA and its numbers
    first = await _page(console, "/dashboard", sort="name", per="25")
    assert "Nodes 1\N{EN DASH}25 of 37" in first.text
    assert "Page 1 of 2" in first.text
    assert "?sort=name&per=25&page=2" in first.links
    second = await _page(console, "/dashboard", sort="name", per="25", page="2")
    assert "Nodes 26\N{EN DASH}37 of 37" in second.text
    assert set(extra) <= set(seen)
    beyond = await _page(console, "/dashboard", page="9")
    assert beyond.rows["node"] == {}


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"status": "BROKEN"}, 400, "status must be one of: BLOCKED, LIMITED, UNKNOWN, AVAILABLE."),
        ({"kind": "fax"}, 400, "kind must be one of: phone, template, waba."),
        ({"sort": "colour"}, 400, "sort must be one of: status, name, kind, age, id."),
        ({"dir": "up"}, 400, "dir must be one of: asc, desc."),
        ({"page": "0"}, 400, "page must be a whole number from 1 to 100000."),
        ({"page": "x"}, 400, "page must be a whole number from 1 to 100000."),
        ({"per": "7"}, 400, "per must be one of: 25, 50, 100, 200."),
        ({"q": "x" * 101}, 400, "Search for at most 100 characters."),
        ({"space": "other-space"}, 404, "Space other-space is not one of this account's spaces."),
    ],
)
async def test_bad_parameters_get_a_clear_answer(
    console: RunningApp, params: dict[str, str], status: int, message: str
) -> None:
    answer = await console.client.get("/dashboard", params=params)
    assert answer.status_code == status
    assert message in Page(answer.text).text


async def test_a_node_page_explains_in_the_chosen_language(console: RunningApp) -> None:
    client = console.client
    english = limited_fields = await _page(console, f"/dashboard/nodes/{PHONE_LIMITED}")
    assert DISPLAY_NAME_PENDING in english.text
    page = await _page(console, f"/dashboard/nodes/{TEMPLATE_BLOCKED}")
    assert "order_update en BLOCKED" in page.text
    errors = page.rows["code"]
    description, _ = describe("141002", "en") or ("", "")
    assert description in errors["141002"]
    assert "Meta status PENDING" in page.text

    # Accept-Language chooses, until the picker says otherwise.
    indonesian = Page(
        (
            await client.get(
                f"/dashboard/nodes/{TEMPLATE_BLOCKED}",
                headers={"Accept-Language": "id-ID,id;q=0.9"},
            )
        ).text
    )
    id_description, id_solution = describe("141002", "id") or ("", "")
    assert id_description in indonesian.rows["code"]["141002"]
    assert id_solution in indonesian.rows["code"]["141002"]
    assert id_description != description

    csrf = page.field("csrf")
    chosen = await client.post(
        "/dashboard/language",
        data={"csrf": csrf, "lang": "zh", "next": f"/dashboard/nodes/{TEMPLATE_BLOCKED}"},
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == f"/dashboard/nodes/{TEMPLATE_BLOCKED}"
    chinese = Page(
        (
            await client.get(
                f"/dashboard/nodes/{TEMPLATE_BLOCKED}", headers={"Accept-Language": "id"}
            )
        ).text
    )
    zh_description, _ = describe("141002", "zh") or ("", "")
    assert zh_description in chinese.rows["code"]["141002"]
    assert '<html lang="zh">' in chinese.html
    bad = await client.post("/dashboard/language", data={"csrf": csrf, "lang": "xx"})
    assert bad.status_code == 400

    assert "Messaging limit tier TIER_250" in limited_fields.text
    assert "Display name status" in limited_fields.text
    # The LIMITED reason Meta sent in English, in the chosen language.
    limited = await _page(console, f"/dashboard/nodes/{PHONE_LIMITED}")
    assert translate_info(DISPLAY_NAME_PENDING, "zh") in limited.text
    assert translate_info(DISPLAY_NAME_PENDING, "zh") != DISPLAY_NAME_PENDING


async def test_a_node_page_shows_uptime_timeline_and_deliveries(console: RunningApp) -> None:
    components = console.components
    hook = await OutboxRepository(components.sessions).add_subscription(DEMO.space, HOOK)
    # 20 days ago AVAILABLE, 48 h ago BLOCKED for 12 h, 36 h ago LIMITED for 24 h, then AVAILABLE.
    await record_history(
        components,
        PHONE_ON_BLOCKED_WABA,
        [
            (timedelta(days=20), "AVAILABLE"),
            (timedelta(hours=48), "BLOCKED"),
            (timedelta(hours=36), "LIMITED"),
            (timedelta(hours=12), "AVAILABLE"),
        ],
        alert_to=hook.id,
    )
    page = await _page(console, f"/dashboard/nodes/{PHONE_ON_BLOCKED_WABA}")
    uptime = page.rows["window"]
    # 24 h: 12 h LIMITED, 12 h AVAILABLE. 7 d: 12 h BLOCKED of 168 h, 132 h AVAILABLE.
    assert uptime["24 h"] == "24 h 100 % 50.00 % 100 %"
    assert uptime["7 d"] == f"7 d {100 * 156 / 168:.2f} % {100 * 132 / 168:.2f} % 100 %"
    # 30 d: known for the last 20 days only.
    assert uptime["30 d"].endswith(f"{100 * 20 / 30:.2f} %")
    timeline = list(page.rows["transition"].values())
    assert len(timeline) == 4
    assert timeline[0].endswith("LIMITED → AVAILABLE poll")
    assert timeline[-1].endswith("first seen → AVAILABLE poll")
    deliveries = page.rows["alert"]
    assert len(deliveries) == 4
    # Where alerts go is shown without the path's tail or the query (they may hold secrets).
    assert all("https://hooks.example/wahealth/…" in row for row in deliveries.values())
    assert "secret-path" not in page.html
    assert "token=abc" not in page.html

    missing = await console.client.get("/dashboard/nodes/123456")
    assert missing.status_code == 404
    junk = await console.client.get("/dashboard/nodes/not-a-node")
    assert junk.status_code == 404
    bad_cursor = await console.client.get(f"/dashboard/nodes/{PHONE_OK}", params={"before": "x"})
    assert bad_cursor.status_code == 400


async def test_the_alerts_page_retries_a_dead_letter(console: RunningApp) -> None:
    components = console.components
    alert_id = await dead_alert(components, PHONE_OK)
    page = await _page(console, "/dashboard/alerts", state="dead")
    assert page.rows["state"]["dead"] == "dead 1"
    assert alert_id in page.rows["alert"]
    assert "HTTP 410 from the receiver" in page.rows["alert"][alert_id]
    assert page.rows["subscription"]  # the subscription is listed
    retried = await console.client.post(
        f"/dashboard/alerts/{alert_id}/retry", data={"csrf": page.field("csrf")}
    )
    assert retried.status_code == 303
    after = await _page(console, retried.headers["location"])
    assert "The alert is queued again" in after.text
    assert after.rows["state"]["dead"] == "dead 0"
    assert after.rows["state"]["pending"] == "pending 1"
    stored = await OutboxRepository(components.sessions).get(alert_id)
    assert stored is not None
    assert (stored.state.value, stored.attempts) == ("pending", 0)
    again = await console.client.post(
        f"/dashboard/alerts/{alert_id}/retry", data={"csrf": page.field("csrf")}
    )
    assert again.headers["location"].endswith("notice=not-dead")
    bad = await console.client.get("/dashboard/alerts", params={"state": "lost"})
    assert bad.status_code == 400
