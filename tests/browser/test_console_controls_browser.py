"""An operator acts on a problem in a real browser: acknowledge a BLOCKED template, silence
its WABA (a bad duration first), end the silence from the alerts page, and sign out; the
cookie of the signed-out session opens nothing afterwards."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect
from tests.browser.conftest import on_server
from tests.gateway._served import ServedGateway
from tests.web._console import PHONE_LIMITED, TEMPLATE_BLOCKED

from wahealth.auth.tokens import hash_token, new_graph_token
from wahealth.testing import DEMO
from wahealth.web.dashboard.session import SESSION_COOKIE

LABEL = "ops-alice"


async def _labelled_token(served: ServedGateway) -> str:
    token = new_graph_token()
    credentials = served.components.credentials
    await on_server(served, credentials.add_graph_token(DEMO.account, hash_token(token), LABEL))
    return token


async def test_acknowledge_silence_unsilence_and_sign_out(
    page: Page, served: ServedGateway, seeded: dict[str, str], artifacts: Path
) -> None:
    base = served.base_url
    await page.goto(f"{base}/dashboard")
    await page.get_by_label("Graph token").fill(await _labelled_token(served))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/dashboard")

    # Filter to the BLOCKED templates and open the one there is.
    await page.get_by_label("Status").select_option("BLOCKED")
    await page.get_by_label("Kind").select_option("template")
    await page.get_by_role("button", name="Apply", exact=True).last.click()
    rows = page.locator("table.fleet tbody tr")
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("link").first.click()
    await expect(page).to_have_url(f"{base}/dashboard/nodes/{TEMPLATE_BLOCKED}")

    # Acknowledge it, with a note.
    controls = page.get_by_test_id("controls")
    await controls.get_by_label("Note").fill("Resubmitted with a new header, waiting for review")
    await controls.get_by_role("button", name="Acknowledge").click()
    await expect(page).to_have_url(f"{base}/dashboard/nodes/{TEMPLATE_BLOCKED}?notice=acknowledged")
    ack = page.get_by_test_id("acknowledgement")
    await expect(ack).to_contain_text(f"Acknowledged by {LABEL} at ")
    await expect(ack).to_contain_text(
        "while BLOCKED: Resubmitted with a new header, waiting for review"
    )
    await expect(page.locator("h1 [data-mark=acknowledged]")).to_be_visible()

    # A duration that is not one: the page says why and keeps what was typed.
    await controls.get_by_role("radio", name=re.compile("its WABA")).check()
    await controls.get_by_label("For (like 2h, 1d or 1h30m)").fill("2x")
    await controls.get_by_label("Reason").fill("Meta review of the WABA")
    await controls.get_by_role("button", name="Silence", exact=True).click()
    await expect(page.get_by_test_id("control-error")).to_have_text(
        "'2x' is not a duration like 2h or 30m."
    )
    await expect(controls.get_by_label("Reason")).to_have_value("Meta review of the WABA")
    await expect(controls.get_by_role("radio", name=re.compile("its WABA"))).to_be_checked()

    # Silence the WABA for two hours.
    await controls.get_by_label("For (like 2h, 1d or 1h30m)").fill("2h")
    await controls.get_by_role("button", name="Silence", exact=True).click()
    await expect(page).to_have_url(f"{base}/dashboard/nodes/{TEMPLATE_BLOCKED}?notice=silenced")
    node_silences = page.get_by_test_id("node-silences").locator("tbody tr")
    await expect(node_silences).to_have_count(1)
    await expect(node_silences.first).to_contain_text("Meta review of the WABA")
    await expect(node_silences.first).to_contain_text(LABEL)
    await expect(node_silences.first).to_contain_text("WABA")
    await page.screenshot(path=artifacts / "node-controls.png", full_page=True)

    # The fleet marks the acknowledged template, and the WABA's nodes as silenced.
    await page.get_by_role("navigation").get_by_role("link", name="Fleet").click()
    template = page.locator(f"tr[data-node='{TEMPLATE_BLOCKED}']")
    await expect(template.locator("[data-mark=acknowledged]")).to_have_text("acknowledged")
    await expect(template.locator("[data-mark=silenced]")).to_have_text("silenced")
    limited = page.locator(f"tr[data-node='{PHONE_LIMITED}']")
    await expect(limited.locator("[data-mark=silenced]")).to_have_text("silenced")
    await expect(limited.locator("[data-mark=acknowledged]")).to_have_count(0)

    # The alerts page lists the silence; end it there.
    await page.get_by_role("link", name="Alerts").click()
    listed = page.get_by_test_id("silence-list").locator("tbody tr")
    await expect(listed).to_have_count(1)
    await expect(listed.first).to_contain_text("Meta review of the WABA")
    await page.screenshot(path=artifacts / "alerts-silences.png", full_page=True)
    await listed.first.get_by_role("button", name="End silence").click()
    await expect(page).to_have_url(f"{base}/dashboard/alerts?notice=unsilenced")
    await expect(page.get_by_test_id("notice")).to_contain_text("The silence has ended")
    await expect(page.get_by_test_id("silence-list")).to_have_count(0)
    await page.goto(f"{base}/dashboard/nodes/{TEMPLATE_BLOCKED}")
    await expect(page.get_by_test_id("node-silences")).to_have_text("None.")
    await expect(page.get_by_test_id("acknowledgement")).to_be_visible()  # still acknowledged

    # Sign out; the session's cookie, put back, opens nothing.
    [kept] = [c for c in await page.context.cookies() if c.get("name") == SESSION_COOKIE]
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{base}/dashboard/login")
    await page.context.add_cookies([kept])
    await page.goto(f"{base}/dashboard")
    await expect(page).to_have_url(f"{base}/dashboard/login")
    await expect(page.get_by_label("Graph token")).to_be_visible()
