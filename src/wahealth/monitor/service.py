"""The monitor as the app sees it: one object with an observer, routes, start and stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from wahealth.auth.secretbox import SecretBox
from wahealth.core.catalog_sync import CatalogSync
from wahealth.core.directory import Directory
from wahealth.core.health import HealthService
from wahealth.domain import HealthReport
from wahealth.settings import Settings
from wahealth.upstream.graph import GraphClient


@dataclass
class Monitor:
    """Fleet refresh, transitions, alert delivery and Meta webhook ingestion."""

    settings: Settings
    health: HealthService
    graph: GraphClient
    sessions: Any  # async_sessionmaker
    secretbox: SecretBox
    directory: Directory
    catalog_sync: CatalogSync

    async def observe(self, report: HealthReport, cause: str) -> None:
        """Called with every report fetched from upstream (records transitions)."""

    def routes(self) -> list[BaseRoute]:
        """HTTP routes the monitor serves (history API, Meta webhooks)."""
        return []

    async def start(self) -> None:
        """Start the background loops (after storage is ready)."""

    async def stop(self) -> None:
        """Stop the loops; nothing in flight is lost (the outbox is persisted)."""
