"""A WABA's `phone_numbers` and `message_templates` pages served from the catalog.

Pages follow Graph's cursor paging (`paging.cursors.before/after`, `next`, `previous`)
with cursors of our own (`wh.` + the item's id, base64url), which Meta's never look like;
a page asks the catalog only what it keeps, else the core reads the page from Meta.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from wahealth.core.errors import InvalidRequest
from wahealth.core.graph_fields import Field, kept_value
from wahealth.core.ports import CatalogNode

EDGES = ("phone_numbers", "message_templates")
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
_CURSOR_PREFIX = "wh."
# What a caller may pass on an edge read; nothing else reaches Meta (so never `method=`).
FORWARDED_PARAMS = frozenset(
    {
        "fields",
        "limit",
        "after",
        "before",
        "summary",
        "name",
        "language",
        "status",
        "category",
        "content",
        "name_or_content",
        "quality_score",
        "since",
        "until",
        "filtering",
        "sort",
        "locale",
    }
)
# The parameters a catalog page can honour (the rest need Meta).
_CATALOG_PARAMS = frozenset({"fields", "limit", "after", "before", "summary"})
_TEMPLATE_FILTERS = ("name", "language", "status", "category")
_CATALOG_SUMMARIES = frozenset({"true", "1", "total_count"})

LinkBuilder = Callable[[str, str], str]  # (cursor parameter, cursor) -> URL


def encode_cursor(node_id: str) -> str:
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(node_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    """The item id of one of our cursors; None for any other cursor (Meta's)."""
    if not cursor.startswith(_CURSOR_PREFIX):
        return None
    raw = cursor[len(_CURSOR_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def is_our_cursor(params: Mapping[str, str]) -> bool:
    return any(
        decode_cursor(params[key]) is not None for key in ("after", "before") if key in params
    )


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise InvalidRequest("Param limit must be a positive integer", parameter="limit")
    return min(limit, MAX_LIMIT)


def filter_values(raw: str) -> list[str]:
    """A list filter as SDKs send it: `A,B` (pywa) or a JSON array (facebook-business)."""
    text = raw.strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, list) and all(isinstance(v, str) for v in decoded):
            return [v.strip() for v in decoded]
        raise InvalidRequest("Param filter must be an array of strings")
    return [value.strip() for value in text.split(",") if value.strip()]


def catalog_can_serve(
    edge: str,
    items: Sequence[CatalogNode],
    fields: Sequence[Field] | None,
    params: Mapping[str, str],
) -> bool:
    """Whether the catalog keeps everything this page asks for, for every item of the edge."""
    if fields is None or not all(f.plain for f in fields):
        return False
    allowed = _CATALOG_PARAMS | (set(_TEMPLATE_FILTERS) if edge == "message_templates" else set())
    if any(key not in allowed for key in params):
        return False
    summary = params.get("summary")
    if summary is not None and summary.strip().lower() not in _CATALOG_SUMMARIES:
        return False
    for key in ("after", "before"):
        if key in params and decode_cursor(params[key]) is None:
            return False  # Meta's cursor: the page it points into is Meta's
    names = [f.name for f in fields]
    return all(kept_value(name, item.fields) is not None for item in items for name in names)


def _matches(item: CatalogNode, params: Mapping[str, str]) -> bool:
    name = params.get("name")
    if name is not None and name.strip().lower() not in str(item.fields.get("name", "")).lower():
        return False  # Meta matches `name` as a part of the name
    for key in _TEMPLATE_FILTERS[1:]:
        raw = params.get(key)
        if raw is not None and item.fields.get(key) not in filter_values(raw):
            return False
    return True


def catalog_page(
    edge: str,
    items: Sequence[CatalogNode],
    fields: Sequence[Field],
    params: Mapping[str, str],
    link: LinkBuilder,
) -> dict[str, Any]:
    """One page of the edge from the catalog (checked beforehand with `catalog_can_serve`)."""
    if edge == "message_templates":
        items = [item for item in items if _matches(item, params)]
    limit = parse_limit(params.get("limit"))
    ids = [item.node_id for item in items]

    def position(key: str) -> int:
        node_id = decode_cursor(params[key])
        if node_id is None or node_id not in ids:
            raise InvalidRequest(f"Invalid cursor: {key}", parameter=key)
        return ids.index(node_id)

    start, end = 0, min(limit, len(items))
    if "after" in params:
        start = position("after") + 1
        end = min(start + limit, len(items))
    elif "before" in params:
        end = position("before")
        start = max(0, end - limit)
    page = items[start:end]
    answer: dict[str, Any] = {"data": [_render(item, fields) for item in page]}
    if page:
        first, last = encode_cursor(page[0].node_id), encode_cursor(page[-1].node_id)
        paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
        if end < len(items):
            paging["next"] = link("after", last)
        if start > 0:
            paging["previous"] = link("before", first)
        answer["paging"] = paging
    if "summary" in params:
        answer["summary"] = {"total_count": len(items)}
    return answer


def _render(item: CatalogNode, fields: Sequence[Field]) -> dict[str, Any]:
    out = {f.name: kept_value(f.name, item.fields) for f in fields}
    out.setdefault("id", item.node_id)
    return out


def relinked(payload: dict[str, Any], link: LinkBuilder) -> dict[str, Any]:
    """Meta's page with its links pointing here (Meta's carry our token, never the caller's)."""
    paging = payload.get("paging")
    if not isinstance(paging, dict):
        return payload
    cursors = paging.get("cursors")
    ours: dict[str, Any] = {}
    if isinstance(cursors, dict):
        ours["cursors"] = cursors
        after, before = cursors.get("after"), cursors.get("before")
        if paging.get("next") and isinstance(after, str):
            ours["next"] = link("after", after)
        if paging.get("previous") and isinstance(before, str):
            ours["previous"] = link("before", before)
    return {**payload, "paging": ours}


def link_builder(base: str, params: Mapping[str, str]) -> LinkBuilder:
    """Links to another page of the same read: the caller's parameters and a new cursor."""
    kept = {k: v for k, v in params.items() if k not in ("after", "before")}

    def link(key: str, cursor: str) -> str:
        return f"{base}?{urlencode({**kept, key: cursor})}"

    return link
