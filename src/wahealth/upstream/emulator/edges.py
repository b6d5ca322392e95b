"""A WABA's `phone_numbers` and `message_templates` edges, with Graph's cursor paging.

Template filters take one value or several, as the SDKs send them (`A,B` from pywa, a
JSON array from facebook-business); `summary` adds the edge's counts.
"""

from __future__ import annotations

import base64
import binascii
import json
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
_TEMPLATE_FILTERS = ("name", "language", "status", "category", "quality_score")
MESSAGE_TEMPLATE_LIMIT = 6000
# What `summary=` can ask of each edge; `true` (facebook-business's Cursor) is total_count.
_SUMMARIES = {
    "phone_numbers": ("total_count",),
    "message_templates": (
        "total_count",
        "message_template_count",
        "message_template_limit",
        "are_translations_complete",
    ),
}


def encode_cursor(node_id: str) -> str:
    return base64.urlsafe_b64encode(node_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def filter_values(raw: str) -> list[str]:
    """`A,B` or `["A","B"]` -> ["A", "B"]; a single value is a list of one."""
    text = raw.strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return [str(value).strip() for value in decoded]
    return [value.strip() for value in text.split(",") if value.strip()]


def _template_matches(spec: TemplateSpec, params: Mapping[str, str]) -> bool:
    # Meta matches `name` by substring; the other filters are one of the values given.
    name = params.get("name")
    if name is not None and name.lower() not in spec.name.lower():
        return False
    for key in _TEMPLATE_FILTERS[1:]:
        raw = params.get(key)
        if raw is None:
            continue
        value = getattr(spec, key, None)
        if key == "quality_score":
            value = value if isinstance(value, str) else "UNKNOWN"
        if value not in filter_values(raw):
            return False
    return True


def _summary(
    state: EmulatorState, waba: WabaSpec, edge: str, raw: str, total: int
) -> dict[str, object] | GraphAnswer:
    asked = filter_values(raw)
    if [a.lower() for a in asked] in (["true"], ["1"]):
        asked = ["total_count"]
    values: dict[str, object] = {}
    for name in asked:
        if name not in _SUMMARIES[edge]:
            return envelopes.invalid_parameter(f"Unknown summary field: {name}")
        if name == "total_count":
            values[name] = total
        elif name == "message_template_count":
            values[name] = len(state.template_ids_by_waba[waba.id])
        elif name == "message_template_limit":
            values[name] = MESSAGE_TEMPLATE_LIMIT
        else:
            values[name] = True
    return values


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
    summary: dict[str, object] | None = None
    if (raw_summary := params.get("summary")) is not None:
        found = _summary(state, waba, edge, raw_summary, len(ids))
        if isinstance(found, GraphAnswer):
            return found
        summary = found
    page = ids[start:end]
    data = []
    for node_id in page:
        node: Node | None = state.node(node_id)
        assert node is not None
        data.append(render_node(state, node, fields))
    if not page:
        empty: dict[str, object] = {"data": []}
        if summary is not None:
            empty["summary"] = summary
        return GraphAnswer(200, empty)
    first, last = encode_cursor(page[0]), encode_cursor(page[-1])
    paging: dict[str, object] = {"cursors": {"before": first, "after": last}}
    query = {**params, "limit": str(limit)}
    if end < len(ids):
        paging["next"] = _link(self_url, query, after=last)
    if start > 0:
        paging["previous"] = _link(self_url, query, before=first)
    body: dict[str, object] = {"data": data, "paging": paging}
    if summary is not None:
        body["summary"] = summary
    return GraphAnswer(200, body)
