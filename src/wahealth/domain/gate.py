"""The pre-send gate's verdict: may this phone number send (this template) now, and if not, why.

A pure function of what is known about each node checked: its health report and the
status the catalog holds for it (a phone number's `status`, a template's `status`).

- `allow` is false when a node's health is BLOCKED, when the template's status is not
  APPROVED, or when the number's status is not CONNECTED. A status we do not know (none
  synced yet, or Meta's own `UNKNOWN`) denies nothing: the health report still decides.
- LIMITED allows, with its reasons; `strict` refuses it too.
- `status` is the worst health of the nodes checked (any BLOCKED → BLOCKED, else any
  LIMITED → LIMITED, else AVAILABLE), the same rule as a single node's.

Reasons come from the entities that are not AVAILABLE (each error, with its description
and solution filled from the error catalog where Meta left them out, and each
`additional_info` line), then from the catalog statuses, which get codes of their own
(`TEMPLATE_NOT_APPROVED`, `PHONE_NUMBER_NOT_CONNECTED`) since Meta has no health code for
them. The nodes share their WABA, business and app, so a reason seen twice is kept once.

Template statuses: Meta's template node reference (`whats-app-business-hsm`) and the
`message_template_status_update` webhook. Phone number statuses: the `status` field of
Meta's phone number node (CONNECTED, FLAGGED, PENDING, RESTRICTED, …).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from wahealth.domain.catalog import fill_error, translate_info
from wahealth.domain.languages import ENGLISH, Language
from wahealth.domain.model import HealthReport, NodeKind, ReportSource, Status, overall_status

TEMPLATE_NOT_APPROVED = "TEMPLATE_NOT_APPROVED"
PHONE_NUMBER_NOT_CONNECTED = "PHONE_NUMBER_NOT_CONNECTED"

SENDABLE_TEMPLATE_STATUS = "APPROVED"
SENDABLE_NUMBER_STATUS = "CONNECTED"
# Statuses that say nothing: they deny nothing (the health report still decides).
UNKNOWN_STATUSES = frozenset({"", "UNKNOWN"})

_TEMPLATE_SOLUTIONS = {
    "PENDING": "Wait for Meta's review of the template to finish; only approved templates send.",
    "IN_APPEAL": "Wait for the decision on the template's appeal.",
    "REJECTED": "Edit the template to address the rejection reason and submit it again, "
    "or appeal the review decision.",
    "PAUSED": "Meta paused the template because recipients' feedback lowered its quality; "
    "it resumes when the pause ends. Review its content and audience before sending again.",
    "DISABLED": "Meta disabled the template after repeated quality pauses; edit it and submit "
    "it for review again, or use another approved template.",
    "FLAGGED": "The template's quality is low and it may be paused or disabled; review its "
    "content and audience.",
    "LIMIT_EXCEEDED": "The WhatsApp Business Account has reached its limit of message "
    "templates; delete unused templates, or use an approved one.",
    "PENDING_DELETION": "The template is being deleted; use or create another template.",
    "DELETED": "The template was deleted; use or create another template.",
    "ARCHIVED": "The template is archived; unarchive it in WhatsApp Manager, or use another.",
    "LOCKED": "The template is locked and cannot be edited or sent; use another template.",
}
_TEMPLATE_FALLBACK = "Only APPROVED templates can be sent; check the template in WhatsApp Manager."

_NUMBER_SOLUTIONS = {
    "PENDING": "Finish registering the number with the Cloud API (verify it, then register it).",
    "DISCONNECTED": "Register the number with the Cloud API again.",
    "OFFLINE": "Register the number with the Cloud API again.",
    "UNVERIFIED": "Verify the number with the code Meta sends, then register it.",
    "FLAGGED": "The number's quality rating is low and its messaging limit may be lowered; "
    "improve message quality (relevant, expected messages) before sending more.",
    "RESTRICTED": "Meta restricted the number for policy violations; review the policy "
    "notices in WhatsApp Manager and request a review if it is an error.",
    "BANNED": "The number is banned from WhatsApp; request a review in WhatsApp Manager.",
    "RATE_LIMITED": "The number reached a rate limit; wait before sending again.",
    "MIGRATED": "The number moved to another WhatsApp Business Account; send through that one.",
    "DELETED": "The number was removed from the WhatsApp Business Account.",
}
_NUMBER_FALLBACK = "Only CONNECTED numbers can send; check the number in WhatsApp Manager."


@dataclass(frozen=True, slots=True)
class GateNode:
    """One node the gate checks: its report, what it is, and the catalog's status for it."""

    report: HealthReport
    kind: NodeKind
    catalog_status: str | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a node cannot send, or sends with limits; `error_code` is None for a bare notice."""

    entity_type: str
    entity_id: str
    error_code: str | None
    description: str | None
    solution: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer. `fetched_at` is the oldest report's; `stale` if any report is."""

    allow: bool
    status: Status
    reasons: tuple[Reason, ...]
    nodes: tuple[str, ...]
    fetched_at: datetime
    stale: bool

    def age_seconds(self, now: datetime) -> float:
        """How old the oldest report is at `now` (never negative)."""
        return max(0.0, (now - self.fetched_at).total_seconds())


def health_reasons(report: HealthReport, lang: Language = ENGLISH) -> list[Reason]:
    """The reasons in a report: errors and notices of every entity that is not AVAILABLE.

    Known codes and notices are in `lang` (English fills only what Meta left out).
    """
    reasons: list[Reason] = []
    for entity in report.entities:
        status = entity.status
        if status is Status.AVAILABLE:
            continue
        for error in entity.errors:
            filled = fill_error(error, lang)
            reasons.append(
                Reason(
                    entity.entity_type,
                    entity.id,
                    filled.code,
                    filled.error_description,
                    filled.possible_solution,
                )
            )
        for info in entity.additional_info:
            text = translate_info(info, lang)
            reasons.append(Reason(entity.entity_type, entity.id, None, text, None))
        if not entity.errors and not entity.additional_info:
            described = f"Meta reports this {entity.entity_type} as {entity.can_send_message}"
            reasons.append(Reason(entity.entity_type, entity.id, None, described + ".", None))
    return reasons


def _known(status: str | None) -> str | None:
    if status is None:
        return None
    upper = status.strip().upper()
    return None if upper in UNKNOWN_STATUSES else upper


def status_reason(node: GateNode) -> Reason | None:
    """The reason a node's catalog status refuses sending, or None when it does not."""
    status = _known(node.catalog_status)
    if status is None:
        return None
    node_id = node.report.node_id
    if node.kind is NodeKind.MESSAGE_TEMPLATE and status != SENDABLE_TEMPLATE_STATUS:
        return Reason(
            NodeKind.MESSAGE_TEMPLATE.value,
            node_id,
            TEMPLATE_NOT_APPROVED,
            f"The message template's status is {status}: only APPROVED templates can be sent.",
            _TEMPLATE_SOLUTIONS.get(status, _TEMPLATE_FALLBACK),
        )
    if node.kind is NodeKind.PHONE_NUMBER and status != SENDABLE_NUMBER_STATUS:
        return Reason(
            NodeKind.PHONE_NUMBER.value,
            node_id,
            PHONE_NUMBER_NOT_CONNECTED,
            f"The phone number's status is {status}: only CONNECTED numbers are let through.",
            _NUMBER_SOLUTIONS.get(status, _NUMBER_FALLBACK),
        )
    return None


def _unique(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


def gate_verdict(
    nodes: Sequence[GateNode], *, strict: bool = False, lang: Language = ENGLISH
) -> Verdict:
    """Whether to send, given the nodes checked (the phone number first, then the template).

    Meta's reasons are in `lang` where the catalog has them; the gate's own (the catalog
    statuses) are in English.
    """
    if not nodes:
        raise ValueError("the gate checks at least one node")
    status = overall_status(entity for node in nodes for entity in node.report.entities)
    refusals = [reason for node in nodes if (reason := status_reason(node)) is not None]
    health = [reason for node in nodes for reason in health_reasons(node.report, lang)]
    allow = (
        status is not Status.BLOCKED and not refusals and not (strict and status is Status.LIMITED)
    )
    return Verdict(
        allow=allow,
        status=status,
        reasons=_unique([*health, *refusals]),
        nodes=tuple(node.report.node_id for node in nodes),
        fetched_at=min(node.report.fetched_at for node in nodes),
        stale=any(node.report.source is ReportSource.STALE for node in nodes),
    )
