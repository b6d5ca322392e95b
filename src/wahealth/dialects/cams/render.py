"""CAMS GetWhatsappHealthStatus response bodies (PascalCase, as Alibaba Cloud documents them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from wahealth.domain import Entity, EntityType, HealthReport, ReportSource, fill_error


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What the caller named, echoed back on the entities it applies to."""

    node_type: str
    phone_number: str | None = None
    template_code: str | None = None
    language: str | None = None


def _entity(entity: Entity, report: HealthReport, ctx: QueryContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "EntityType": entity.entity_type,
        "Id": entity.id,
        "CanSendMessage": entity.can_send_message,
    }
    waba = report.entity(EntityType.WABA)
    business = report.entity(EntityType.BUSINESS)
    if entity.entity_type in (EntityType.PHONE_NUMBER, EntityType.MESSAGE_TEMPLATE):
        if entity.entity_type == EntityType.PHONE_NUMBER:
            out["PhoneNumber"] = ctx.phone_number or ""
        else:
            out["TemplateCode"] = ctx.template_code or ""
            out["Language"] = ctx.language or ""
        # Seed 000 names the owning WABA and Business Manager on the queried entity too.
        if waba is not None:
            out["WabaId"] = waba.id
        if business is not None:
            out["BusinessId"] = business.id
    elif entity.entity_type == EntityType.WABA:
        out["WabaId"] = entity.id
        if business is not None:
            out["BusinessId"] = business.id
    elif entity.entity_type == EntityType.BUSINESS:
        out["BusinessId"] = entity.id
    errors = [fill_error(e) for e in entity.errors]
    if errors:
        out["Errors"] = [
            {
                "ErrorCode": e.code,
                "ErrorDescription": e.error_description or "",
                "PossibleSolution": e.possible_solution or "",
            }
            for e in errors
        ]
    if entity.additional_info:
        out["AdditionalInfo"] = list(entity.additional_info)
    return out


def stale_message(report: HealthReport) -> str:
    return (
        "Meta is unavailable; this is the last known status, fetched at "
        f"{report.fetched_at.isoformat(timespec='seconds')}"
    )


@dataclass(frozen=True, slots=True)
class RenderedSuccess:
    """A success body split around the request id, so a cached answer costs one concatenation."""

    head: bytes
    tail: bytes

    def with_request_id(self, request_id: str) -> bytes:
        return self.head + request_id.encode() + self.tail


def render_success(report: HealthReport, ctx: QueryContext) -> RenderedSuccess:
    message = stale_message(report) if report.source is ReportSource.STALE else "None"
    data = {
        "CanSendMessage": report.can_send_message.value,
        "Entities": [_entity(e, report, ctx) for e in report.entities],
    }
    rest = orjson.dumps(
        {
            "Code": "OK",
            "Message": message,
            "AccessDeniedDetail": "None",
            "Success": True,
            "Data": data,
        }
    )
    # rest starts with "{"; the request id goes first, as in Alibaba's examples.
    return RenderedSuccess(head=b'{"RequestId":"', tail=b'",' + rest[1:])


def render_error(
    request_id: str, code: str, message: str, *, access_denied_detail: str | None = None
) -> bytes:
    body: dict[str, Any] = {
        "RequestId": request_id,
        "HostId": "wahealth",
        "Code": code,
        "Message": message,
        "Recommend": f"Error code {code}: see the wahealth README, section 'CAMS errors'.",
    }
    if access_denied_detail is not None:
        body["AccessDeniedDetail"] = access_denied_detail
    return orjson.dumps(body)
