"""An operator's session in a real browser: sign in, filter, search, open a node, read it in
another language, retry a dead letter, sign out."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect
from tests.browser.conftest import EXTRA_WABA
from tests.gateway._served import ServedGateway
from tests.web._console import PHONE_LIMITED, PHONE_OK, PHONE_ON_BLOCKED_WABA, TEMPLATE_BLOCKED

from wahealth.domain.catalog import describe
from wahealth.testing import DEMO


async def _sign_in(page: Page, served: ServedGateway, token: str = DEMO.graph_token) -> None:
    await page.goto(f"{served.base_url}/dashboard")
    await expect(page).to_have_url(f"{served.base_url}/dashboard/login")
    await page.get_by_label("Graph token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_in_filter_search_and_open_a_node(
    page: Page, served: ServedGateway, seeded: dict[str, str], artifacts: Path
) -> None:
    await _sign_in(page, served, "not-a-token")
    await expect(page.get_by_role("alert")).to_have_text(
        "That token is not valid (or was revoked)."
    )

    await _sign_in(page, served)
    await expect(page).to_have_url(f"{served.base_url}/dashboard")
    await expect(page.get_by_test_id("account")).to_have_text(DEMO.account)
    counts = page.get_by_test_id("counts")
    # The template, and the number whose alert is dead (see the next test).
    await expect(counts.locator("[data-status=BLOCKED]")).to_have_text("BLOCKED 2")
    await expect(counts.locator("[data-status=UNKNOWN]")).to_have_text("UNKNOWN 27")
    rows = page.locator("table.fleet tbody tr")
    worst = [await row.get_attribute("data-node") for row in (await rows.all())[:2]]
    assert worst == [PHONE_OK, TEMPLATE_BLOCKED]  # worst first, then by name
    await expect(page.get_by_test_id("range")).to_have_text("Nodes 1\N{EN DASH}31 of 31")
    await page.screenshot(path=artifacts / "fleet.png", full_page=False)

    # Filter: LIMITED numbers only.
    await page.get_by_label("Status").select_option("LIMITED")
    await page.get_by_label("Kind").select_option("phone")
    await page.get_by_role("button", name="Apply", exact=True).last.click()
    await expect(page).to_have_url(
        f"{served.base_url}/dashboard?q=&status=LIMITED&kind=phone&space=&per=50"
    )
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-node", PHONE_LIMITED)

    # Search by a number written with punctuation, across every status.
    await page.goto(f"{served.base_url}/dashboard")
    await page.get_by_role("searchbox").fill("+62 811-0000-07")
    await page.get_by_role("searchbox").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Extra shop 7")
    await expect(rows.first).to_contain_text("Extra Brand")

    # Sort by name, descending, by clicking the header twice.
    await page.goto(f"{served.base_url}/dashboard?kind=phone")
    await page.get_by_role("link", name="Name").click()
    await page.get_by_role("link", name="Name").click()
    await expect(rows.first).to_contain_text("+86 138 0000 0009")

    # Open the BLOCKED template: what is wrong and what fixes it.
    await page.goto(f"{served.base_url}/dashboard")
    await page.locator(f"tr[data-node='{TEMPLATE_BLOCKED}']").get_by_role("link").click()
    await expect(page).to_have_url(f"{served.base_url}/dashboard/nodes/{TEMPLATE_BLOCKED}")
    description, solution = describe("141002", "en") or ("", "")
    error = page.locator("[data-code='141002']")
    await expect(error).to_contain_text(description)
    await expect(error.locator(".solution")).to_have_text(solution)
    await expect(page.get_by_test_id("field-status")).to_have_text("PENDING")
    await page.screenshot(path=artifacts / "node-template.png", full_page=True)

    # In Indonesian, chosen with the picker.
    await page.get_by_label("Language").select_option("id")
    await page.get_by_role("button", name="Apply").click()
    id_description, id_solution = describe("141002", "id") or ("", "")
    await expect(error).to_contain_text(id_description)
    await expect(error.locator(".solution")).to_have_text(id_solution)
    await expect(page.locator("html")).to_have_attribute("lang", "id")

    # A node with history: uptime from its transitions, and its timeline.
    await page.goto(f"{served.base_url}/dashboard/nodes/{PHONE_ON_BLOCKED_WABA}")
    uptime = page.get_by_test_id("uptime")
    await expect(uptime.locator("[data-window='24 h'] td").nth(1)).to_have_text("100 %")
    await expect(uptime.locator("[data-window='7 d'] td").nth(1)).to_have_text(
        f"{100 * (168 - 4) / 168:.2f} %"
    )
    await expect(page.get_by_test_id("timeline").locator("tbody tr")).to_have_count(3)
    await page.screenshot(path=artifacts / "node-uptime.png", full_page=True)

    # The WABA link of a number leads to the WABA's page.
    await page.goto(f"{served.base_url}/dashboard/nodes/555000000003")
    await page.get_by_role("link", name="WABA Extra Brand").click()
    await expect(page).to_have_url(f"{served.base_url}/dashboard/nodes/{EXTRA_WABA}")


async def test_retry_a_dead_letter_then_sign_out(
    page: Page, served: ServedGateway, seeded: dict[str, str], artifacts: Path
) -> None:
    alert_id = seeded["dead_alert"]
    await _sign_in(page, served)
    await page.get_by_role("link", name="Alerts").click()
    counts = page.get_by_test_id("alert-counts")
    await expect(counts.locator("[data-state=dead]")).to_have_text("dead 1")
    await counts.locator("[data-state=dead]").click()
    row = page.locator(f"tr[data-alert='{alert_id}']")
    await expect(row).to_contain_text("HTTP 410 from the receiver")
    await expect(row).to_contain_text("https://hooks.example/wahealth/…")
    await page.screenshot(path=artifacts / "alerts.png", full_page=True)

    await row.get_by_role("button", name="Retry").click()
    await expect(page.get_by_test_id("notice")).to_have_text(
        "The alert is queued again and will be sent on the next delivery round."
    )
    await expect(counts.locator("[data-state=dead]")).to_have_text("dead 0")
    await expect(counts.locator("[data-state=pending]")).to_have_text("pending 1")
    await expect(page.locator(f"tr[data-alert='{alert_id}']")).to_have_count(0)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{served.base_url}/dashboard/login")
    await page.goto(f"{served.base_url}/dashboard/alerts")
    await expect(page).to_have_url(f"{served.base_url}/dashboard/login?next=%2Fdashboard%2Falerts")
    await expect(page.get_by_label("Graph token")).to_be_visible()
