"""The operators' dashboard: server-rendered pages over the account's fleet and alerts.

Sign in with a Graph token of the account; the session lives in an encrypted cookie
that holds no token (see `session`). Pages: the fleet (`/dashboard`), a node
(`/dashboard/nodes/{id}`, with its acknowledge and silence controls) and the alerts
(`/dashboard/alerts`, with the account's silences). Every asset is served
from `/dashboard/static/`; nothing is loaded from another site.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from wahealth.core.alerting import Alerting
from wahealth.core.directory import Directory
from wahealth.web.dashboard.alerts import AlertsPage
from wahealth.web.dashboard.console import Console
from wahealth.web.dashboard.controls import Controls
from wahealth.web.dashboard.fleet import FleetPage
from wahealth.web.dashboard.node import NodePage
from wahealth.web.dashboard.ports import (
    Alerts,
    ConnectionTrouble,
    Fleet,
    HealthLog,
    SignOuts,
    Spaces,
)
from wahealth.web.dashboard.render import Pages
from wahealth.web.dashboard.session import SESSION_SECONDS, SessionCodec

__all__ = ["Dashboard", "dashboard_routes"]


class Dashboard:
    """The dashboard's pages over the ports it reads and changes."""

    def __init__(
        self,
        *,
        directory: Directory,
        spaces: Spaces,
        fleet: Fleet,
        health: HealthLog,
        alerts: Alerts,
        alerting: Alerting,
        sign_outs: SignOuts,
        session_key: bytes,
        session_seconds: int = SESSION_SECONDS,
        connections: ConnectionTrouble | None = None,
    ) -> None:
        codec = SessionCodec(session_key, session_seconds=session_seconds)
        self.console = Console(directory, spaces, codec, Pages(), sign_outs)
        self.fleet = FleetPage(self.console, fleet, alerting, connections)
        self.node = NodePage(self.console, fleet, health, alerts, alerting)
        self.alerts = AlertsPage(self.console, alerts, alerting)
        self.controls = Controls(self.node, alerting)

    def routes(self) -> list[BaseRoute]:
        signed_in = self.console.signed_in
        return [
            Route("/dashboard", signed_in(self.fleet.show), methods=["GET"]),
            Route("/dashboard/login", self.console.login_form, methods=["GET"]),
            Route("/dashboard/login", self.console.login, methods=["POST"]),
            Route("/dashboard/logout", signed_in(self.console.logout), methods=["POST"]),
            Route("/dashboard/language", signed_in(self.console.choose_language), methods=["POST"]),
            Route("/dashboard/nodes/{node_id}", signed_in(self.node.show), methods=["GET"]),
            Route("/dashboard/nodes/{node_id}/ack", signed_in(self.controls.ack), methods=["POST"]),
            Route(
                "/dashboard/nodes/{node_id}/silence",
                signed_in(self.controls.silence),
                methods=["POST"],
            ),
            Route(
                "/dashboard/silences/{silence_id}/end",
                signed_in(self.controls.unsilence),
                methods=["POST"],
            ),
            Route("/dashboard/alerts", signed_in(self.alerts.show), methods=["GET"]),
            Route(
                "/dashboard/alerts/{alert_id}/retry",
                signed_in(self.alerts.retry),
                methods=["POST"],
            ),
            Mount(
                "/dashboard/static",
                app=StaticFiles(packages=[("wahealth.web", "static")]),
                name="dashboard-static",
            ),
        ]


def dashboard_routes(dashboard: Dashboard) -> list[BaseRoute]:
    return dashboard.routes()
