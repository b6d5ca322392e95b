"""The Graph read API: nodes, edges, `?ids=` and batches, in Meta's shapes and errors.

Everything under `/v<major>.<minor>/` that is not the plain `fields=health_status` of one
node comes here: parse the path and the query, one core call, render. The same
`answer` serves a request and one item of a batch (`batch.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.errors import CoreError, InvalidRequest
from wahealth.core.graph_read import EdgeRead, GraphReads, parse_ids
from wahealth.core.ports import Principal
from wahealth.dialects.graph.errors import JSON, GraphFailure, render, unknown_path, unsupported

if TYPE_CHECKING:
    from wahealth.dialects.graph.batch import BatchEndpoint

VERSION = re.compile(r"v[0-9]+\.[0-9]+", re.ASCII)
_READS = ("GET", "HEAD")
MAX_QUERY_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """A Graph read as parsed from a URL: version, path segments and query parameters."""

    version: str
    segments: tuple[str, ...]
    params: dict[str, str]

    @property
    def node_id(self) -> str:
        return self.segments[0] if self.segments else ""


def query_params(raw: str) -> dict[str, str]:
    """The query's parameters, the first value of each."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw[:MAX_QUERY_CHARS], keep_blank_values=True):
        params.setdefault(name, value)
    return params


def split_path(path: str) -> tuple[str, ...] | None:
    """`123/phone_numbers/` -> ("123", "phone_numbers"); None when a segment is empty."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    if any(not segment for segment in segments):
        return None
    return tuple(segments)


def bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and value.strip():
        return value.strip()
    return None


def nodes_named(request: GraphRequest) -> int:
    """How many nodes a read names (what a bulk call is charged for)."""
    if not request.segments and "ids" in request.params:
        try:
            return len(parse_ids(request.params["ids"]))
        except InvalidRequest:
            return 1
    return 1


async def answer(
    reads: GraphReads,
    principal: Principal,
    request: GraphRequest,
    *,
    base_url: str,
    link_params: Mapping[str, str],
) -> Any:
    """The JSON answer of one admitted Graph read; a `CoreError` otherwise."""
    params = request.params
    if not request.segments:
        return await reads.many(principal, parse_ids(params.get("ids", "")), params.get("fields"))
    if len(request.segments) == 1:
        return await reads.node(principal, request.node_id, params.get("fields"))
    waba_id, edge = request.segments
    read = EdgeRead(
        waba_id=waba_id,
        edge=edge,
        params={k: v for k, v in params.items() if k != "access_token"},
        link_base=f"{base_url}/{request.version}/{waba_id}/{edge}",
        link_params=link_params,
    )
    return await reads.edge(principal, read)


def check_shape(request: GraphRequest) -> GraphFailure | None:
    """Meta's error for a path no read has: too deep, or the root without `ids`."""
    if len(request.segments) > 2:
        return unknown_path("/" + "/".join(request.segments[2:]))
    if not request.segments and "ids" not in request.params:
        return unknown_path(f"/{request.version}/")
    return None


def ok(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


class GraphReadEndpoint:
    """`/v{N}.{M}/…` reads other than the plain health_status of one node, and batches."""

    def __init__(self, reads: GraphReads, batches: BatchEndpoint | None = None) -> None:
        self._reads = reads
        self._batches = batches  # POST to the root

    async def handle(self, request: Request) -> Response:
        version, _, path = request.path_params["after_v"].partition("/")
        version = "v" + version
        if not VERSION.fullmatch(version):
            return unknown_path(f"/{version[:100]}").response()
        segments = split_path(path)
        if segments is None:
            return unknown_path(f"/{path[:100]}").response()
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        params = query_params(raw_query)
        authorization = request.headers.get("authorization", "")
        if request.method == "POST" and not segments and self._batches is not None:
            return await self._batches.handle(request, version, params)
        if request.method not in _READS:
            return unsupported(segments[0] if segments else "", request.method).response()
        parsed = GraphRequest(version, segments, params)
        problem = check_shape(parsed)
        if problem is not None:
            return problem.response()
        token = bearer(authorization) or params.get("access_token")
        try:
            principal = await self._reads.principal(token)
            await self._reads.admit(principal, nodes_named(parsed))
            body = await answer(
                self._reads,
                principal,
                parsed,
                base_url=str(request.base_url).rstrip("/"),
                link_params=_link_params(params),
            )
        except CoreError as exc:
            return render(exc, parsed.node_id).response()
        return ok(body)


def _link_params(params: Mapping[str, str]) -> dict[str, str]:
    # Meta's links carry the token the caller put in the query; a header token stays there.
    token = params.get("access_token")
    return {"access_token": token} if token else {}
