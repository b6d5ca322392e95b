"""The dashboard over HTTP: signing in and out, the session cookie, CSRF, and the account's
own fleet only."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from tests.web._console import (
    PHONE_LIMITED,
    PHONE_OK,
    TEMPLATE_BLOCKED,
    Page,
    cookie_of,
    dead_alert,
    query_demo_nodes,
    sign_in,
)

from wahealth.auth.tokens import hash_token, new_graph_token
from wahealth.storage.credentials import CredentialKind
from wahealth.storage.outbox import OutboxRepository
from wahealth.testing import DEMO, demo_settings, running_app
from wahealth.web.dashboard.session import SESSION_COOKIE


async def test_pages_need_a_session_and_sign_in_takes_a_graph_token(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        for path in ("/dashboard", "/dashboard/alerts", f"/dashboard/nodes/{PHONE_OK}"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/dashboard/login")
        deep = await client.get(f"/dashboard/nodes/{PHONE_OK}")
        assert (
            deep.headers["location"] == f"/dashboard/login?next=%2Fdashboard%2Fnodes%2F{PHONE_OK}"
        )

        form = await client.get("/dashboard/login")
        assert form.status_code == 200
        assert form.headers["content-security-policy"].startswith("default-src 'none'")
        assert form.headers["x-frame-options"] == "DENY"
        page = Page(form.text)
        assert "Graph token" in page.text

        refused = await client.post(
            "/dashboard/login", data={"token": "nope", "csrf": page.field("csrf")}
        )
        assert refused.status_code == 401
        assert "That token is not valid (or was revoked)." in Page(refused.text).text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")

        # Without the form's token (a sign-in forged by another site): refused.
        forged = await client.post(
            "/dashboard/login", data={"token": DEMO.graph_token, "csrf": "made-up"}
        )
        assert forged.status_code == 403
        assert SESSION_COOKIE not in forged.headers.get("set-cookie", "")

        form = Page((await client.get("/dashboard/login")).text)
        signed_in = await client.post(
            "/dashboard/login",
            data={
                "token": DEMO.graph_token,
                "csrf": form.field("csrf"),
                "next": f"/dashboard/nodes/{PHONE_OK}",
            },
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == f"/dashboard/nodes/{PHONE_OK}"
        cookie = cookie_of(signed_in, SESSION_COOKIE)
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/dashboard" in cookie
        # The cookie holds neither the token nor its digest.
        assert DEMO.graph_token not in cookie
        assert hash_token(DEMO.graph_token) not in cookie
        assert (await client.get("/dashboard")).status_code == 200


async def test_sign_in_never_sends_you_to_another_site(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        for target in ("https://evil.example/", "//evil.example/dashboard", "/elsewhere"):
            form = Page((await client.get("/dashboard/login")).text)
            answer = await client.post(
                "/dashboard/login",
                data={"token": DEMO.graph_token, "csrf": form.field("csrf"), "next": target},
            )
            assert answer.headers["location"] == "/dashboard"
            client.cookies.clear()


async def test_sign_out_ends_the_session_and_needs_the_form_token(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        csrf = await sign_in(client)
        refused = await client.post("/dashboard/logout", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert (await client.get("/dashboard")).status_code == 200  # still signed in

        out = await client.post("/dashboard/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/dashboard/login"
        assert f'{SESSION_COOKIE}=""' in cookie_of(out, SESSION_COOKIE)
        assert (await client.get("/dashboard")).status_code == 303


async def test_an_altered_or_foreign_cookie_is_no_session(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client = running.client
        await sign_in(client)
        sealed = client.cookies[SESSION_COOKIE].strip('"')
        raw = bytearray(base64.urlsafe_b64decode(sealed))
        raw[-40] ^= 1  # one bit of the ciphertext
        foreign = Fernet(Fernet.generate_key()).encrypt(
            b'{"v":1,"a":"demo","d":"x","c":"y","l":null,"e":9999999999}'
        )
        for value in (
            base64.urlsafe_b64encode(bytes(raw)).decode(),
            foreign.decode(),
            "not-a-cookie",
            sealed[:-4],
        ):
            client.cookies.clear()
            client.cookies.set(SESSION_COOKIE, value, path="/dashboard")
            answer = await client.get("/dashboard")
            assert answer.status_code == 303, value
            assert answer.headers["location"] == "/dashboard/login"


async def test_a_revoked_token_ends_its_sessions(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client, components = running.client, running.components
        token = new_graph_token()
        await components.credentials.add_graph_token(DEMO.account, hash_token(token), "ops")
        await sign_in(client, token)
        [info] = [
            i
            for i in await components.credentials.list_credentials(DEMO.account)
            if i.kind == CredentialKind.GRAPH_TOKEN and i.label == "ops"
        ]
        await components.credentials.revoke_graph_token(int(info.id))
        components.directory.forget()  # as the lookup cache's second would, without waiting
        answer = await client.get("/dashboard")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/login"


async def test_each_account_sees_only_its_own_spaces_nodes_and_alerts(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client, components = running.client, running.components
        await query_demo_nodes(client, components)
        alert_id = await dead_alert(components, PHONE_OK)
        other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
        async with other:
            other_csrf = await sign_in(other, DEMO.other_graph_token)
            fleet = Page((await other.get("/dashboard")).text)
            assert fleet.rows["node"] == {}
            assert "No node matches." in fleet.text
            assert "demo-space" not in fleet.html
            for path in (f"/dashboard/nodes/{PHONE_OK}", f"/dashboard/nodes/{TEMPLATE_BLOCKED}"):
                missing = await other.get(path)
                assert missing.status_code == 404
                assert "is not known to this account" in Page(missing.text).text
            space = await other.get("/dashboard", params={"space": DEMO.space})
            assert space.status_code == 404
            alerts = Page((await other.get("/dashboard/alerts")).text)
            assert alerts.rows["alert"] == {}
            assert "hooks.example" not in alerts.html
            # Retrying another account's dead letter finds nothing, and changes nothing.
            retry = await other.post(
                f"/dashboard/alerts/{alert_id}/retry", data={"csrf": other_csrf}
            )
            assert retry.headers["location"] == "/dashboard/alerts?state=dead&notice=not-found"
            stored = await OutboxRepository(components.sessions).get(alert_id)
            assert stored is not None
            assert stored.state.value == "dead"

        await sign_in(client)
        mine = Page((await client.get("/dashboard")).text)
        assert set(mine.rows["node"]) >= {PHONE_OK, PHONE_LIMITED, TEMPLATE_BLOCKED}


async def test_every_form_needs_the_sessions_token(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        client, components = running.client, running.components
        alert_id = await dead_alert(components, PHONE_OK)
        csrf = await sign_in(client)
        for path, data in (
            (f"/dashboard/alerts/{alert_id}/retry", {}),
            (f"/dashboard/alerts/{alert_id}/retry", {"csrf": ""}),
            (f"/dashboard/alerts/{alert_id}/retry", {"csrf": csrf[:-1]}),
            ("/dashboard/language", {"lang": "id"}),
            ("/dashboard/logout", {"csrf": "x" * len(csrf)}),
        ):
            answer = await client.post(path, data=data)
            assert answer.status_code == 403, path
            assert "This form has expired." in Page(answer.text).text
        stored = await OutboxRepository(components.sessions).get(alert_id)
        assert stored is not None
        assert stored.state.value == "dead"
        # Another session's token is not this one's.
        other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
        async with other:
            other_csrf = await sign_in(other)
        assert other_csrf != csrf
        stolen = await client.post(f"/dashboard/alerts/{alert_id}/retry", data={"csrf": other_csrf})
        assert stolen.status_code == 403
        # A body that is not a small form is refused plainly, never a 500.
        huge = await client.post("/dashboard/logout", content=b"csrf=" + b"x" * 20_000)
        assert huge.status_code == 400
        assert "The form is too large." in Page(huge.text).text
