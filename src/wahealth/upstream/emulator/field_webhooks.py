"""Which Meta webhooks a change of a number's or template's fields makes the emulator send.

Each `PATCH /_emulator/nodes/{id}` that changes something sends, per Meta field
below, one notification to every registered target (signed as in `webhooks`):

- a phone number's messaging limit, `throughput`, `quality_rating`, or `status` to or
  from `FLAGGED`: `phone_number_quality_update` with `display_phone_number`, `event`,
  `current_limit` (its `messaging_limit_tier`), `max_daily_conversations_per_business`
  (its `whatsapp_business_manager_messaging_limit`) and `old_limit` for a limit change;
- any other phone number `status` that has a Meta event (below): `account_update`;
- its `name_status` or `verified_name`: `phone_number_name_update` with
  `display_phone_number`, `decision` and `requested_verified_name`;
- a template's `status` or `rejected_reason`: `message_template_status_update`, `event`
  being the status, with `reason`, its ids and names, and `other_info` when PAUSED;
- its `quality_score`: `message_template_quality_update` (previous and new score);
- its `category`: `template_category_update` (previous and new category).

`event` of a quality update: `DOWNGRADE`/`UPGRADE` for a limit (its tier order), else
`FLAGGED`/`UNFLAGGED` for the status, else `THROUGHPUT_UPGRADE` (to `HIGH`) or
`DOWNGRADE` for the throughput, else `FLAGGED`/`UNFLAGGED` for a worse/better quality
rating. Statuses in `account_update`: RESTRICTED and RATE_LIMITED are
`ACCOUNT_RESTRICTION`, BANNED `DISABLED_UPDATE` (`DISABLE`), DELETED `ACCOUNT_DELETED`,
DISCONNECTED `ACCOUNT_OFFBOARDED`, CONNECTED `ACCOUNT_RECONNECTED`; other statuses,
`code_verification_status` and `display_phone_number` send nothing (Meta documents no
webhook for them; a poll sees them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wahealth.upstream.emulator.scenario import PhoneNumberSpec, TemplateSpec

if TYPE_CHECKING:
    from wahealth.upstream.emulator.state import FieldChange

# (WABA id, `changes[].field`, `changes[].value`)
Notice = tuple[str, str, dict[str, Any]]

_TIERS = ("TIER_NOT_SET", "TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K")
_TIER_RANK = {tier: rank for rank, tier in enumerate((*_TIERS, "TIER_UNLIMITED"))}
_QUALITY_RANK = {"NA": 0, "UNKNOWN": 0, "RED": 1, "YELLOW": 2, "GREEN": 3}
_LIMITS = ("messaging_limit_tier", "whatsapp_business_manager_messaging_limit")
_ACCOUNT_EVENTS: dict[str, dict[str, Any]] = {
    "RESTRICTED": {
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}],
    },
    "BANNED": {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}},
    "DELETED": {"event": "ACCOUNT_DELETED"},
    "DISCONNECTED": {"event": "ACCOUNT_OFFBOARDED"},
    "CONNECTED": {"event": "ACCOUNT_RECONNECTED"},
}
_ACCOUNT_EVENTS["RATE_LIMITED"] = _ACCOUNT_EVENTS["RESTRICTED"]
_NAME_DECISIONS = {
    "APPROVED": "APPROVED",
    "AVAILABLE_WITHOUT_REVIEW": "APPROVED",
    "DECLINED": "REJECTED",
    "EXPIRED": "REJECTED",
}


def field_notices(change: FieldChange) -> list[Notice]:
    """The notifications Meta would send for `change`, in order (maybe none)."""
    spec = change.node.spec
    if isinstance(spec, PhoneNumberSpec):
        return _phone_notices(spec, change.before, change.after)
    if isinstance(spec, TemplateSpec):
        return _template_notices(spec, change.before, change.after)
    return []


def _rank_change(ranks: dict[str, int], before: Any, after: Any) -> int:
    return ranks.get(str(after), 0) - ranks.get(str(before), 0)


def _quality_event(spec: PhoneNumberSpec, before: dict[str, Any]) -> str | None:
    for limit in _LIMITS:
        if limit in before:
            worse = _rank_change(_TIER_RANK, before[limit], getattr(spec, limit)) < 0
            return "DOWNGRADE" if worse else "UPGRADE"
    if "status" in before and "FLAGGED" in (before["status"], spec.status):
        return "FLAGGED" if spec.status == "FLAGGED" else "UNFLAGGED"
    if "throughput" in before:
        return "THROUGHPUT_UPGRADE" if spec.throughput == "HIGH" else "DOWNGRADE"
    if "quality_rating" in before:
        worse = _rank_change(_QUALITY_RANK, before["quality_rating"], spec.quality_rating) < 0
        return "FLAGGED" if worse else "UNFLAGGED"
    return None


def _phone_notices(
    spec: PhoneNumberSpec, before: dict[str, Any], after: dict[str, Any]
) -> list[Notice]:
    notices: list[Notice] = []
    event = _quality_event(spec, before)
    if event is not None:
        value: dict[str, Any] = {"display_phone_number": spec.display_phone_number, "event": event}
        changed_limit = next((limit for limit in _LIMITS if limit in before), None)
        if changed_limit is not None:
            value["old_limit"] = before[changed_limit]
        value["current_limit"] = spec.messaging_limit_tier
        value["max_daily_conversations_per_business"] = (
            spec.whatsapp_business_manager_messaging_limit
        )
        notices.append((spec.waba, "phone_number_quality_update", value))
    flagging = "FLAGGED" in (before.get("status"), after.get("status"))
    if "status" in after and not flagging and after["status"] in _ACCOUNT_EVENTS:
        notices.append((spec.waba, "account_update", dict(_ACCOUNT_EVENTS[after["status"]])))
    if "name_status" in after or "verified_name" in after:
        name = {
            "display_phone_number": spec.display_phone_number,
            "decision": _NAME_DECISIONS.get(spec.name_status, "DEFERRED"),
            "requested_verified_name": spec.verified_name,
        }
        notices.append((spec.waba, "phone_number_name_update", name))
    return notices


def _template_ids(spec: TemplateSpec) -> dict[str, Any]:
    return {
        "message_template_id": int(spec.id) if spec.id.isdigit() else spec.id,
        "message_template_name": spec.name,
        "message_template_language": spec.language,
    }


def _template_notices(
    spec: TemplateSpec, before: dict[str, Any], after: dict[str, Any]
) -> list[Notice]:
    notices: list[Notice] = []
    if "status" in after or "rejected_reason" in after:
        value: dict[str, Any] = {
            "event": spec.status,
            **_template_ids(spec),
            "reason": spec.rejected_reason if spec.status == "REJECTED" else "NONE",
            "message_template_category": spec.category,
        }
        if spec.status == "PAUSED":
            value["other_info"] = {
                "title": "FIRST_PAUSE",
                "description": "Your message template has been paused because of low quality.",
            }
        notices.append((spec.waba, "message_template_status_update", value))
    if "quality_score" in after:
        value = {
            "previous_quality_score": before["quality_score"],
            "new_quality_score": spec.quality_score,
            **_template_ids(spec),
        }
        notices.append((spec.waba, "message_template_quality_update", value))
    if "category" in after:
        value = {
            **_template_ids(spec),
            "previous_category": before["category"],
            "new_category": spec.category,
        }
        notices.append((spec.waba, "template_category_update", value))
    return notices
