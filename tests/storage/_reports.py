"""Meta health_status documents for storage tests."""

from __future__ import annotations

from typing import Any

PHONE = "106540352242922"
WABA = "waba-1"


def report(
    phone: str = "AVAILABLE",
    waba: str = "AVAILABLE",
    *,
    waba_errors: tuple[int, ...] = (),
    phone_info: tuple[str, ...] = (),
    description: str = "There is an error with the payment method.",
    sip: str = "AVAILABLE",
) -> dict[str, Any]:
    """A phone-number node's answer; the overall status is the worst entity's."""
    phone_entity: dict[str, Any] = {
        "entity_type": "PHONE_NUMBER",
        "id": PHONE,
        "can_send_message": phone,
        "can_receive_call_sip": sip,
    }
    if phone_info:
        phone_entity["additional_info"] = list(phone_info)
    waba_entity: dict[str, Any] = {"entity_type": "WABA", "id": WABA, "can_send_message": waba}
    if waba_errors:
        waba_entity["errors"] = [
            {"error_code": code, "error_description": description, "possible_solution": "Fix it."}
            for code in waba_errors
        ]
    statuses = {phone, waba}
    overall = next(s for s in ("BLOCKED", "LIMITED", "AVAILABLE") if s in statuses)
    return {
        "health_status": {"can_send_message": overall, "entities": [phone_entity, waba_entity]},
        "id": PHONE,
    }


def overall(payload: dict[str, Any]) -> str:
    return str(payload["health_status"]["can_send_message"])


def codes(payload: dict[str, Any]) -> list[str]:
    return sorted(
        str(error["error_code"])
        for entity in payload["health_status"]["entities"]
        for error in entity.get("errors", [])
    )
