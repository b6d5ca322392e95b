"""Graph's `fields=` parameter, the errors of the Graph read API, and the shapes of kept fields.

`fields=a,b{x,y},c.limit(5)` names three fields; only plain names (no nested selection,
no modifier) can be answered from what wahealth keeps, the others go to Meta as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wahealth.core.errors import InvalidRequest, NodeNotFound
from wahealth.domain.model import NodeKind

MAX_FIELDS_CHARS = 4096
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)

# How Graph names each kind of node in its errors.
GRAPH_NODE_TYPES: dict[str, str] = {
    NodeKind.PHONE_NUMBER.value: "WhatsAppBusinessPhoneNumber",
    NodeKind.MESSAGE_TEMPLATE.value: "WhatsAppMessageTemplate",
    NodeKind.WABA.value: "WhatsAppBusinessAccount",
}
HEALTH_STATUS = "health_status"


class NonexistingField(InvalidRequest):
    """A field Meta does not have on this type of node (Graph's code 100)."""

    def __init__(self, field_name: str, node_type: str = "Node"):
        super().__init__(
            f"Tried accessing nonexisting field ({field_name[:100]}) on node type ({node_type})",
            parameter="fields",
        )
        self.field_name = field_name
        self.node_type = node_type


class MetaRefused(InvalidRequest):
    """Meta refused a read made on the caller's behalf; its own error, passed on unchanged."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 400,
        code: int = 100,
        subcode: int | None = None,
        error_type: str | None = None,
    ):
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.error_type = error_type or "OAuthException"


class AliasesNotFound(NodeNotFound):
    """Ids of a multi-id read that name nothing the caller may see (Graph's code 803)."""

    def __init__(self, ids: str):
        super().__init__(f"Some of the aliases you requested do not exist: {ids[:400]}")
        self.ids = ids


class BadBatch(InvalidRequest):
    """A Graph batch that cannot be run (missing, not a JSON array, too long, bad items)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of `fields=`: its name and the expression as written."""

    name: str
    expression: str

    @property
    def plain(self) -> bool:
        """No nested selection and no modifier: the bare field."""
        return self.expression == self.name


def parse_fields(raw: str | None, node_type: str = "Node") -> tuple[Field, ...] | None:
    """The fields asked for, in order, each once; None when `fields` is absent or empty.

    A name that cannot be a Graph field is `NonexistingField`; unbalanced braces or
    parentheses are an `InvalidRequest`.
    """
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_FIELDS_CHARS:
        raise InvalidRequest("Param fields is too long", parameter="fields")
    found: dict[str, Field] = {}
    for expression in _top_level(raw):
        expression = expression.strip()
        if not expression:
            continue
        name = re.split(r"[{.(]", expression, maxsplit=1)[0].strip()
        if not _NAME.fullmatch(name):
            raise NonexistingField(name or expression, node_type)
        found.setdefault(name, Field(name, expression))
    return tuple(found.values()) or None


def _top_level(raw: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    for index, ch in enumerate(raw):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
            if depth < 0:
                raise InvalidRequest("Syntax error in fields: unbalanced brackets")
        elif ch == "," and depth == 0:
            parts.append(raw[start:index])
            start = index + 1
    if depth != 0:
        raise InvalidRequest("Syntax error in fields: unbalanced brackets")
    parts.append(raw[start:])
    return parts


def kept_value(name: str, fields: Mapping[str, Any]) -> Any:
    """A field the catalog keeps, in Meta's shape; None when it is not kept (or not known)."""
    value = fields.get(name)
    if value is None:
        return None
    if name == "throughput" and isinstance(value, str):
        return {"level": value}
    if name == "quality_score" and isinstance(value, str):
        return {"score": value}
    return value


def without_links(value: Any, *, top: bool = True) -> Any:
    """A Meta answer without the `next`/`previous` links of its nested pages.

    Meta's links carry the access token they were fetched with (ours, not the caller's).
    The answer's own paging (`top`) is kept: an edge's page is relinked by the core.
    """
    if isinstance(value, list):
        return [without_links(item, top=False) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {key: without_links(item, top=False) for key, item in value.items()}
    paging = cleaned.get("paging")
    if not top and isinstance(paging, dict):
        cleaned["paging"] = {k: v for k, v in paging.items() if k not in ("next", "previous")}
    return cleaned
