"""The unmodified facebook-business SDK, with each space's Graph key, against a served gateway
whose spaces each use their own Meta connection: each sees its own numbers, not the other's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from facebook_business.adobjects.abstractcrudobject import AbstractCrudObject
from facebook_business.api import FacebookAdsApi, FacebookRequest, FacebookSession
from facebook_business.exceptions import FacebookRequestError
from tests.connections._scenario import (
    ACME_GRAPH,
    ACME_PHONE,
    BETA_GRAPH,
    BETA_PHONE,
    two_business_settings,
)
from tests.gateway._served import ServedGateway, serve_gateway

pytestmark = pytest.mark.filterwarnings("ignore:.*does not allow field:UserWarning")
SECTIONS = ("upstream", "meta_connections", "accounts", "spaces")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServedGateway]:
    settings = two_business_settings(tmp_path)
    sections = {name: settings.model_dump(mode="json")[name] for name in SECTIONS}
    pairs = zip(sections["meta_connections"], settings.meta_connections, strict=True)
    for connection, stored in pairs:
        connection["access_token"] = stored.access_token.get_secret_value()
        if stored.app_secret is not None:
            connection["app_secret"] = stored.app_secret.get_secret_value()
    with serve_gateway(tmp_path, qps=1000, **sections) as served:
        yield served


def _health(gateway: ServedGateway, key: str, node_id: str) -> dict[str, Any]:
    session = FacebookSession(access_token=key)
    session.GRAPH = gateway.base_url
    request = FacebookRequest(
        node_id=node_id,
        method="GET",
        endpoint="/",
        api=FacebookAdsApi(session, api_version="v21.0"),
        api_type="NODE",
        target_class=AbstractCrudObject,
    )
    request.add_fields(["health_status"])
    body: dict[str, Any] = request.execute().json()
    return body


def test_each_space_key_sees_its_own_number(gateway: ServedGateway) -> None:
    acme = _health(gateway, ACME_GRAPH, ACME_PHONE)
    beta = _health(gateway, BETA_GRAPH, BETA_PHONE)
    assert acme["health_status"]["can_send_message"] == "AVAILABLE"
    assert beta["health_status"]["can_send_message"] == "LIMITED"
    with pytest.raises(FacebookRequestError) as crossed:
        _health(gateway, ACME_GRAPH, BETA_PHONE)
    assert crossed.value.api_error_code() == 100
