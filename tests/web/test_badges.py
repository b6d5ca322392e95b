"""GET /badge/{node_id}.svg: shields-style SVG for nodes of spaces that opt in, 404 otherwise."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import httpx
from tests.web._public import (
    AVAILABLE_PHONE,
    BLOCKED,
    BLOCKED_TEMPLATE,
    DEMO_WABA,
    LIMITED_PHONE,
    OTHER_PHONE,
    OTHER_WABA,
    refresh,
    set_health,
    split_settings,
)

from wahealth.testing import DEMO, running_app

SVG = "{http://www.w3.org/2000/svg}"


def _badge(response: httpx.Response) -> tuple[list[str], list[str]]:
    """The badge's texts (label and message, each drawn twice: shadow and text) and fills."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "max-age=60, public"
    root = ElementTree.fromstring(response.content)  # noqa: S314 — our own answer
    texts = [element.text or "" for element in root.iter(f"{SVG}text")]
    fills = [element.get("fill", "") for element in root.iter(f"{SVG}path")]
    return texts, fills


async def test_each_status_has_its_message_and_colour(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo={"badges": True})) as running:
        client = running.client
        before = await client.get(f"/badge/{AVAILABLE_PHONE}.svg")
        await refresh(running, AVAILABLE_PHONE, LIMITED_PHONE, BLOCKED_TEMPLATE)
        badges = {
            node: _badge(await client.get(f"/badge/{node}.svg"))
            for node in (AVAILABLE_PHONE, LIMITED_PHONE, BLOCKED_TEMPLATE, DEMO_WABA)
        }

    # Not fetched yet: unknown, grey.
    assert _badge(before) == (["whatsapp"] * 2 + ["unknown"] * 2, ["#555", "#9f9f9f", "url(#b)"])
    assert badges[AVAILABLE_PHONE] == (
        ["whatsapp"] * 2 + ["AVAILABLE"] * 2,
        ["#555", "#4c1", "url(#b)"],
    )
    assert badges[LIMITED_PHONE] == (
        ["whatsapp"] * 2 + ["LIMITED"] * 2,
        ["#555", "#dfb317", "url(#b)"],
    )
    assert badges[BLOCKED_TEMPLATE] == (
        ["whatsapp"] * 2 + ["BLOCKED"] * 2,
        ["#555", "#e05d44", "url(#b)"],
    )
    assert badges[DEMO_WABA][0][2:] == ["unknown"] * 2


async def test_the_label_can_be_the_nodes_name(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo={"badges": True})) as running:
        await refresh(running, AVAILABLE_PHONE, BLOCKED_TEMPLATE)
        phone = _badge(await running.client.get(f"/badge/{AVAILABLE_PHONE}.svg?label=name"))
        template = _badge(await running.client.get(f"/badge/{BLOCKED_TEMPLATE}.svg?label=name"))
        other = _badge(await running.client.get(f"/badge/{AVAILABLE_PHONE}.svg?label=<b>"))

    assert phone[0] == ["+86 138 0000 0001 (wahealth Demo)"] * 2 + ["AVAILABLE"] * 2
    assert template[0] == ["order_update (en)"] * 2 + ["BLOCKED"] * 2
    assert other[0][:2] == ["whatsapp"] * 2  # only "name" names; nothing else is echoed


async def test_a_status_change_shows_on_the_badge(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo={"badges": True})) as running:
        await refresh(running, AVAILABLE_PHONE)
        available = _badge(await running.client.get(f"/badge/{AVAILABLE_PHONE}.svg"))
        await set_health(running, AVAILABLE_PHONE, BLOCKED)
        await refresh(running, AVAILABLE_PHONE)
        blocked = _badge(await running.client.get(f"/badge/{AVAILABLE_PHONE}.svg"))

    assert available[0][2] == "AVAILABLE"
    assert blocked[0][2] == "BLOCKED"
    assert blocked[1][1] == "#e05d44"


async def test_no_badge_without_the_opt_in_and_nothing_told(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo={"badges": True})) as running:
        client = running.client
        await refresh(running, OTHER_PHONE, AVAILABLE_PHONE)
        answers = {
            "other space's number": await client.get(f"/badge/{OTHER_PHONE}.svg"),
            "other space's WABA": await client.get(f"/badge/{OTHER_WABA}.svg"),
            "no such node": await client.get("/badge/999999999999999.svg"),
            "not an id": await client.get(f"/badge/{'9' * 5000}.svg"),
            "no suffix": await client.get(f"/badge/{AVAILABLE_PHONE}"),
        }
        await running.components.tenancy.set_space_options(DEMO.space, badges=False)
        answers["opted out"] = await client.get(f"/badge/{AVAILABLE_PHONE}.svg")
        await running.components.tenancy.set_space_options(DEMO.space, badges=True)
        await running.components.tenancy.disable_account(DEMO.account)
        answers["account disabled"] = await client.get(f"/badge/{AVAILABLE_PHONE}.svg")

    for why, answer in answers.items():
        assert answer.status_code == 404, why
        assert "BLOCKED" not in answer.text, why
        assert "AVAILABLE" not in answer.text, why
    refusals = {why: a.text for why, a in answers.items() if why != "no suffix"}
    assert set(refusals.values()) == {"no badge here\n"}


async def test_badges_need_no_credentials_and_answer_head(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path, demo={"badges": True})) as running:
        head = await running.client.head(f"/badge/{AVAILABLE_PHONE}.svg")
        wrong = await running.client.post(f"/badge/{AVAILABLE_PHONE}.svg")
    assert head.status_code == 200
    assert head.headers["content-type"] == "image/svg+xml"
    assert wrong.status_code == 405
