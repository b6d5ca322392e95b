"""The alerts page: the account's outbox by state, dead letters to retry, its silences (to
end early) and its subscriptions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wahealth.core.alerting import Alerting
from wahealth.domain.records import AlertState
from wahealth.web.dashboard.console import BadRequest, Console, Visit
from wahealth.web.dashboard.ports import Alerts

PAGE_SIZE = 50
MAX_PAGE = 10_000
STATES = tuple(state.value for state in AlertState)
# What a retry answered, as the page tells it after the redirect (never the caller's text).
NOTICES = {
    "retried": "The alert is queued again and will be sent on the next delivery round.",
    "not-dead": "That alert is not dead (it was already retried or delivered).",
    "not-found": "No such alert for this account.",
    "unsilenced": "The silence has ended; if nodes are still not AVAILABLE, one alert says so.",
}
_OUTCOMES = {"retried": "retried", "not dead": "not-dead", "not found": "not-found"}


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "")
    if not raw:
        return 1
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"page must be a whole number from 1 to {MAX_PAGE}.")
    return int(raw)


class AlertsPage:
    def __init__(self, console: Console, alerts: Alerts, alerting: Alerting) -> None:
        self._console = console
        self._alerts = alerts
        self._alerting = alerting

    async def show(self, request: Request, visit: Visit) -> Response:
        state = request.query_params.get("state", "")
        if state and state not in STATES:
            raise BadRequest(f"state must be one of: {', '.join(STATES)}.")
        page = _page_number(request)
        listed = await self._alerts.alerts(
            visit.account,
            state=state or None,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE + 1,
        )
        counts = await self._alerts.counts(visit.account)
        context = {
            "nav": "alerts",
            "title": "Alerts",
            "state": state,
            "states": STATES,
            "counts": counts,
            "all_count": sum(counts.values()),
            "alerts": listed[:PAGE_SIZE],
            "page": page,
            "more": len(listed) > PAGE_SIZE,
            "subscriptions": await self._alerts.subscriptions(visit.account),
            "silences": await self._alerting.silences(visit.principal),
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        }
        return self._console.page(request, visit, "alerts.html", context)

    async def retry(self, request: Request, visit: Visit) -> Response:
        alert_id: str = request.path_params["alert_id"]
        outcome = "not found"
        if 0 < len(alert_id) <= 64 and alert_id.isascii() and alert_id.isalnum():
            outcome = await self._alerts.retry_dead(visit.account, alert_id)
        notice = _OUTCOMES.get(outcome, "not-found")
        return RedirectResponse(f"/dashboard/alerts?state=dead&notice={notice}", status_code=303)
