"""A CAMS answer as a health report, its nodes and entities named by stable ids (see `ids`).

The SDK's models keep what Alibaba documents (`EntityType`, `CanSendMessage`,
`PhoneNumber`, `WabaId`, `BusinessId`, `TemplateCode`, `Language`, `Errors`) and drop the
rest, so a LIMITED entity's reasons are read back from `Message` (`LIMITED: a; b`, how
CAMS answers carry them) and given to the queried entity when it is the LIMITED one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wahealth.core.ports import UpstreamFailure
from wahealth.domain import Entity, EntityType, HealthReport, NodeKind
from wahealth.domain.model import HealthError, Status
from wahealth.upstream.bsp.ids import entity_id, phone_node_id, template_node_id

_LIMITED_LABEL = "LIMITED: "
_NOTICE_SEPARATOR = " | "
_REASON_SEPARATOR = "; "
_TYPES = {"TEMPLATE": EntityType.MESSAGE_TEMPLATE.value}


@dataclass(frozen=True, slots=True)
class CamsTarget:
    """What is asked of CAMS for one node: its kind and how CAMS names it."""

    space_id: str
    kind: NodeKind
    phone_number: str | None = None
    template_code: str | None = None
    language: str | None = None
    waba_id: str | None = None

    @property
    def node_id(self) -> str:
        if self.kind is NodeKind.PHONE_NUMBER and self.phone_number is not None:
            return phone_node_id(self.space_id, self.phone_number)
        if self.kind is NodeKind.MESSAGE_TEMPLATE and self.template_code and self.language:
            return template_node_id(self.space_id, self.template_code, self.language)
        if self.kind is NodeKind.WABA and self.waba_id:
            return self.waba_id
        raise ValueError(f"a CAMS target of kind {self.kind} needs its names")

    def request_fields(self) -> dict[str, str]:
        """The SDK request's fields (besides `cust_space_id`)."""
        if self.kind is NodeKind.PHONE_NUMBER and self.phone_number is not None:
            return {"node_type": "phone", "phone_number": self.phone_number}
        if self.kind is NodeKind.MESSAGE_TEMPLATE and self.template_code and self.language:
            return {
                "node_type": "template",
                "template_code": self.template_code,
                "language": self.language,
            }
        if self.kind is NodeKind.WABA and self.waba_id:
            return {"node_type": "waba", "waba_id": self.waba_id}
        raise ValueError(f"a CAMS target of kind {self.kind} needs its names")


def _code(raw: object) -> int | str:
    text = str(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def limited_reasons(message: object) -> tuple[str, ...]:
    """The LIMITED reasons a CAMS `Message` carries (none when it carries none)."""
    if not isinstance(message, str):
        return ()
    for notice in message.split(_NOTICE_SEPARATOR):
        if notice.startswith(_LIMITED_LABEL):
            reasons = notice[len(_LIMITED_LABEL) :].split(_REASON_SEPARATOR)
            return tuple(r for r in reasons if r)
    return ()


def _entity_id(target: CamsTarget, entity_type: str, raw: Any) -> str:
    space = target.space_id
    if entity_type == EntityType.PHONE_NUMBER:
        if target.kind is NodeKind.PHONE_NUMBER:
            return target.node_id
        return (
            phone_node_id(space, raw.phone_number)
            if raw.phone_number
            else entity_id(space, entity_type)
        )
    if entity_type == EntityType.MESSAGE_TEMPLATE:
        if target.kind is NodeKind.MESSAGE_TEMPLATE:
            return target.node_id
        if raw.template_code and raw.language:
            return template_node_id(space, raw.template_code, raw.language)
        return entity_id(space, entity_type)
    if entity_type == EntityType.WABA:
        return str(raw.waba_id or target.waba_id or entity_id(space, entity_type))
    if entity_type == EntityType.BUSINESS and raw.business_id:
        return str(raw.business_id)
    return entity_id(space, entity_type)


def cams_report(target: CamsTarget, body: Any, fetched_at: datetime | None = None) -> HealthReport:
    """The report of `target` from a CAMS success body (the SDK's model)."""
    raw_entities = getattr(body.data, "entities", None) or []
    if not isinstance(raw_entities, list) or not raw_entities:
        raise UpstreamFailure("Alibaba CAMS answered without entities")
    entities = []
    for raw in raw_entities:
        if not raw.entity_type or not raw.can_send_message:
            raise UpstreamFailure("Alibaba CAMS answered an entity without a type or status")
        entity_type = _TYPES.get(raw.entity_type, raw.entity_type)
        errors = tuple(
            HealthError(_code(e.error_code), e.error_description, e.possible_solution)
            for e in raw.errors or ()
        )
        entities.append(
            Entity(
                entity_type=entity_type,
                id=_entity_id(target, entity_type, raw),
                can_send_message=raw.can_send_message,
                errors=errors,
            )
        )
    reasons = limited_reasons(body.message)
    if reasons:
        limited = [i for i, e in enumerate(entities) if e.status is Status.LIMITED]
        queried = [i for i in limited if entities[i].id == target.node_id]
        if queried or limited:
            chosen = (queried or limited)[0]
            entity = entities[chosen]
            entities[chosen] = Entity(
                entity.entity_type,
                entity.id,
                entity.can_send_message,
                errors=entity.errors,
                additional_info=reasons,
            )
    return HealthReport(
        node_id=target.node_id,
        entities=tuple(entities),
        fetched_at=fetched_at or datetime.now(UTC),
        upstream_can_send_message=body.data.can_send_message,
    )
