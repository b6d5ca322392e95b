"""Revoking a credential in storage stops it on the running server within the lookup cache's ttl."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from tests.gateway._served import ServedGateway
from tests.gateway._wire import PHONE_OK, WABA_OK, d360_error, graph_error

from wahealth.storage.credentials import CredentialKind
from wahealth.testing import DEMO

T = TypeVar("T")

# The directory caches credential lookups for 1 s; allow for a slow machine, bounded.
DEADLINE_SECONDS = 5.0


def _poll_until(probe: Callable[[], T], expected: T) -> None:
    """Call `probe` until it answers `expected`, or fail at the deadline showing its answer."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (answer := probe()) != expected:
        assert time.monotonic() < deadline, f"still {answer!r} instead of {expected!r}"
        time.sleep(0.05)


def _credential_id(gateway: ServedGateway, kind: CredentialKind, account: str) -> int:
    listed = gateway.run(gateway.components.credentials.list_credentials(account))
    (found,) = [info for info in listed if info.kind == kind]
    return int(found.id)


def _cams_code(gateway: ServedGateway) -> str:
    try:
        gateway.cams().get_whatsapp_health_status(
            GetWhatsappHealthStatusRequest(
                node_type="waba", waba_id=WABA_OK, cust_space_id=DEMO.space
            )
        )
    except ClientException as exc:
        refused = exc
    else:
        return "OK"
    assert refused.status_code == 400
    return str(refused.code)


def _d360_status(gateway: ServedGateway) -> int:
    with gateway.http() as http:
        response = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
    if response.status_code == 401:
        d360_error(response.content, 401)
    return response.status_code


def _graph_status(gateway: ServedGateway, token: str = DEMO.graph_token) -> int:
    with gateway.http() as http:
        response = http.get(
            f"/v21.0/{PHONE_OK}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {token}"},
        )
    if response.status_code == 401:
        graph_error(response.content, 190)
    elif response.status_code == 400:
        graph_error(response.content, 100)
    return response.status_code


def test_revoked_credentials_stop_working_on_the_running_server(gateway: ServedGateway) -> None:
    # All three work, and the directory has cached them.
    assert (_cams_code(gateway), _d360_status(gateway), _graph_status(gateway)) == ("OK", 200, 200)
    credentials = gateway.components.credentials
    d360_id = _credential_id(gateway, CredentialKind.D360_KEY, DEMO.account)
    graph_id = _credential_id(gateway, CredentialKind.GRAPH_TOKEN, DEMO.account)

    assert gateway.run(credentials.revoke_access_key(DEMO.access_key_id))
    assert gateway.run(credentials.revoke_d360_key(d360_id))
    assert gateway.run(credentials.revoke_graph_token(graph_id))

    def answers() -> tuple[str, int, int]:
        return _cams_code(gateway), _d360_status(gateway), _graph_status(gateway)

    refused = ("InvalidAccessKeyId.Inactive", 401, 401)
    _poll_until(answers, refused)
    # And they stay refused.
    assert [answers() for _ in range(2)] == [refused, refused]
    # The other account's token is untouched: authenticated, though not allowed this node.
    assert _graph_status(gateway, DEMO.other_graph_token) == 400
