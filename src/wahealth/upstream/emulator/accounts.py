"""Tokens and what they see: token trouble, appsecret_proof, scoping, discovery edges.

A scenario's `access_tokens` belong to one business each: such a token sees that
business, its WABAs (owned, and those `shared_with` it as client WABAs), their numbers
and templates, and nothing else (Meta's "does not exist, cannot be loaded due to missing
permissions", code 100 subcode 33). The scenario's `tokens` see everything.

Served here: `GET /me`, `GET /debug_token?input_token=`, `GET /me/businesses`,
`GET /<business>/owned_whatsapp_business_accounts` and `.../client_whatsapp_business_accounts`
(cursor paging), `GET|POST /<waba>/subscribed_apps`.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from wahealth.upstream.emulator import envelopes
from wahealth.upstream.emulator.envelopes import GraphAnswer
from wahealth.upstream.emulator.scenario import AccessTokenSpec, AppSpec, BusinessSpec, WabaSpec
from wahealth.upstream.emulator.state import EmulatorState, Node
from wahealth.upstream.graph_credentials import appsecret_proof

TOKEN_TROUBLES = ("revoked", "expired", "permission")
DISCOVERY_EDGES = ("owned_whatsapp_business_accounts", "client_whatsapp_business_accounts")
_DEFAULT_PAGE = 25


def token_trouble(reason: str) -> GraphAnswer:
    """Meta's answers for a revoked or expired token, or one lacking a permission."""
    if reason == "revoked":
        return envelopes.graph_error(
            401,
            "Error validating access token: The session has been invalidated because the user "
            "changed their password or Facebook has changed the session for security reasons.",
            190,
            subcode=460,
        )
    if reason == "expired":
        return envelopes.graph_error(
            401, "Error validating access token: Session has expired.", 190, subcode=463
        )
    return envelopes.graph_error(
        403, "(#200) Requires whatsapp_business_management permission to manage the object", 200
    )


def _app(state: EmulatorState, spec: AccessTokenSpec | None) -> AppSpec | None:
    if spec is None or spec.app is None:
        return None
    node = state.node(spec.app)
    return node.spec if node is not None and isinstance(node.spec, AppSpec) else None


def authorize(state: EmulatorState, token: str | None, proof: str | None) -> GraphAnswer | None:
    """The refusal of a known token made to fail, or of a missing or wrong appsecret_proof."""
    if token is None:
        return None
    reason = state.token_trouble.get(token)
    if reason is not None:
        return token_trouble(reason)
    app = _app(state, state.token_specs.get(token))
    if app is not None and app.require_appsecret_proof and app.secret is not None:
        expected = appsecret_proof(token, app.secret)
        if proof is None or not hmac.compare_digest(expected, proof):
            return envelopes.graph_error(
                400,
                "Invalid appsecret_proof provided in the API argument",
                100,
                error_type="GraphMethodException",
            )
    return None


def visible(state: EmulatorState, token: str | None, node: Node) -> bool:
    """Whether the token may see the node (all-seeing tokens see every node)."""
    spec = state.token_specs.get(token or "")
    if spec is None:
        return True
    return spec.business in _owners(state, node)


def _owners(state: EmulatorState, node: Node) -> set[str]:
    found = node.spec
    if isinstance(found, BusinessSpec):
        return {found.id}
    if isinstance(found, AppSpec):
        return {w.business for w in state.scenario.wabas if w.app == found.id} | {
            t.business for t in state.scenario.access_tokens if t.app == found.id
        }
    waba = state.waba_of(node)
    return set() if waba is None else {waba.business, *waba.shared_with}


def answer_account_call(
    state: EmulatorState, method: str, segments: Sequence[str], call: Any
) -> GraphAnswer | None:
    """The answer for `/me`, `/debug_token` and the discovery edges; None for other paths."""
    spec = state.token_specs.get(call.token or "")
    head = segments[0]
    if head == "debug_token" and len(segments) == 1:
        return _debug_token(state, call.params.get("input_token"))
    if head == "me":
        if len(segments) == 1:
            me = spec.business + "-system-user" if spec is not None else "emulator-user"
            return GraphAnswer(200, {"id": me, "name": "Emulator system user"})
        if segments[1:] == ("businesses",):
            businesses = [
                b for b in state.scenario.businesses if spec is None or b.id == spec.business
            ]
            rows = [{"id": b.id, "name": b.name or b.id} for b in businesses]
            return _page(rows, call)
        return envelopes.unknown_path("/" + "/".join(segments[1:]))
    node = state.node(head)
    if node is None or len(segments) != 2 or not visible(state, call.token, node):
        return None
    edge = segments[1]
    if isinstance(node.spec, BusinessSpec) and edge in DISCOVERY_EDGES and method == "GET":
        owned = edge.startswith("owned")
        wabas = [
            w
            for w in state.scenario.wabas
            if (w.business == node.spec.id if owned else node.spec.id in w.shared_with)
        ]
        return _page([{"id": w.id, "name": w.name or w.id} for w in wabas], call)
    if isinstance(node.spec, WabaSpec) and edge == "subscribed_apps":
        apps = state.subscribed_apps.setdefault(node.spec.id, [])
        if method == "POST":
            app_id = spec.app if spec is not None and spec.app else node.spec.app
            if app_id not in apps:
                apps.append(app_id)
            return GraphAnswer(200, {"success": True})
        # As the WABA's `subscribed_apps` field shows them: its own app, and those subscribed.
        shown = list(dict.fromkeys([node.spec.app, *apps]))
        listed: list[dict[str, Any]] = [{"whatsapp_business_api_data": {"id": a}} for a in shown]
        return GraphAnswer(200, {"data": listed})
    return None


def _debug_token(state: EmulatorState, input_token: str | None) -> GraphAnswer:
    if not input_token or input_token not in state.tokens:
        data: dict[str, Any] = {
            "is_valid": False,
            "error": {"code": 190, "message": "Invalid OAuth access token.", "subcode": 0},
            "scopes": [],
        }
        return GraphAnswer(200, {"data": data})
    spec = state.token_specs.get(input_token)
    reason = state.token_trouble.get(input_token)
    scopes = list(spec.scopes) if spec is not None else ["whatsapp_business_management"]
    if reason == "permission":
        scopes = [s for s in scopes if s != "whatsapp_business_management"]
    app = spec.app if spec is not None else None
    data = {
        "app_id": app or next((a.id for a in state.scenario.apps), None),
        "type": "SYSTEM_USER",
        "application": "emulator",
        "expires_at": 0,
        "is_valid": reason not in ("revoked", "expired"),
        "scopes": scopes,
        "user_id": (spec.business + "-system-user") if spec is not None else "emulator-user",
    }
    if reason in ("revoked", "expired"):
        data["error"] = {"code": 190, "message": f"The session was {reason}.", "subcode": 460}
    return GraphAnswer(200, {"data": data})


def _page(rows: list[dict[str, Any]], call: Any) -> GraphAnswer:
    """One page of `rows` with Graph's cursors (`limit`, `after`)."""
    params: Mapping[str, str] = call.params
    raw = params.get("limit", str(_DEFAULT_PAGE))
    limit = int(raw) if raw.isdigit() and int(raw) > 0 else _DEFAULT_PAGE
    start = 0
    if (after := params.get("after")) is not None:
        try:
            start = int(base64.urlsafe_b64decode(after.encode()).decode()) + 1
        except ValueError:
            return envelopes.invalid_parameter("Invalid cursor: after")
    page = rows[start : start + limit]
    body: dict[str, Any] = {"data": page}
    if page:
        first = base64.urlsafe_b64encode(str(start).encode()).decode()
        last = base64.urlsafe_b64encode(str(start + len(page) - 1).encode()).decode()
        paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
        if start + len(page) < len(rows):
            query = {k: v for k, v in params.items() if k != "after"}
            paging["next"] = (
                call.base_url.rstrip("/") + call.path + "?" + urlencode({**query, "after": last})
            )
        body["paging"] = paging
    return GraphAnswer(200, body)
