"""The dashboard: sign-in, the account's spaces only, statuses and transitions as a person sees them."""

from __future__ import annotations

from pathlib import Path

from wahealth.testing import DEMO, demo_settings, running_app


async def test_dashboard_shows_only_the_accounts_nodes_and_their_status(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        # Populate node health through ordinary queries.
        auth = {"Authorization": f"Bearer {DEMO.graph_token}"}
        for node in ("106540352242922", "105154286024403", "2632273056924580"):
            answer = await client.get(
                f"/v21.0/{node}", params={"fields": "health_status"}, headers=auth
            )
            assert answer.status_code == 200
        await running.components.health.drain()  # each query's report is recorded after it

        page = await client.get("/dashboard", headers=auth)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "Space <code>demo-space</code>" in html
        assert "other-space" not in html
        for node in ("106540352242922", "105154286024403", "2632273056924580", "299399000000001"):
            assert f"<code>{node}</code>" in html
        assert '<span class="s BLOCKED">BLOCKED</span>' in html
        assert "141002" in html

        other = await client.get("/dashboard", params={"access_token": DEMO.other_graph_token})
        assert "Space <code>other-space</code>" in other.text
        assert "demo-space" not in other.text


async def test_dashboard_sign_in_sets_a_cookie_and_refuses_bad_tokens(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        form = await client.get("/dashboard")
        assert form.status_code == 200
        assert "<form" in form.text

        refused = await client.post("/dashboard/login", data={"token": "nope"})
        assert refused.status_code == 401
        assert "not valid" in refused.text
        assert "wahealth_token" not in refused.headers.get("set-cookie", "")

        signed_in = await client.post("/dashboard/login", data={"token": DEMO.graph_token})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        page = await client.get("/dashboard")
        assert "Space <code>demo-space</code>" in page.text

        rejected = await client.get("/dashboard", params={"access_token": "forged"})
        assert rejected.status_code == 401
