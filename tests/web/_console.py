"""Helpers for the dashboard's tests: read its pages, sign in, and give it a fleet to show."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx

from wahealth.components import Components
from wahealth.domain.records import PlannedAlert
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.testing import DEMO

PHONE_OK = "106540352242922"
PHONE_LIMITED = "105154286024403"
TEMPLATE_BLOCKED = "2632273056924580"
WABA_OK = "102290129340398"
WABA_BLOCKED = "299399000000001"
PHONE_ON_BLOCKED_WABA = "106540352242999"
HOOK = "https://hooks.example/wahealth/secret-path?token=abc"


class Page(HTMLParser):
    """A dashboard page as a reader sees it: its text, its rows by `data-*` key, its forms."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html
        self._text: list[str] = []
        self._open: list[tuple[str, str, str, list[str]]] = []  # (tag, attr, value, texts)
        self.rows: dict[str, dict[str, str]] = defaultdict(dict)
        self.inputs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "style", "title"):
            self._skip += 1
        if tag == "input":
            self.inputs.append(found)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        for name, value in attrs:
            if name.startswith("data-") and value is not None and tag not in ("input",):
                self._open.append((tag, name[5:], value, []))
                break
        else:
            self._open.append((tag, "", "", []))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        while self._open:
            opened, key, value, texts = self._open.pop()
            if key:
                self.rows[key][value] = " ".join(" ".join(texts).split())
            if self._open:
                self._open[-1][3].extend(texts)
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self._text.append(data)
        if self._open:
            self._open[-1][3].append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self._text).split())

    def field(self, name: str) -> str:
        """The value of the first input of that name."""
        for found in self.inputs:
            if found.get("name") == name:
                return str(found.get("value") or "")
        raise AssertionError(f"no input {name!r} on the page")


async def sign_in(client: httpx.AsyncClient, token: str = DEMO.graph_token) -> str:
    """Sign in through the form, as a browser does; the session's form token."""
    form = Page((await client.get("/dashboard/login")).text)
    answer = await client.post(
        "/dashboard/login",
        data={"token": token, "csrf": form.field("csrf"), "next": "/dashboard"},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"
    # Not the fleet page: its counts would be reused for a few seconds.
    alerts = await client.get("/dashboard/alerts")
    assert alerts.status_code == 200
    return Page(alerts.text).field("csrf")


async def query_demo_nodes(client: httpx.AsyncClient, components: Components) -> None:
    """Store a report for three demo nodes through ordinary Graph queries."""
    auth = {"Authorization": f"Bearer {DEMO.graph_token}"}
    for node in (PHONE_OK, PHONE_LIMITED, TEMPLATE_BLOCKED):
        answer = await client.get(
            f"/v21.0/{node}", params={"fields": "health_status"}, headers=auth
        )
        assert answer.status_code == 200
    await components.health.drain()  # each query's report is recorded after it


def _report(node_id: str, status: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "entity_type": "PHONE_NUMBER",
        "id": node_id,
        "can_send_message": status,
    }
    if status == "BLOCKED":
        entity["errors"] = [{"error_code": 141006}]
    return {"health_status": {"can_send_message": status, "entities": [entity]}, "id": node_id}


async def record_history(
    components: Components,
    node_id: str,
    changes: list[tuple[timedelta, str]],
    *,
    alert_to: int | None = None,
) -> list[int]:
    """Store reports of a node `ago` before now with these statuses (oldest first); an
    alert per transition to subscription `alert_to`. The transitions' ids."""
    health = HealthRepository(components.sessions)
    now = datetime.now(UTC)
    ids = []
    for ago, status in changes:
        alerts = [] if alert_to is None else [PlannedAlert(alert_to, status, {"node_id": node_id})]
        transition = await health.record(
            node_id,
            "PHONE_NUMBER",
            DEMO.space,
            status,
            _report(node_id, status),
            ["141006"] if status == "BLOCKED" else [],
            now - ago,
            "poll",
            alerts=alerts,
        )
        assert transition is not None
        ids.append(transition)
    return ids


async def dead_alert(components: Components, node_id: str, space: str = DEMO.space) -> str:
    """A dead alert for a transition of the node (a subscription of the space receives it)."""
    outbox = OutboxRepository(components.sessions)
    existing = [s for s in await outbox.list_subscriptions(space) if s.url == HOOK]
    hook = existing[0] if existing else await outbox.add_subscription(space, HOOK)
    [transition] = await record_history(
        components, node_id, [(timedelta(0), "BLOCKED")], alert_to=hook.id
    )
    [alert] = [a for a in await outbox.list_alerts() if a.transition_id == transition]
    await outbox.mark_dead(alert.id, "HTTP 410 from the receiver")
    return alert.id


def cookie_of(response: httpx.Response, name: str) -> str:
    """A Set-Cookie header of the response, by cookie name."""
    for header in response.headers.get_list("set-cookie"):
        if re.match(rf"{name}=", header):
            return header
    raise AssertionError(f"no {name} cookie set")
