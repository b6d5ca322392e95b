"""Meta's `health_status` JSON <-> the model.

Parsing is tolerant: unknown entity types, statuses and fields are kept (in
`extra`) so that rendering gives back what Meta sent. It fails only when the
payload is not a health answer at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wahealth.domain.model import Entity, HealthError, HealthReport, ReportSource

_ENTITY_KEYS = frozenset(
    {"entity_type", "id", "can_send_message", "can_receive_call_sip", "errors", "additional_info"}
)
_ERROR_KEYS = frozenset({"error_code", "error_description", "possible_solution"})
_STATUS_KEYS = frozenset({"can_send_message", "entities"})
_ANSWER_KEYS = frozenset({"health_status", "id"})


class MalformedHealthStatus(ValueError):
    """The payload is not a health_status answer."""


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise MalformedHealthStatus(f"{what} is a number too long to be an id") from None
    raise MalformedHealthStatus(f"{what} must be a string, got {type(value).__name__}")


def _extra(raw: Mapping[Any, Any], known: frozenset[str], what: str) -> dict[str, Any]:
    extra = {k: v for k, v in raw.items() if k not in known}
    # A key that is not a string is never a known one, so it is among the extra keys: only
    # they need checking (usually there are none).
    if extra and not all(isinstance(key, str) for key in extra):
        raise MalformedHealthStatus(f"{what} has a key that is not a string")
    return extra


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _parse_error(raw: Any) -> HealthError:
    if not isinstance(raw, Mapping):
        raise MalformedHealthStatus("each error must be an object")
    code = raw.get("error_code")
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise MalformedHealthStatus("error_code must be a number or a string")
    if isinstance(code, int) and not -(2**63) <= code < 2**63:
        raise MalformedHealthStatus("error_code is a number too large to be an error code")
    return HealthError(
        error_code=code,
        error_description=_optional_text(raw.get("error_description"), "error_description"),
        possible_solution=_optional_text(raw.get("possible_solution"), "possible_solution"),
        extra=_extra(raw, _ERROR_KEYS, "an error"),
    )


_NO_INFO: list[str] = []  # read only


def _plain_entity(raw: Any) -> Entity | None:
    """The entity of a usual answer (a dict of known keys, string values, no errors), or
    None to take the general way: a fleet refresh parses hundreds of thousands of these."""
    if type(raw) is not dict or not raw.keys() <= _ENTITY_KEYS or raw.get("errors"):
        return None
    entity_type, entity_id, status = (
        raw.get("entity_type"),
        raw.get("id"),
        raw.get("can_send_message"),
    )
    sip = raw.get("can_receive_call_sip")
    info = raw.get("additional_info") or _NO_INFO
    if (
        type(entity_type) is not str
        or type(entity_id) is not str
        or type(status) is not str
        or (sip is not None and type(sip) is not str)
        or type(info) is not list
        or any(type(item) is not str for item in info)
    ):
        return None
    return Entity(entity_type, entity_id, status, sip, (), tuple(info), {})


def _parse_entity(raw: Any) -> Entity:
    plain = _plain_entity(raw)
    if plain is not None:
        return plain
    if not isinstance(raw, Mapping):
        raise MalformedHealthStatus("each entity must be an object")
    errors = raw.get("errors") or []
    info = raw.get("additional_info") or []
    if not isinstance(errors, list):
        raise MalformedHealthStatus("errors must be a list")
    if not isinstance(info, list):
        raise MalformedHealthStatus("additional_info must be a list")
    return Entity(
        entity_type=_text(raw.get("entity_type"), "entity_type"),
        id=_text(raw.get("id"), "entity id"),
        can_send_message=_text(raw.get("can_send_message"), "can_send_message"),
        can_receive_call_sip=_optional_text(
            raw.get("can_receive_call_sip"), "can_receive_call_sip"
        ),
        errors=tuple(_parse_error(e) for e in errors),
        additional_info=tuple(_text(i, "additional_info item") for i in info),
        extra=_extra(raw, _ENTITY_KEYS, "an entity"),
    )


def parse_health_status(
    payload: Mapping[str, Any],
    *,
    fetched_at: datetime,
    source: ReportSource = ReportSource.UPSTREAM,
    node_id: str | None = None,
) -> HealthReport:
    """Parse `{"health_status": {...}, "id": ...}` as Meta sends it.

    Whatever `payload` is, the only error is MalformedHealthStatus.
    """
    if not isinstance(payload, Mapping):
        raise MalformedHealthStatus(f"a health answer is an object, got {type(payload).__name__}")
    status = payload.get("health_status")
    if not isinstance(status, Mapping):
        raise MalformedHealthStatus("missing health_status object")
    entities = status.get("entities")
    if not isinstance(entities, list):
        raise MalformedHealthStatus("health_status.entities must be a list")
    raw_id = payload.get("id", node_id)
    if raw_id is None:
        raise MalformedHealthStatus("missing node id")
    extra = _extra(payload, _ANSWER_KEYS, "the answer")
    status_extra = (
        {} if status.keys() <= _STATUS_KEYS else _extra(status, _STATUS_KEYS, "health_status")
    )
    if status_extra:
        extra["health_status"] = status_extra
    return HealthReport(
        node_id=_text(raw_id, "id"),
        entities=tuple(_parse_entity(e) for e in entities),
        fetched_at=fetched_at,
        source=source,
        upstream_can_send_message=_optional_text(status.get("can_send_message"), "status"),
        extra=extra,
    )


def _render_error(error: HealthError) -> dict[str, Any]:
    out: dict[str, Any] = {"error_code": error.error_code}
    if error.error_description is not None:
        out["error_description"] = error.error_description
    if error.possible_solution is not None:
        out["possible_solution"] = error.possible_solution
    out.update(error.extra)
    return out


def render_entity(entity: Entity) -> dict[str, Any]:
    """One entity in Meta's shape."""
    out: dict[str, Any] = {
        "entity_type": entity.entity_type,
        "id": entity.id,
        "can_send_message": entity.can_send_message,
    }
    if entity.can_receive_call_sip is not None:
        out["can_receive_call_sip"] = entity.can_receive_call_sip
    if entity.additional_info:
        out["additional_info"] = list(entity.additional_info)
    if entity.errors:
        out["errors"] = [_render_error(e) for e in entity.errors]
    out.update(entity.extra)
    return out


def render_health_status(report: HealthReport) -> dict[str, Any]:
    """The report in Meta's shape; the overall status is ours, computed from the entities."""
    status: dict[str, Any] = {
        "can_send_message": report.can_send_message.value,
        "entities": [render_entity(e) for e in report.entities],
    }
    extra = dict(report.extra)
    status_extra = extra.pop("health_status", None)
    if isinstance(status_extra, Mapping):
        status.update(status_extra)
    out: dict[str, Any] = {"health_status": status, "id": report.node_id}
    out.update(extra)
    return out


def wire_form(report: HealthReport) -> Mapping[str, Any]:
    """`render_health_status(report)`, rendered once per report and shared: read only.

    The cache's bytes and the stored payload of a refreshed report are both made from it.
    """
    return report.derived("wire", lambda: render_health_status(report))
