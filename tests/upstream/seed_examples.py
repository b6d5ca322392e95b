"""Meta's example health_status answers (360dialog "Messaging Health Status" page), verbatim.

The LIMITED example is quoted with its PHONE_NUMBER entity id corrected to the
queried node: the published page repeats the AVAILABLE example's id there.
The last two answers extend the examples to the demo's blocked WABA.
"""

from __future__ import annotations

from typing import Any

_WABA = {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"}
_BUSINESS = {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"}
_APP = {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"}
_BLOCKED_WABA = {
    "entity_type": "WABA",
    "id": "299399000000001",
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141006,
            "error_description": "There is an error with the payment method.",
            "possible_solution": "There was an error with your payment method. "
            "Please add a new payment method to the account.",
        }
    ],
}

AVAILABLE_PHONE: dict[str, Any] = {
    "health_status": {
        "can_send_message": "AVAILABLE",
        "entities": [
            {
                "entity_type": "PHONE_NUMBER",
                "id": "106540352242922",
                "can_send_message": "AVAILABLE",
            },
            _WABA,
            _BUSINESS,
            _APP,
        ],
    },
    "id": "106540352242922",
}

LIMITED_PHONE: dict[str, Any] = {
    "health_status": {
        "can_send_message": "LIMITED",
        "entities": [
            {
                "entity_type": "PHONE_NUMBER",
                "id": "105154286024403",
                "can_send_message": "LIMITED",
                "additional_info": [
                    "Your display name has not been approved yet. Your message limit will "
                    "increase after the display name is approved."
                ],
            },
            _WABA,
            _BUSINESS,
            _APP,
        ],
    },
    "id": "105154286024403",
}

BLOCKED_TEMPLATE: dict[str, Any] = {
    "health_status": {
        "can_send_message": "BLOCKED",
        "entities": [
            {
                "entity_type": "MESSAGE_TEMPLATE",
                "id": "2632273056924580",
                "can_send_message": "BLOCKED",
                "errors": [
                    {
                        "error_code": 141002,
                        "error_description": "Message templates can only be sent out if they "
                        "are approved.",
                        "possible_solution": "Edit or appeal the message template review decision.",
                    }
                ],
            },
            _WABA,
            _BUSINESS,
            _APP,
        ],
    },
    "id": "2632273056924580",
}

BLOCKED_WABA: dict[str, Any] = {
    "health_status": {"can_send_message": "BLOCKED", "entities": [_BLOCKED_WABA, _BUSINESS, _APP]},
    "id": "299399000000001",
}

PHONE_ON_BLOCKED_WABA: dict[str, Any] = {
    "health_status": {
        "can_send_message": "BLOCKED",
        "entities": [
            {
                "entity_type": "PHONE_NUMBER",
                "id": "106540352242999",
                "can_send_message": "AVAILABLE",
            },
            _BLOCKED_WABA,
            _BUSINESS,
            _APP,
        ],
    },
    "id": "106540352242999",
}

AVAILABLE_WABA: dict[str, Any] = {
    "health_status": {"can_send_message": "AVAILABLE", "entities": [_WABA, _BUSINESS, _APP]},
    "id": "102290129340398",
}

BY_NODE: dict[str, dict[str, Any]] = {
    "106540352242922": AVAILABLE_PHONE,
    "105154286024403": LIMITED_PHONE,
    "2632273056924580": BLOCKED_TEMPLATE,
    "299399000000001": BLOCKED_WABA,
    "106540352242999": PHONE_ON_BLOCKED_WABA,
    "102290129340398": AVAILABLE_WABA,
}
