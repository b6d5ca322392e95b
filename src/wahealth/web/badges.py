"""Shields-style SVG badges of nodes' status: `GET /badge/{node_id}.svg`.

Public by opt-in: only nodes of spaces with `badges = true` have one; any other id (of
a space that did not opt in, or of no node at all) is the same 404, so a badge reveals
nothing about nodes that are not shown. The label is "whatsapp", or the node's name with
`?label=name`; the message is its status (AVAILABLE, LIMITED, BLOCKED or unknown).
"""

from __future__ import annotations

import functools
from typing import Protocol

import anybadge
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from wahealth.domain.model import Status
from wahealth.domain.public import PublicNode

SVG = "image/svg+xml"
# Short: README renderers and proxies cache badges; a status change shows within a minute.
CACHE_CONTROL = "max-age=60, public"
LABEL = "whatsapp"
MAX_LABEL = 64
MAX_NODE_ID = 64  # Meta's ids are 15 to 17 digits
# shields.io's colours for good, warning, bad and inactive.
COLOURS = {
    Status.AVAILABLE: "#4c1",
    Status.LIMITED: "#dfb317",
    Status.BLOCKED: "#e05d44",
    None: "#9f9f9f",
}


class BadgeNodes(Protocol):
    """Nodes of spaces that show badges (the public views repository)."""

    async def badge_node(self, node_id: str) -> PublicNode | None: ...


@functools.lru_cache(maxsize=1024)
def render_badge(label: str, message: str, colour: str) -> str:
    """The badge's SVG (the same text for the same badge: rendered once)."""
    badge = anybadge.Badge(label, message, default_color=colour)
    svg: str = badge.badge_svg_text
    return svg


def badge_for(node: PublicNode, *, named: bool) -> str:
    label = node.name[:MAX_LABEL] if named else LABEL
    message = node.status.value if node.status is not None else "unknown"
    return render_badge(label, message, COLOURS[node.status])


def badge_routes(nodes: BadgeNodes) -> list[BaseRoute]:
    async def badge(request: Request) -> Response:
        node_id: str = request.path_params["node_id"]
        node = await nodes.badge_node(node_id) if len(node_id) <= MAX_NODE_ID else None
        if node is None:
            return Response(
                "no badge here\n",
                status_code=404,
                media_type="text/plain",
                headers={"Cache-Control": CACHE_CONTROL},
            )
        named = request.query_params.get("label") == "name"
        return Response(
            badge_for(node, named=named),
            media_type=SVG,
            headers={"Cache-Control": CACHE_CONTROL},
        )

    return [Route("/badge/{node_id}.svg", badge, methods=["GET", "HEAD"])]
