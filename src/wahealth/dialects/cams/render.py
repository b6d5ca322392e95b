"""CAMS GetWhatsappHealthStatus response bodies (PascalCase, as Alibaba Cloud documents them).

`Message` is where a caller of the official SDK learns what its models have no field for
(the SDK drops `Id` and `AdditionalInfo`): `"None"` when there is nothing to say, else
the notices joined by `" | "`, in this order:

- the stale notice, when Meta is unavailable and the last known report is served;
- `"LIMITED: <reason>; <reason>"`: every LIMITED reason (`additional_info`) of the
  entities, in entity order, without repeats. The `LIMITED: ` label is never translated;
  the reasons and the stale notice are in the answer's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from wahealth.domain import Entity, EntityType, HealthReport, ReportSource
from wahealth.domain.catalog import localize, notice
from wahealth.domain.languages import Language

NOTICE_SEPARATOR = " | "
LIMITED_LABEL = "LIMITED: "
REASON_SEPARATOR = "; "


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
    if entity.errors:
        out["Errors"] = [
            {
                "ErrorCode": e.code,
                "ErrorDescription": e.error_description or "",
                "PossibleSolution": e.possible_solution or "",
            }
            for e in entity.errors
        ]
    if entity.additional_info:
        out["AdditionalInfo"] = list(entity.additional_info)
    return out


def stale_message(report: HealthReport, lang: Language = Language.EN) -> str:
    fetched_at = report.fetched_at.isoformat(timespec="seconds")
    return notice("stale", lang, fetched_at=fetched_at)


def success_message(report: HealthReport, lang: Language = Language.EN) -> str:
    """The `Message` of a success answer (see the module docstring), `report` localized."""
    notices = []
    if report.source is ReportSource.STALE:
        notices.append(stale_message(report, lang))
    reasons = [info for entity in report.entities for info in entity.additional_info]
    if reasons:
        notices.append(LIMITED_LABEL + REASON_SEPARATOR.join(dict.fromkeys(reasons)))
    return NOTICE_SEPARATOR.join(notices) if notices else "None"


@dataclass(frozen=True, slots=True)
class RenderedSuccess:
    """A success body split around the request id, so a cached answer costs one concatenation."""

    head: bytes
    tail: bytes

    def with_request_id(self, request_id: str) -> bytes:
        return self.head + request_id.encode() + self.tail


def render_success(
    report: HealthReport, ctx: QueryContext, lang: Language = Language.EN
) -> RenderedSuccess:
    """The answer in `lang`: the catalog's texts filled in (English) or translated."""
    report = localize(report, lang)
    data = {
        "CanSendMessage": report.can_send_message.value,
        "Entities": [_entity(e, report, ctx) for e in report.entities],
    }
    rest = orjson.dumps(
        {
            "Code": "OK",
            "Message": success_message(report, lang),
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
