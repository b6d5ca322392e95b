"""The emulator's mutable state: current healths, call counts, pending faults, budgets.

One `EmulatorState` belongs to one emulator app (`app.state.emulator`); there are
no module globals, so two emulators in one process never see each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wahealth.domain import Entity, EntityType, HealthError
from wahealth.upstream.emulator.budget import CallBudget
from wahealth.upstream.emulator.calls import CallStats
from wahealth.upstream.emulator.scenario import (
    AppSpec,
    BusinessSpec,
    HealthSpec,
    PhoneNumberFields,
    PhoneNumberSpec,
    Scenario,
    TemplateFields,
    TemplateSpec,
    WabaSpec,
)
from wahealth.upstream.emulator.webhooks import WebhookEmitter

NodeSpec = BusinessSpec | AppSpec | WabaSpec | PhoneNumberSpec | TemplateSpec
_S = TypeVar("_S", BusinessSpec, AppSpec, WabaSpec, PhoneNumberSpec, TemplateSpec)
NodeType = Literal["business", "app", "waba", "phone_number", "template"]

_ENTITY_TYPES: dict[NodeType, EntityType] = {
    "business": EntityType.BUSINESS,
    "app": EntityType.APP,
    "waba": EntityType.WABA,
    "phone_number": EntityType.PHONE_NUMBER,
    "template": EntityType.MESSAGE_TEMPLATE,
}


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the scenario and what kind it is."""

    type: NodeType
    spec: NodeSpec

    @property
    def entity_type(self) -> EntityType:
        return _ENTITY_TYPES[self.type]


@dataclass(frozen=True, slots=True)
class HealthChange:
    """One entity's health was changed through the admin API.

    `waba_ids` are the WABAs the entity belongs to or contains (what a Meta
    webhook would be addressed to); `affected_node_ids` are the phone numbers,
    templates and WABAs whose health answer includes the entity.
    """

    entity_type: EntityType
    entity_id: str
    before: HealthSpec
    after: HealthSpec
    waba_ids: tuple[str, ...]
    affected_node_ids: tuple[str, ...]


HealthHook = Callable[[HealthChange], Awaitable[None] | None]

# The fields the admin API may change, per kind of node (ids, WABA and health it may not).
CHANGEABLE_FIELDS: dict[NodeType, frozenset[str]] = {
    "phone_number": frozenset(PhoneNumberFields.model_fields),
    "template": frozenset(TemplateFields.model_fields),
}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """Fields of a phone number or template changed through the admin API.

    `before` and `after` hold only the fields whose value changed; `node` is the node
    as it is now.
    """

    node: Node
    before: dict[str, Any]
    after: dict[str, Any]


FieldHook = Callable[[FieldChange], Awaitable[None] | None]


class UnchangeableField(ValueError):
    """A field the admin API cannot change on this kind of node."""


class Fault(BaseModel):
    """What to do to the next `count` Graph requests (see docs/emulator.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | None = Field(default=None, ge=200, le=599)
    code: int | None = None
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    count: int = Field(default=1, ge=1)
    body: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    estimated_time_to_regain_access: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _does_something(self) -> Fault:
        if self.status is None and self.code is None and self.body is None and not self.latency_ms:
            raise ValueError("a fault needs a status, a code, a body or a latency")
        return self


class FaultQueue:
    """Faults waiting for the next Graph requests, first in first out."""

    def __init__(self) -> None:
        self._pending: list[list[Any]] = []  # [fault, remaining]

    def add(self, fault: Fault) -> None:
        self._pending.append([fault, fault.count])

    def take(self) -> Fault | None:
        """The fault for this request, if any, using up one of its count."""
        if not self._pending:
            return None
        entry = self._pending[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._pending.pop(0)
        fault: Fault = entry[0]
        return fault

    def pending(self) -> list[dict[str, Any]]:
        return [
            {**fault.model_dump(mode="json", exclude_none=True), "remaining": remaining}
            for fault, remaining in self._pending
        ]

    def clear(self) -> None:
        self._pending.clear()


def _status_after(template: TemplateSpec, health: HealthSpec) -> TemplateSpec:
    """A template's status moves with its health as Meta's does: one that can send is
    APPROVED; an APPROVED one that is BLOCKED is PAUSED; otherwise it stays."""
    status = template.status
    if health.can_send_message == "AVAILABLE":
        status = "APPROVED"
    elif health.can_send_message == "BLOCKED" and status == "APPROVED":
        status = "PAUSED"
    return template if status == template.status else template.model_copy(update={"status": status})


class UnknownNode(LookupError):
    """No node with that id in the scenario."""


class EmulatorState:
    """What one emulator knows and has seen."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float]) -> None:
        self.scenario = scenario
        self.clock = clock
        self.tokens = frozenset(scenario.every_token)
        self.token_specs = {spec.token: spec for spec in scenario.access_tokens}
        # Tokens made to fail through the admin API: "revoked", "expired" or "permission".
        self.token_trouble: dict[str, str] = {}
        self.subscribed_apps: dict[str, list[str]] = {}
        self.calls = CallStats(clock)
        self.faults = FaultQueue()
        self.budget = CallBudget(scenario.rate_limit, clock)
        self.on_health_change: list[HealthHook] = []
        self.on_field_change: list[FieldHook] = []
        self.webhooks = WebhookEmitter(self)  # signed Meta webhooks (see webhooks.py)
        self.on_field_change.append(self.webhooks.on_field_change)
        self._nodes: dict[str, Node] = {}
        self._health: dict[str, HealthSpec] = {}
        # Each entity of the scenario as an answer shows it, while its health stays the same
        # object (a change replaces it): a WABA's, business's and app's are in every answer.
        self._entities: dict[tuple[EntityType, str], tuple[HealthSpec, Entity]] = {}
        self.phone_ids_by_waba: dict[str, list[str]] = {w.id: [] for w in scenario.wabas}
        self.template_ids_by_waba: dict[str, list[str]] = {w.id: [] for w in scenario.wabas}
        groups: tuple[tuple[NodeType, tuple[NodeSpec, ...]], ...] = (
            ("business", scenario.businesses),
            ("app", scenario.apps),
            ("waba", scenario.wabas),
            ("phone_number", scenario.phone_numbers),
            ("template", scenario.templates),
        )
        for node_type, specs in groups:
            for spec in specs:
                self._nodes[spec.id] = Node(node_type, spec)
                self._health[spec.id] = spec.health
        # Where each number/template sits in its WABA's list, for O(1) paging cursors.
        self.edge_position: dict[str, int] = {}
        for phone in scenario.phone_numbers:
            self.edge_position[phone.id] = len(self.phone_ids_by_waba[phone.waba])
            self.phone_ids_by_waba[phone.waba].append(phone.id)
        for template in scenario.templates:
            self.edge_position[template.id] = len(self.template_ids_by_waba[template.waba])
            self.template_ids_by_waba[template.waba].append(template.id)

    def node(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def health(self, node_id: str) -> HealthSpec:
        return self._health[node_id]

    def waba_of(self, node: Node) -> WabaSpec | None:
        """The WABA a phone number, template or WABA belongs to (None for businesses and apps)."""
        spec = node.spec
        if isinstance(spec, WabaSpec):
            return spec
        if isinstance(spec, PhoneNumberSpec | TemplateSpec):
            waba = self._nodes[spec.waba].spec
            assert isinstance(waba, WabaSpec)
            return waba
        return None

    def health_entities(self, node: Node) -> list[Entity] | None:
        """The entities of a health_status answer for the node, in Meta's order, if it has one."""
        chain = self._chain(node)
        if chain is None:
            return None
        return [self._entity(entity_type, entity_id) for entity_type, entity_id in chain]

    def _chain(self, node: Node) -> list[tuple[EntityType, str]] | None:
        waba = self.waba_of(node)
        if waba is None:
            return None
        chain: list[tuple[EntityType, str]] = []
        if node.type != "waba":
            chain.append((node.entity_type, node.spec.id))
        chain += [
            (EntityType.WABA, waba.id),
            (EntityType.BUSINESS, waba.business),
            (EntityType.APP, waba.app),
        ]
        return chain

    def _entity(self, entity_type: EntityType, entity_id: str) -> Entity:
        health = self._health[entity_id]
        known = self._entities.get((entity_type, entity_id))
        if known is not None and known[0] is health:
            return known[1]
        entity = Entity(
            entity_type=entity_type.value,
            id=entity_id,
            can_send_message=health.can_send_message,
            can_receive_call_sip=health.can_receive_call_sip,
            errors=tuple(
                HealthError(e.error_code, e.error_description, e.possible_solution)
                for e in health.errors
            ),
            additional_info=health.additional_info,
        )
        self._entities[entity_type, entity_id] = (health, entity)
        return entity

    async def set_health(self, node_id: str, health: HealthSpec) -> HealthChange:
        """Change an entity's own health and tell every `on_health_change` hook, in order."""
        node = self._nodes.get(node_id)
        if node is None:
            raise UnknownNode(node_id)
        before = self._health[node_id]
        self._health[node_id] = health
        if isinstance(node.spec, TemplateSpec):
            self._nodes[node_id] = node = Node(node.type, _status_after(node.spec, health))
        waba_ids, affected = self._reach(node)
        change = HealthChange(node.entity_type, node_id, before, health, waba_ids, affected)
        for hook in list(self.on_health_change):
            result = hook(change)
            if inspect.isawaitable(result):
                await result
        return change

    async def set_fields(self, node_id: str, values: dict[str, Any]) -> FieldChange:
        """Change a phone number's or template's fields (validated as a scenario's are) and
        tell every `on_field_change` hook, in order, if any value changed.

        Raises UnknownNode, UnchangeableField, or pydantic's ValidationError for a bad value.
        """
        node = self._nodes.get(node_id)
        if node is None:
            raise UnknownNode(node_id)
        allowed = CHANGEABLE_FIELDS.get(node.type, frozenset())
        refused = sorted(set(values) - allowed)
        if refused or not values:
            raise UnchangeableField(
                f"a {node.type} has no changeable field {', '.join(refused)}"
                if refused
                else "no field to change"
            )
        spec = node.spec
        updated = type(spec).model_validate({**spec.model_dump(), **values})
        before = {k: getattr(spec, k) for k in values if getattr(spec, k) != getattr(updated, k)}
        after = {k: getattr(updated, k) for k in before}
        node = Node(node.type, updated)
        self._nodes[node_id] = node
        change = FieldChange(node, before, after)
        if before:
            for hook in list(self.on_field_change):
                result = hook(change)
                if inspect.isawaitable(result):
                    await result
        return change

    def _reach(self, node: Node) -> tuple[tuple[str, ...], tuple[str, ...]]:
        spec = node.spec
        if isinstance(spec, PhoneNumberSpec | TemplateSpec):
            return (spec.waba,), (spec.id,)
        if isinstance(spec, WabaSpec):
            wabas = [spec.id]
        elif isinstance(spec, BusinessSpec):
            wabas = [w.id for w in self.scenario.wabas if w.business == spec.id]
        else:
            wabas = [w.id for w in self.scenario.wabas if w.app == spec.id]
        affected: list[str] = []
        for waba_id in wabas:
            affected.append(waba_id)
            affected += self.phone_ids_by_waba[waba_id]
            affected += self.template_ids_by_waba[waba_id]
        return tuple(wabas), tuple(affected)

    def current_scenario(self) -> Scenario:
        """The scenario as it stands now, with every health change applied."""

        def updated(specs: tuple[_S, ...]) -> tuple[_S, ...]:
            # Each node's current spec (fields changed through the admin API) and health.
            return tuple(
                cast(_S, self._nodes[s.id].spec).model_copy(update={"health": self._health[s.id]})
                for s in specs
            )

        s = self.scenario
        return s.model_copy(
            update={
                "businesses": updated(s.businesses),
                "apps": updated(s.apps),
                "wabas": updated(s.wabas),
                "phone_numbers": updated(s.phone_numbers),
                "templates": updated(s.templates),
            }
        )
