"""One Graph call, answered from the state: auth, budget, nodes and edges.

Plain requests and batch sub-requests both come through `answer_call`, so
they are counted, authorised and throttled the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wahealth.upstream.emulator import envelopes
from wahealth.upstream.emulator.accounts import answer_account_call, token_trouble, visible
from wahealth.upstream.emulator.budget import Throttle
from wahealth.upstream.emulator.edges import EDGES, list_edge
from wahealth.upstream.emulator.envelopes import GraphAnswer
from wahealth.upstream.emulator.fields import (
    GRAPH_NODE_TYPES,
    check_fields,
    parse_fields,
    render_node,
)
from wahealth.upstream.emulator.scenario import BusinessSpec, WabaSpec
from wahealth.upstream.emulator.state import EmulatorState, Node

_VERSION = re.compile(r"^v\d+\.\d+$")


@dataclass(frozen=True, slots=True)
class GraphCall:
    """A Graph request as the emulator sees it: `path` as sent, `base_url` for paging links."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    base_url: str = "https://graph.facebook.com"


@dataclass(frozen=True, slots=True)
class GraphPath:
    """`/v21.0/123/phone_numbers` -> version "v21.0", segments ["123", "phone_numbers"]."""

    version: str | None
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> GraphPath:
        parts = [p for p in path.split("/") if p]
        if parts and _VERSION.match(parts[0]):
            return cls(parts[0], tuple(parts[1:]))
        return cls(None, tuple(parts))

    @property
    def node_id(self) -> str | None:
        return self.segments[0] if self.segments else None

    @property
    def plain(self) -> str:
        """The path without its version: how calls are counted."""
        return "/" + "/".join(self.segments)


def answer_call(state: EmulatorState, call: GraphCall) -> GraphAnswer:
    """Count, authorise, throttle and answer one Graph call."""
    path = GraphPath.parse(call.path)
    state.calls.record(path.plain, path.node_id)
    if call.token is None or call.token not in state.tokens:
        return envelopes.invalid_token()
    if path.node_id is None:
        return envelopes.unknown_path(call.path)
    trouble = state.token_trouble.get(call.token)
    if trouble is not None:
        return token_trouble(trouble)
    account = answer_account_call(state, call.method.upper(), path.segments, call)
    if account is not None:
        return account
    node = state.node(path.node_id)
    if node is not None and not visible(state, call.token, node):
        return envelopes.unknown_node(path.node_id, call.method)
    waba = state.waba_of(node) if node is not None else None
    throttle = state.budget.admit(waba.id if waba is not None else None)
    if throttle is not None:
        return _throttled(state, throttle, node, waba)
    answer = _route(state, call, path, node)
    answer.headers.update(_usage(state, waba))
    return answer


def _route(
    state: EmulatorState, call: GraphCall, path: GraphPath, node: Node | None
) -> GraphAnswer:
    node_id = path.segments[0]
    if node is None or call.method.upper() != "GET":
        return envelopes.unknown_node(node_id, call.method)
    if len(path.segments) > 2:
        return envelopes.unknown_path("/" + "/".join(path.segments[1:]))
    if len(path.segments) == 2:
        edge = path.segments[1]
        if node.type != "waba" or edge not in EDGES:
            return envelopes.nonexisting_field(edge, GRAPH_NODE_TYPES[node.type])
        assert isinstance(node.spec, WabaSpec)
        return list_edge(state, node.spec, edge, call.params, _self_url(call))
    fields = parse_fields(call.params.get("fields"))
    problem = check_fields(node.type, fields)
    if problem is not None:
        return problem
    return GraphAnswer(200, render_node(state, node, fields))


def _self_url(call: GraphCall) -> str:
    return call.base_url.rstrip("/") + "/" + call.path.lstrip("/")


def _throttled(
    state: EmulatorState, throttle: Throttle, node: Node | None, waba: WabaSpec | None
) -> GraphAnswer:
    if throttle.scope == "waba":
        assert waba is not None
        buc_id: str | None = waba.id
    elif waba is not None:
        buc_id = waba.business
    elif node is not None and isinstance(node.spec, BusinessSpec):
        buc_id = node.spec.id
    else:
        buc_id = None
    return envelopes.rate_limited(
        throttle.code, buc_id=buc_id, regain_minutes=throttle.regain_minutes
    )


def _usage(state: EmulatorState, waba: WabaSpec | None) -> dict[str, str]:
    waba_percent = state.budget.waba_usage_percent(waba.id) if waba is not None else None
    return envelopes.usage_headers(
        app_percent=state.budget.app_usage_percent(),
        buc_id=waba.id if waba is not None else None,
        buc_percent=waba_percent,
    )
