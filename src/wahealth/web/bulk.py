"""`POST /api/v1/health`: the health of up to 500 nodes of one space in one call.

    POST /api/v1/health
    Authorization: Bearer <Graph token of the space's account>
    {"space": "demo-space",
     "nodes": [{"id": "106540352242922"}, {"phone_number": "8613800000002"},
               {"template": "order_update", "language": "en"}]}

    {"results": [
      {"node": {"id": "106540352242922"}, "id": "106540352242922", "kind": "PHONE_NUMBER",
       "status": "AVAILABLE", "reasons": [], "fetched_at": "…", "age_seconds": 0.2,
       "stale": false},
      …,
      {"node": {"phone_number": "8613800000077"},
       "error": {"status": 404, "message": "phone number 8613800000077 is not in space …"}}]}

One result per node, in the order given: its report (reasons as the gate gives them), or
an error of its own (404 not in the space or unknown at Meta; 503 Meta down with nothing
cached, with `retry_after` in seconds). The call costs min(qps, ceil(nodes / 100)) requests
of the account's limit (see `wahealth.core.bulk`). Errors of the call itself are those of
the JSON API: 400 (malformed JSON, too many nodes, a bad node entry, naming it), 401, 404
(unknown space), 413 (body over 512 KiB), 429 and 503 with `Retry-After`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.core.bulk import (
    MAX_BULK_NODES,
    BulkHealth,
    BulkNode,
    BulkQuery,
    BulkResult,
    NodeFailure,
)
from wahealth.core.errors import CoreError, InvalidRequest, RequestTooLarge, UpstreamUnavailable
from wahealth.core.queries import ByNodeId, ByPhoneNumber, ByTemplate
from wahealth.domain import ReportSource
from wahealth.domain.gate import health_reasons
from wahealth.domain.languages import ENGLISH, Language, negotiate
from wahealth.domain.records import iso_utc
from wahealth.http_body import BodyTooLarge, NotJson, loads_bounded, read_bounded
from wahealth.httputil import header, retry_after_header
from wahealth.web.gate import (
    bearer,
    check_node_id,
    check_phone_number,
    check_space,
    check_template,
    json_response,
    reason_json,
)
from wahealth.web.history import ERRORS

BULK_PATH = "/api/v1/health"
MAX_BODY_BYTES = 512 * 1024
_ENTRY = 'give one of {"id": …}, {"phone_number": …} or {"template": …, "language": …}'


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if key == "id" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # ids are digits: a JSON number is taken as written
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{key} must be a string", parameter=f"{where}.{key}")
    return value


def _node(entry: Any, space: str, where: str) -> BulkNode:
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} must be an object: {_ENTRY}", parameter=where)
    keys = set(entry)
    if keys == {"id"}:
        return ByNodeId(check_node_id(_text(entry, "id", where), f"{where}.id"))
    if keys == {"phone_number"}:
        number = _text(entry, "phone_number", where)
        return ByPhoneNumber(space, check_phone_number(number, f"{where}.phone_number"))
    if keys == {"template", "language"}:
        code, language = _text(entry, "template", where), _text(entry, "language", where)
        check_template(code, language, f"{where}.template")
        return ByTemplate(space, code, language)
    raise InvalidRequest(f"{where} has the keys {sorted(keys)}: {_ENTRY}", parameter=where)


def parse_bulk(body: bytes) -> BulkQuery:
    """The bulk call's body, or InvalidRequest saying what is wrong (and where)."""
    try:
        value = loads_bounded(body)
    except NotJson as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidRequest('the body must be a JSON object {"space": …, "nodes": […]}')
    unknown = sorted(set(value) - {"space", "nodes"})
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)[:200]}", parameter=unknown[0])
    space, nodes = value.get("space"), value.get("nodes")
    if not isinstance(space, str):
        raise InvalidRequest("space is required (a string)", parameter="space", missing=True)
    space = check_space(space, "space")
    if not isinstance(nodes, list) or not nodes:
        raise InvalidRequest("nodes must be a non-empty list", parameter="nodes", missing=True)
    if len(nodes) > MAX_BULK_NODES:
        raise InvalidRequest(
            f"nodes has {len(nodes)} entries; at most {MAX_BULK_NODES} per call", parameter="nodes"
        )
    return BulkQuery(space, tuple(_node(n, space, f"nodes[{i}]") for i, n in enumerate(nodes)))


def _echo(node: BulkNode) -> dict[str, str]:
    if isinstance(node, ByNodeId):
        return {"id": node.node_id}
    if isinstance(node, ByPhoneNumber):
        return {"phone_number": node.phone_number}
    return {"template": node.code, "language": node.language}


def _error_json(error: CoreError) -> dict[str, Any]:
    if isinstance(error, UpstreamUnavailable):
        seconds = int(retry_after_header(error.retry_after))
        return {"status": 503, "message": str(error), "retry_after": seconds}
    return {"status": 404, "message": str(error)}


def result_json(result: BulkResult, lang: Language = ENGLISH) -> dict[str, Any]:
    """One node's result as the bulk API shows it, its reasons' texts in `lang`."""
    if isinstance(result, NodeFailure):
        return {"node": _echo(result.node), "error": _error_json(result.error)}
    report = result.report
    return {
        "node": _echo(result.node),
        "id": result.node_id,
        "kind": report.node_kind.value,
        "status": report.can_send_message.value,
        "reasons": [reason_json(reason) for reason in health_reasons(report, lang)],
        "fetched_at": iso_utc(report.fetched_at),
        "age_seconds": round(result.age_seconds, 3),
        "stale": report.source is ReportSource.STALE,
    }


class BulkEndpoint:
    def __init__(self, bulk: BulkHealth) -> None:
        self._bulk = bulk

    async def handle(self, request: Request) -> Response:
        body: bytes | None
        try:
            body = await read_bounded(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            body = None

        def parse() -> BulkQuery:
            if body is None:
                raise RequestTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
            return parse_bulk(body)

        try:
            results = await self._bulk.check(bearer(request), parse)
        except CoreError as exc:
            return ERRORS.render(exc)
        lang = negotiate(header(request.scope, b"accept-language"))
        return json_response(
            {"results": [result_json(result, lang) for result in results]},
            headers={"Content-Language": lang.tag},
        )


def bulk_routes(bulk: BulkHealth) -> list[Route]:
    return [Route(BULK_PATH, BulkEndpoint(bulk).handle, methods=["POST"])]
