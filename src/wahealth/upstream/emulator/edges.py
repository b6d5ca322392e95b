"""A WABA's `phone_numbers` and `message_templates` edges, with Graph's cursor paging."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import urlencode

from wahealth.upstream.emulator import envelopes
from wahealth.upstream.emulator.envelopes import GraphAnswer
from wahealth.upstream.emulator.fields import check_fields, parse_fields, render_node
from wahealth.upstream.emulator.scenario import TemplateSpec, WabaSpec
from wahealth.upstream.emulator.state import EmulatorState, Node, NodeType

EDGES: dict[str, NodeType] = {"phone_numbers": "phone_number", "message_templates": "template"}
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
_TEMPLATE_FILTERS = ("name", "language", "status", "category")


def encode_cursor(node_id: str) -> str:
    return base64.urlsafe_b64encode(node_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _template_matches(spec: TemplateSpec, params: Mapping[str, str]) -> bool:
    # Meta matches `name` by substring; the other filters are exact.
    name = params.get("name")
    if name is not None and name.lower() not in spec.name.lower():
        return False
    return all(
        params.get(key) is None or params.get(key) == getattr(spec, key)
        for key in _TEMPLATE_FILTERS[1:]
    )


def _edge_ids(
    state: EmulatorState, waba: WabaSpec, edge: str, params: Mapping[str, str]
) -> tuple[list[str], bool]:
    """The ids on the edge, and whether a filter narrowed them (positions then differ)."""
    if edge == "phone_numbers":
        return state.phone_ids_by_waba[waba.id], False
    ids = state.template_ids_by_waba[waba.id]
    if not any(params.get(key) is not None for key in _TEMPLATE_FILTERS):
        return ids, False
    matching = []
    for template_id in ids:
        node = state.node(template_id)
        assert node is not None
        assert isinstance(node.spec, TemplateSpec)
        if _template_matches(node.spec, params):
            matching.append(template_id)
    return matching, True


def _parse_limit(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        return None
    return min(limit, MAX_LIMIT) if limit > 0 else None


def _link(self_url: str, params: Mapping[str, str], **cursor: str) -> str:
    query = {k: v for k, v in params.items() if k not in {"after", "before"}}
    query.update(cursor)
    return f"{self_url.split('?', 1)[0]}?{urlencode(query)}"


def list_edge(
    state: EmulatorState,
    waba: WabaSpec,
    edge: str,
    params: Mapping[str, str],
    self_url: str,
) -> GraphAnswer:
    """One page of the edge: `limit` items after the `after` (or before the `before`) cursor."""
    item_type = EDGES[edge]
    fields = parse_fields(params.get("fields"))
    problem = check_fields(item_type, fields)
    if problem is not None:
        return problem
    limit = _parse_limit(params.get("limit"))
    if limit is None:
        return envelopes.invalid_parameter("Param limit must be a positive integer")
    ids, filtered = _edge_ids(state, waba, edge, params)

    def position(cursor: str) -> int | None:
        node_id = decode_cursor(cursor)
        if node_id is None:
            return None
        if not filtered:
            pos = state.edge_position.get(node_id)
            return pos if pos is not None and pos < len(ids) and ids[pos] == node_id else None
        return ids.index(node_id) if node_id in ids else None

    start, end = 0, min(limit, len(ids))
    if (after := params.get("after")) is not None:
        pos = position(after)
        if pos is None:
            return envelopes.invalid_parameter("Invalid cursor: after")
        start, end = pos + 1, min(pos + 1 + limit, len(ids))
    elif (before := params.get("before")) is not None:
        pos = position(before)
        if pos is None:
            return envelopes.invalid_parameter("Invalid cursor: before")
        start, end = max(0, pos - limit), pos
    page = ids[start:end]
    data = []
    for node_id in page:
        node: Node | None = state.node(node_id)
        assert node is not None
        data.append(render_node(state, node, fields))
    if not page:
        return GraphAnswer(200, {"data": []})
    first, last = encode_cursor(page[0]), encode_cursor(page[-1])
    paging: dict[str, object] = {"cursors": {"before": first, "after": last}}
    query = {**params, "limit": str(limit)}
    if end < len(ids):
        paging["next"] = _link(self_url, query, after=last)
    if start > 0:
        paging["previous"] = _link(self_url, query, before=first)
    return GraphAnswer(200, {"data": data, "paging": paging})
