"""Where one BSP node's health is asked: a 360dialog channel, or a CAMS account and target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wahealth.domain import EntityType, HealthReport, NodeKind
from wahealth.upstream.bsp.cams_report import CamsTarget, cams_report
from wahealth.upstream.bsp.config import D360Channel
from wahealth.upstream.bsp.d360 import D360Client
from wahealth.upstream.errors import GraphBadResponse

if TYPE_CHECKING:  # the Alibaba SDK is loaded only when a space takes its health from CAMS
    from wahealth.upstream.bsp.cams import CamsClient

_WABA_ENTITIES = (EntityType.WABA, EntityType.BUSINESS, EntityType.APP)


@dataclass(frozen=True, slots=True)
class D360Route:
    """A 360dialog channel's phone number, or (`waba_id` set) its WABA, from the same answer."""

    space_id: str
    channel: D360Channel
    waba_id: str | None = None

    async def health(self, d360: D360Client) -> HealthReport:
        report = await d360.health(self.channel)
        if self.waba_id is None:
            return report
        # 360dialog answers for the channel's number; its WABA's part is the WABA's health.
        entities = tuple(e for e in report.entities if e.entity_type in _WABA_ENTITIES)
        if not any(e.id == self.waba_id for e in entities):
            raise GraphBadResponse(f"360dialog's answer no longer names WABA {self.waba_id}")
        return HealthReport(self.waba_id, entities, report.fetched_at)


@dataclass(frozen=True, slots=True)
class CamsRoute:
    space_id: str
    client: CamsClient
    target: CamsTarget

    async def health(self) -> HealthReport:
        body = await self.client.health_status(**self.target.request_fields())
        return cams_report(self.target, body)


Route = D360Route | CamsRoute


def kind_of(route: Route) -> NodeKind:
    if isinstance(route, D360Route):
        return NodeKind.PHONE_NUMBER if route.waba_id is None else NodeKind.WABA
    return route.target.kind
