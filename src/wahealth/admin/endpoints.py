"""The admin API under /api/v1/admin/: every operation declared once, plus its OpenAPI document."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from wahealth.admin import schemas
from wahealth.admin.connections import Connections
from wahealth.admin.http import Call, Operation, QueryParam, serve
from wahealth.admin.keys import Keys
from wahealth.admin.openapi import openapi_document
from wahealth.admin.service import AdminStores, Tenants
from wahealth.admin.subscriptions import Subscriptions
from wahealth.admin.tokens import AdminTokens
from wahealth.admin.upstreams import SpaceUpstream, SpaceUpstreams, SpaceUpstreamSet

ADMIN_PREFIX = "/api/v1/admin"
OPENAPI_PATH = "/api/v1/openapi.json"

Endpoints = dict[str, Callable[[Request], Awaitable[Response]]]
MAX_ID = 2**62
_ACCOUNT = QueryParam("account", str, "Only this account's.")
_PURGE = QueryParam(
    "purge",
    bool,
    "Also remove for good what deletion keeps (history, node health, alerts, silences; "
    "for an account its keys too); also for one deleted before (operators only).",
)


_AUDIT_QUERY = (
    _ACCOUNT,
    QueryParam("before", int, "An id: entries older than it.", 1, MAX_ID),
    QueryParam("limit", int, "At most this many (default 100).", 1, 1000),
)


def operations(stores: AdminStores) -> list[Operation]:
    """Every admin operation, in the order the document lists them."""
    tenants, keys, subscriptions = Tenants(stores), Keys(stores), Subscriptions(stores)
    connections, upstreams = Connections(stores), SpaceUpstreams(stores)
    p = ADMIN_PREFIX

    async def list_accounts(c: Call) -> object:
        return await tenants.list_accounts(c.caller)

    async def create_account(c: Call) -> object:
        return await tenants.create_account(c.caller, c.body)

    async def get_account(c: Call) -> object:
        return await tenants.get_account(c.caller, c.path["name"])

    async def update_account(c: Call) -> object:
        return await tenants.update_account(c.caller, c.path["name"], c.body)

    async def delete_account(c: Call) -> object:
        return await tenants.delete_account(c.caller, c.path["name"], bool(c.query["purge"]))

    async def list_spaces(c: Call) -> object:
        return await tenants.list_spaces(c.caller, c.query["account"])

    async def create_space(c: Call) -> object:
        return await tenants.create_space(c.caller, c.body)

    async def get_space(c: Call) -> object:
        return await tenants.get_space(c.caller, c.path["space_id"])

    async def delete_space(c: Call) -> object:
        return await tenants.delete_space(c.caller, c.path["space_id"], bool(c.query["purge"]))

    async def add_waba(c: Call) -> object:
        return await tenants.add_waba(c.caller, c.path["space_id"], c.body.waba_id)

    async def remove_waba(c: Call) -> object:
        return await tenants.remove_waba(c.caller, c.path["space_id"], c.path["waba_id"])

    async def list_keys(c: Call) -> object:
        return await keys.list_keys(c.caller, c.query["account"])

    async def create_key(c: Call) -> object:
        return await keys.create_key(c.caller, c.body)

    async def get_key(c: Call) -> object:
        return await keys.get_key(c.caller, c.path["key_id"])

    async def rotate_key(c: Call) -> object:
        return await keys.rotate_key(c.caller, c.path["key_id"], c.body)

    async def revoke_key(c: Call) -> object:
        return await keys.revoke_key(c.caller, c.path["key_id"])

    async def delete_key(c: Call) -> object:
        return await keys.delete_key(c.caller, c.path["key_id"])

    async def list_subscriptions(c: Call) -> object:
        return await subscriptions.list(c.caller, c.path["space_id"])

    async def add_subscription(c: Call) -> object:
        return await subscriptions.add(c.caller, c.path["space_id"], c.body)

    async def update_subscription(c: Call) -> object:
        return await subscriptions.update(c.caller, c.path["subscription_id"], c.body)

    async def remove_subscription(c: Call) -> object:
        return await subscriptions.remove(c.caller, c.path["subscription_id"])

    async def list_connections(c: Call) -> object:
        return await connections.list(c.caller)

    async def create_connection(c: Call) -> object:
        return await connections.create(c.caller, c.body)

    async def get_connection(c: Call) -> object:
        return await connections.get(c.caller, c.path["connection"])

    async def check_connection(c: Call) -> object:
        return await connections.check(c.caller, c.path["connection"])

    async def delete_connection(c: Call) -> object:
        return await connections.delete(c.caller, c.path["connection"])

    async def set_space_upstream(c: Call) -> object:
        return await upstreams.set(c.caller, c.path["space_id"], c.body)

    async def set_space_connection(c: Call) -> object:
        return await connections.set_space(c.caller, c.path["space_id"], c.body)

    async def audit(c: Call) -> object:
        q = c.query
        limit = 100 if q["limit"] is None else q["limit"]
        return await tenants.audit(c.caller, q["account"], q["before"], limit)

    bad = (400, 401, 403, 404, 409, 422)
    return [
        Operation("GET", f"{p}/accounts", "List accounts", list_accounts, list[schemas.Account],
                  errors=(401, 422)),
        Operation("POST", f"{p}/accounts", "Create an account", create_account, schemas.Account,
                  body=schemas.AccountCreate, status=201, errors=bad),
        Operation("GET", f"{p}/accounts/{{name}}", "Get an account", get_account, schemas.Account),
        Operation("PATCH", f"{p}/accounts/{{name}}", "Change an account's rate limit or disable it",
                  update_account, schemas.Account, body=schemas.AccountUpdate, errors=bad),
        Operation("DELETE", f"{p}/accounts/{{name}}",
                  "Delete an account: its keys are revoked at once, its history kept",
                  delete_account, schemas.AccountDeleted, query=(_PURGE,)),
        Operation("GET", f"{p}/spaces", "List spaces", list_spaces, list[schemas.Space],
                  query=(_ACCOUNT,)),
        Operation("POST", f"{p}/spaces", "Create a space", create_space, schemas.Space,
                  body=schemas.SpaceCreate, status=201, errors=bad),
        Operation("GET", f"{p}/spaces/{{space_id}}", "Get a space", get_space, schemas.Space),
        Operation("DELETE", f"{p}/spaces/{{space_id}}",
                  "Delete a space: its WABAs leave it, its numbers' 360dialog keys are revoked",
                  delete_space, schemas.SpaceDeleted, query=(_PURGE,)),
        Operation("POST", f"{p}/spaces/{{space_id}}/wabas", "Add a WABA to a space", add_waba,
                  schemas.Space, body=schemas.WabaAdd, errors=bad),
        Operation("DELETE", f"{p}/spaces/{{space_id}}/wabas/{{waba_id}}",
                  "Take a WABA out of a space", remove_waba, schemas.Space),
        Operation("GET", f"{p}/keys", "List keys (revoked and expiring ones included)",
                  list_keys, list[schemas.Key], query=(_ACCOUNT,)),
        Operation("POST", f"{p}/keys", "Create a key; its secret is in this answer only",
                  create_key, schemas.NewKey, body=schemas.KeyCreate, status=201, errors=bad),
        Operation("GET", f"{p}/keys/{{key_id}}", "Get a key", get_key, schemas.Key),
        Operation("POST", f"{p}/keys/{{key_id}}/rotate",
                  "Rotate a key: a new key now, the old one works until the overlap ends",
                  rotate_key, schemas.Rotation, body=schemas.KeyRotate, status=201, errors=bad),
        Operation("POST", f"{p}/keys/{{key_id}}/revoke", "Revoke a key at once", revoke_key,
                  schemas.Key),
        Operation("DELETE", f"{p}/keys/{{key_id}}", "Delete a key", delete_key, schemas.Key),
        Operation("GET", f"{p}/spaces/{{space_id}}/subscriptions",
                  "List a space's alert subscriptions (paused ones included)",
                  list_subscriptions, list[schemas.Subscription]),
        Operation("POST", f"{p}/spaces/{{space_id}}/subscriptions",
                  "Subscribe a webhook to a space's alerts", add_subscription,
                  schemas.Subscription, body=schemas.SubscriptionCreate, status=201, errors=bad),
        Operation("PATCH", f"{p}/subscriptions/{{subscription_id}}",
                  "Change a subscription's events, format or secret, or pause it",
                  update_subscription, schemas.Subscription, body=schemas.SubscriptionUpdate,
                  errors=bad),
        Operation("DELETE", f"{p}/subscriptions/{{subscription_id}}",
                  "Remove a subscription and its undelivered alerts", remove_subscription,
                  schemas.SubscriptionRemoved),
        Operation("GET", f"{p}/connections", "List Meta connections (never their tokens)",
                  list_connections, list[schemas.Connection], errors=(401, 403, 422)),
        Operation("POST", f"{p}/connections",
                  "Create or replace a Meta connection (token, optional app secret), then check it",
                  create_connection, schemas.Connection, body=schemas.ConnectionCreate,
                  status=201, errors=bad),
        Operation("GET", f"{p}/connections/{{connection}}", "Get a Meta connection",
                  get_connection, schemas.Connection),
        Operation("POST", f"{p}/connections/{{connection}}/check",
                  "Check a connection's token with Meta now (a refused one resumes if it works)",
                  check_connection, schemas.Connection),
        Operation("DELETE", f"{p}/connections/{{connection}}",
                  "Delete a Meta connection no space uses", delete_connection,
                  schemas.Connection, errors=(401, 403, 404, 409, 422)),
        Operation("PUT", f"{p}/spaces/{{space_id}}/connection",
                  "Set the Meta connection a space's Graph calls use (null: the default token)",
                  set_space_connection, schemas.SpaceConnectionSet, body=schemas.SpaceConnection,
                  errors=bad),
        Operation("PUT", f"{p}/spaces/{{space_id}}/upstream",
                  "Set where a space's health comes from: Meta, 360dialog or CAMS (keys and "
                  "secrets write-only; takes effect at the next start)",
                  set_space_upstream, SpaceUpstream, body=SpaceUpstreamSet, errors=bad),
        Operation("GET", f"{p}/audit", "Read the audit log, newest first", audit,
                  schemas.AuditPage, query=_AUDIT_QUERY),
    ]  # fmt: skip


def admin_routes(stores: AdminStores, tokens: AdminTokens) -> list[BaseRoute]:
    """The admin API's routes and the OpenAPI document (public: it holds no data)."""
    ops = operations(stores)
    document = openapi_document(ops)

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    by_path: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        by_path[op.path].append(op)
    routes: list[BaseRoute] = [Route(OPENAPI_PATH, openapi, methods=["GET"])]
    for path, on_path in by_path.items():
        endpoints = {op.method: serve(op, tokens) for op in on_path}

        async def endpoint(request: Request, endpoints: Endpoints = endpoints) -> Response:
            return await endpoints[request.method](request)

        routes.append(Route(path, endpoint, methods=list(endpoints)))
    return routes
