"""The dashboard's controls over HTTP: acknowledge a node, silence it (or its WABA or
space) and end the silence, each with the session's form token and within the account;
and a session signed out stays signed out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.web._console import (
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_BLOCKED,
    WABA_BLOCKED,
    Page,
    query_demo_nodes,
    sign_in,
)

from wahealth.auth.tokens import hash_token, new_graph_token
from wahealth.domain.records import SilenceScope
from wahealth.storage._session import reading
from wahealth.storage.fleet_view import FleetView
from wahealth.storage.models import SignOutRow
from wahealth.storage.silences import SilenceRepository
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.web.dashboard.session import SESSION_COOKIE

LABEL = "ops-alice"


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo app with three nodes fetched, signed in with a token labelled `LABEL`."""
    async with running_app(demo_settings(tmp_path)) as running:
        await query_demo_nodes(running.client, running.components)
        token = new_graph_token()
        await running.components.credentials.add_graph_token(DEMO.account, hash_token(token), LABEL)
        await sign_in(running.client, token)
        yield running


async def _page(running: RunningApp, path: str) -> Page:
    answer = await running.client.get(path)
    assert answer.status_code == 200, answer.text
    return Page(answer.text)


async def _csrf(running: RunningApp, node_id: str) -> str:
    return (await _page(running, f"/dashboard/nodes/{node_id}")).field("csrf")


async def test_acknowledging_a_node_shows_on_its_page_and_in_the_fleet(
    console: RunningApp,
) -> None:
    client, repo = console.client, SilenceRepository(console.components.sessions)
    node = await _page(console, f"/dashboard/nodes/{TEMPLATE_BLOCKED}")
    assert "acknowledgement" not in node.rows["testid"]
    assert "acknowledged" not in (await _page(console, "/dashboard")).rows["node"][TEMPLATE_BLOCKED]

    before = datetime.now(UTC)
    answer = await client.post(
        f"/dashboard/nodes/{TEMPLATE_BLOCKED}/ack",
        data={"csrf": node.field("csrf"), "note": "template resubmitted <b>today</b>"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/nodes/{TEMPLATE_BLOCKED}?notice=acknowledged"

    stored = await repo.acknowledgement_of(TEMPLATE_BLOCKED)
    assert stored is not None
    assert (stored.acknowledged_by, stored.note, stored.status) == (
        LABEL,
        "template resubmitted <b>today</b>",
        "BLOCKED",
    )
    assert stored.acknowledged_at >= before

    shown = await client.get(answer.headers["location"])
    page = Page(shown.text)
    assert "Acknowledged: no repeat alert" in page.rows["testid"]["notice"]
    ack = page.rows["testid"]["acknowledgement"]
    assert f"Acknowledged by {LABEL} at " in ack
    assert "while BLOCKED: template resubmitted <b>today</b>" in ack  # as text, escaped
    assert "<b>today</b>" not in shown.text
    assert page.rows["mark"]["acknowledged"] == "acknowledged"

    fleet = await _page(console, "/dashboard")
    assert "acknowledged" in fleet.rows["node"][TEMPLATE_BLOCKED]
    assert "acknowledged" not in fleet.rows["node"][PHONE_LIMITED]


async def test_an_available_node_has_nothing_to_acknowledge(console: RunningApp) -> None:
    page = await _page(console, f"/dashboard/nodes/{PHONE_OK}")
    assert "Nothing to acknowledge: the node is AVAILABLE." in page.text
    answer = await console.client.post(
        f"/dashboard/nodes/{PHONE_OK}/ack", data={"csrf": page.field("csrf"), "note": "hm"}
    )
    assert answer.status_code == 400
    shown = Page(answer.text)
    assert shown.rows["testid"]["control-error"] == (
        f"Node {PHONE_OK} is AVAILABLE or not checked yet."
    )
    repo = SilenceRepository(console.components.sessions)
    assert await repo.acknowledgements([PHONE_OK]) == {}


async def test_silence_a_waba_from_a_node_page_then_end_it(console: RunningApp) -> None:
    client, components = console.client, console.components
    repo = SilenceRepository(components.sessions)
    view = FleetView(components.sessions)
    node, template = (
        await view.node(DEMO.account, PHONE_LIMITED),
        await view.node(DEMO.account, TEMPLATE_BLOCKED),
    )
    assert node is not None
    assert template is not None
    assert template.waba_id == node.waba_id
    csrf = await _csrf(console, PHONE_LIMITED)

    before = datetime.now(UTC)
    answer = await client.post(
        f"/dashboard/nodes/{PHONE_LIMITED}/silence",
        data={"csrf": csrf, "scope": "waba", "for": "2h", "reason": "Meta review"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/nodes/{PHONE_LIMITED}?notice=silenced"
    [stored] = await repo.current(datetime.now(UTC))
    assert (stored.space_id, stored.scope, stored.scope_id) == (
        DEMO.space,
        SilenceScope.WABA,
        node.waba_id,
    )
    assert (stored.reason, stored.created_by) == ("Meta review", LABEL)
    assert before + timedelta(hours=2) <= stored.ends_at <= datetime.now(UTC) + timedelta(hours=2)

    page = await _page(console, answer.headers["location"])
    row = page.rows["silence"][str(stored.id)]
    assert f"WABA {node.waba_id}" in row
    assert "Meta review" in row
    assert LABEL in row
    assert page.rows["mark"]["silenced"] == "silenced"

    # The fleet marks every node of the WABA, and only them.
    fleet = await _page(console, "/dashboard")
    assert "silenced" in fleet.rows["node"][PHONE_LIMITED]
    assert "silenced" in fleet.rows["node"][node.waba_id]
    assert "silenced" in fleet.rows["node"][TEMPLATE_BLOCKED]
    assert "silenced" not in fleet.rows["node"][WABA_BLOCKED]
    assert "silenced" not in fleet.rows["node"][PHONE_ON_BLOCKED_WABA]

    alerts = await _page(console, "/dashboard/alerts")
    listed = alerts.rows["silence"][str(stored.id)]
    assert "Meta review" in listed
    assert LABEL in listed

    ended = await client.post(
        f"/dashboard/silences/{stored.id}/end",
        data={"csrf": alerts.field("csrf"), "next": "/dashboard/alerts"},
    )
    assert ended.status_code == 303
    assert ended.headers["location"] == "/dashboard/alerts?notice=unsilenced"
    lifted = await repo.get(stored.id)
    assert lifted is not None
    assert lifted.ended_at is not None
    assert await repo.current(datetime.now(UTC)) == []
    after = await _page(console, ended.headers["location"])
    assert after.rows["silence"] == {}
    assert "The silence has ended" in after.rows["testid"]["notice"]
    assert "silenced" not in (await _page(console, "/dashboard")).rows["node"][PHONE_LIMITED]


async def test_silence_a_node_until_a_time_and_end_it_from_its_page(console: RunningApp) -> None:
    client, repo = console.client, SilenceRepository(console.components.sessions)
    csrf = await _csrf(console, TEMPLATE_BLOCKED)
    end = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    answer = await client.post(
        f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence",
        data={"csrf": csrf, "scope": "node", "for": "", "until": end.strftime("%Y-%m-%dT%H:%M")},
    )
    assert answer.status_code == 303
    [stored] = await repo.current(datetime.now(UTC))
    assert (stored.scope, stored.scope_id, stored.ends_at) == (
        SilenceScope.NODE,
        TEMPLATE_BLOCKED,
        end,
    )
    assert stored.reason is None
    page = await _page(console, f"/dashboard/nodes/{TEMPLATE_BLOCKED}")
    assert end.strftime("%Y-%m-%d %H:%M:00 UTC") in page.rows["silence"][str(stored.id)]
    # A space silence covers it too; the node's page lists both.
    space = await client.post(
        f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence",
        data={"csrf": csrf, "scope": "space", "for": "1d", "reason": "holiday"},
    )
    assert space.status_code == 303
    page = await _page(console, f"/dashboard/nodes/{TEMPLATE_BLOCKED}")
    assert len(page.rows["silence"]) == 2
    ended = await client.post(
        f"/dashboard/silences/{stored.id}/end",
        data={"csrf": csrf, "next": f"/dashboard/nodes/{TEMPLATE_BLOCKED}?notice=silenced"},
    )
    assert ended.headers["location"] == f"/dashboard/nodes/{TEMPLATE_BLOCKED}?notice=unsilenced"
    page = await _page(console, ended.headers["location"])
    assert list(page.rows["silence"]) != [str(stored.id)]
    assert len(page.rows["silence"]) == 1
    # Elsewhere than the dashboard, a next path is not followed.
    [left] = await repo.current(datetime.now(UTC))
    away = await client.post(
        f"/dashboard/silences/{left.id}/end", data={"csrf": csrf, "next": "https://evil.example/"}
    )
    assert away.headers["location"] == "/dashboard?notice=unsilenced"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"for": "2x"}, "'2x' is not a duration like 2h or 30m."),
        ({"for": ""}, "Give a duration (like 2h or 1d) or an end time."),
        ({"for": "2h", "until": "2030-01-01T10:00"}, "Give a duration or an end time, not both."),
        ({"until": "2020-01-01T10:00"}, "The end of a silence must be in the future."),
        ({"until": "tomorrow"}, "'tomorrow' is not an ISO 8601 time."),
        ({"for": "400d"}, "A silence lasts at most 366 days."),
        ({"for": "1h", "reason": "x" * 1001}, "Reason is longer than 1000 characters."),
    ],
)
async def test_a_bad_silence_is_explained_on_the_node_page(
    console: RunningApp, data: dict[str, str], message: str
) -> None:
    csrf = await _csrf(console, PHONE_LIMITED)
    answer = await console.client.post(
        f"/dashboard/nodes/{PHONE_LIMITED}/silence",
        data={"csrf": csrf, "scope": "space", "reason": "kept", **data},
    )
    assert answer.status_code == 400
    page = Page(answer.text)
    assert page.rows["testid"]["control-error"] == message
    # The node's page again, with what was typed.
    assert "Uptime" in page.text
    assert page.field("for") == data.get("for", "")
    assert page.field("reason") == data.get("reason", "kept")
    checked = [i for i in page.inputs if i.get("name") == "scope" and "checked" in i]
    assert [i["value"] for i in checked] == ["space"]
    assert await SilenceRepository(console.components.sessions).current(datetime.now(UTC)) == []


async def test_a_scope_the_form_does_not_offer_is_refused(console: RunningApp) -> None:
    csrf = await _csrf(console, PHONE_LIMITED)
    for scope in ("", "account", "node "):
        answer = await console.client.post(
            f"/dashboard/nodes/{PHONE_LIMITED}/silence",
            data={"csrf": csrf, "scope": scope, "for": "1h"},
        )
        assert answer.status_code == 400
        assert "Choose what to silence" in Page(answer.text).text
    assert await SilenceRepository(console.components.sessions).current(datetime.now(UTC)) == []


async def test_controls_need_the_form_token(console: RunningApp) -> None:
    client, repo = console.client, SilenceRepository(console.components.sessions)
    csrf = await _csrf(console, TEMPLATE_BLOCKED)
    silenced = await client.post(
        f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence",
        data={"csrf": csrf, "scope": "node", "for": "1h"},
    )
    assert silenced.status_code == 303
    [silence] = await repo.current(datetime.now(UTC))
    for path, data in (
        (f"/dashboard/nodes/{TEMPLATE_BLOCKED}/ack", {"note": "x"}),
        (f"/dashboard/nodes/{TEMPLATE_BLOCKED}/ack", {"note": "x", "csrf": csrf[:-1]}),
        (f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence", {"scope": "node", "for": "1h"}),
        (f"/dashboard/silences/{silence.id}/end", {"csrf": ""}),
    ):
        answer = await client.post(path, data=data)
        assert answer.status_code == 403, path
        assert "This form has expired." in Page(answer.text).text
    assert await repo.acknowledgements([TEMPLATE_BLOCKED]) == {}
    assert [s.id for s in await repo.current(datetime.now(UTC))] == [silence.id]


async def test_another_accounts_nodes_and_silences_are_not_found(console: RunningApp) -> None:
    client, repo = console.client, SilenceRepository(console.components.sessions)
    csrf = await _csrf(console, TEMPLATE_BLOCKED)
    mine = await client.post(
        f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence",
        data={"csrf": csrf, "scope": "space", "for": "1h"},
    )
    assert mine.status_code == 303
    [silence] = await repo.current(datetime.now(UTC))

    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        other_csrf = await sign_in(other, DEMO.other_graph_token)
        assert Page((await other.get("/dashboard/alerts")).text).rows["silence"] == {}
        for path, data in (
            (f"/dashboard/nodes/{TEMPLATE_BLOCKED}/ack", {"note": "mine now"}),
            (f"/dashboard/nodes/{TEMPLATE_BLOCKED}/silence", {"scope": "node", "for": "1h"}),
            (f"/dashboard/nodes/{PHONE_LIMITED}/silence", {"scope": "space", "for": "1h"}),
            (f"/dashboard/silences/{silence.id}/end", {}),
            ("/dashboard/silences/999999/end", {}),
            ("/dashboard/silences/not-an-id/end", {}),
        ):
            answer = await other.post(path, data={"csrf": other_csrf, **data})
            assert answer.status_code == 404, path
            assert "is not known to this account" in Page(answer.text).text
    assert await repo.acknowledgements([TEMPLATE_BLOCKED]) == {}
    assert [s.id for s in await repo.current(datetime.now(UTC))] == [silence.id]
    assert (await repo.get(silence.id)).ended_at is None  # type: ignore[union-attr]


async def test_a_signed_out_cookie_opens_nothing_afterwards(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        csrf = await sign_in(client)
        kept = client.cookies[SESSION_COOKIE]
        # A second session of the same token, signed in elsewhere.
        other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
        async with other:
            await sign_in(other)
            out = await client.post("/dashboard/logout", data={"csrf": csrf})
            assert out.status_code == 303
            assert (await other.get("/dashboard")).status_code == 200  # not that one
        async with reading(running.components.sessions) as session:
            assert len((await session.scalars(select(SignOutRow))).all()) == 1
        client.cookies.set(SESSION_COOKIE, kept, path="/dashboard")
        for path in ("/dashboard", "/dashboard/alerts"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/dashboard/login")
        client.cookies.set(SESSION_COOKIE, kept, path="/dashboard")
        replayed = await client.post("/dashboard/logout", data={"csrf": csrf})
        assert replayed.status_code == 303
        assert replayed.headers["location"] == "/dashboard/login"
        # Signing in again gives a new session that works.
        client.cookies.clear()
        await sign_in(client)
        assert (await client.get("/dashboard")).status_code == 200
