"""The WhatsApp SDKs, unmodified, against the Graph read API on a real socket.

facebook-business is pointed at the gateway through its session's `GRAPH` URL; pywa
hard-codes Meta's host, so it gets an httpx client whose transport sends every request
to 127.0.0.1 instead. What they receive is checked against the demo scenario, and the
emulator's call counts show which answers came from what wahealth keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from facebook_business.adobjects.abstractcrudobject import AbstractCrudObject
from facebook_business.adobjects.whatsappbusinessaccount import WhatsAppBusinessAccount
from facebook_business.api import FacebookAdsApi, FacebookRequest, FacebookSession
from facebook_business.exceptions import FacebookRequestError
from pywa import WhatsApp
from pywa.errors import WhatsAppError
from pywa.types import Pagination
from pywa.types.templates import TemplateStatus
from tests.gateway._served import ServedGateway
from tests.gateway._wire import LIMITED_INFO, PHONE_LIMITED, PHONE_OK, TEMPLATE_ID, WABA_OK

from wahealth.testing import DEMO

# facebook-business warns (warnings.warn) for every field its generic AbstractCrudObject does
# not list, which is every WhatsApp phone-number and template field: noise, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:.*does not allow field:UserWarning")

QUALITY_FIELDS = [
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "messaging_limit_tier",
    "whatsapp_business_manager_messaging_limit",
    "throughput",
    "status",
    "name_status",
    "code_verification_status",
    "platform_type",
    "account_mode",
]


@pytest.fixture
def api(gateway: ServedGateway) -> FacebookAdsApi:
    session = FacebookSession(access_token=DEMO.graph_token)
    session.GRAPH = gateway.base_url
    return FacebookAdsApi(session, api_version="v21.0")


class ToGateway(httpx.BaseTransport):
    """Sends what pywa addresses to graph.facebook.com to the gateway on 127.0.0.1."""

    def __init__(self, gateway: ServedGateway) -> None:
        self._gateway = gateway
        self._network = httpx.HTTPTransport()
        self.seen: list[httpx.URL] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url)
        server = self._gateway.server
        request.url = request.url.copy_with(scheme="http", host=server.host, port=server.port)
        request.headers["host"] = f"{server.host}:{server.port}"
        return self._network.handle_request(request)

    def close(self) -> None:
        self._network.close()


@pytest.fixture
def pywa_client(gateway: ServedGateway) -> Iterator[tuple[WhatsApp, ToGateway]]:
    transport = ToGateway(gateway)
    with httpx.Client(transport=transport, trust_env=False, timeout=10.0) as session:
        wa = WhatsApp(phone_id=PHONE_OK, token=DEMO.graph_token, session=session, waba_id=WABA_OK)
        yield wa, transport


# --- facebook-business ----------------------------------------------------------------------


def test_facebook_business_lists_phone_numbers_with_quality_fields(
    gateway: ServedGateway, api: FacebookAdsApi
) -> None:
    cursor = WhatsAppBusinessAccount(WABA_OK, api=api).get_phone_numbers(fields=QUALITY_FIELDS)

    numbers = {item["id"]: dict(item) for item in cursor}
    assert set(numbers) == {PHONE_OK, PHONE_LIMITED}
    assert cursor.total() == 2  # the Cursor's summary=true
    first = numbers[PHONE_OK]
    assert first["display_phone_number"] == "+86 138 0000 0001"
    assert first["verified_name"] == "wahealth Demo"
    assert first["quality_rating"] == "GREEN"
    assert first["throughput"] == {"level": "STANDARD"}
    assert first["code_verification_status"] == "VERIFIED"
    assert first["platform_type"] == "CLOUD_API"
    assert first["account_mode"] == "LIVE"
    for field in ("messaging_limit_tier", "whatsapp_business_manager_messaging_limit"):
        assert str(first[field]).startswith("TIER_")
    assert first["status"] == "CONNECTED"
    assert first["name_status"] == "APPROVED"


def test_facebook_business_lists_templates_filtered_by_status(api: FacebookAdsApi) -> None:
    waba = WhatsAppBusinessAccount(WABA_OK, api=api)
    fields = ["id", "name", "language", "status", "category", "quality_score", "rejected_reason"]

    pending = list(waba.get_message_templates(fields=fields, params={"status": ["PENDING"]}))
    approved = list(waba.get_message_templates(fields=fields, params={"status": ["APPROVED"]}))

    assert approved == []
    assert [dict(t) for t in pending] == [
        {
            "id": TEMPLATE_ID,
            "name": "order_update",
            "language": "en",
            "status": "PENDING",
            "category": "UTILITY",
            "quality_score": pending[0]["quality_score"],
            "rejected_reason": "NONE",
        }
    ]
    assert pending[0]["quality_score"]["score"] in {"GREEN", "YELLOW", "RED", "UNKNOWN"}


def test_facebook_business_api_get_on_a_phone_number(
    gateway: ServedGateway, api: FacebookAdsApi
) -> None:
    # What a generated `api_get` does: a NODE request on `<id>/` (trailing slash).
    request = FacebookRequest(
        node_id=PHONE_LIMITED,
        method="GET",
        endpoint="/",
        api=api,
        api_type="NODE",
        target_class=AbstractCrudObject,
    )
    request.add_fields(["quality_rating", "messaging_limit_tier", "health_status", "status"])

    body: dict[str, Any] = request.execute().json()

    assert set(body) == {"quality_rating", "messaging_limit_tier", "health_status", "status", "id"}
    assert body["id"] == PHONE_LIMITED
    assert body["quality_rating"] == "GREEN"
    assert body["health_status"]["can_send_message"] == "LIMITED"
    assert body["health_status"]["entities"][0]["additional_info"] == [LIMITED_INFO]
    assert any(e.raw_path == f"/v21.0/{PHONE_LIMITED}/".encode() for e in gateway.tap.exchanges)


def test_facebook_business_api_get_of_another_accounts_waba_does_not_exist(
    gateway: ServedGateway,
) -> None:
    session = FacebookSession(access_token=DEMO.other_graph_token)
    session.GRAPH = gateway.base_url
    other = FacebookAdsApi(session, api_version="v21.0")

    with pytest.raises(FacebookRequestError) as info:
        WhatsAppBusinessAccount(WABA_OK, api=other).api_get(fields=["id", "name"])

    assert info.value.api_error_code() == 100
    assert info.value.api_error_subcode() == 33


def test_facebook_business_batch(api: FacebookAdsApi) -> None:
    outcomes: list[tuple[str, int, Any]] = []

    def success(response: Any) -> None:
        outcomes.append(("ok", response.status(), response.json()))

    def failure(response: Any) -> None:
        outcomes.append(("failed", response.status(), response.json()))

    batch = api.new_batch()
    waba = WhatsAppBusinessAccount(WABA_OK, api=api)
    waba.api_get(fields=["id", "name"], batch=batch, success=success, failure=failure)
    WhatsAppBusinessAccount("999", api=api).api_get(
        fields=["id"], batch=batch, success=success, failure=failure
    )
    waba.get_phone_numbers(
        fields=["id", "quality_rating"], batch=batch, success=success, failure=failure
    )

    assert batch.execute() is None  # nothing to retry

    assert [(kind, status) for kind, status, _ in outcomes] == [
        ("ok", 200),
        ("failed", 400),
        ("ok", 200),
    ]
    assert outcomes[0][2] == {"id": WABA_OK, "name": "wahealth Demo"}
    assert outcomes[1][2]["error"]["code"] == 100
    assert outcomes[1][2]["error"]["error_subcode"] == 33
    listed = outcomes[2][2]["data"]
    assert sorted(item["id"] for item in listed) == sorted([PHONE_OK, PHONE_LIMITED])
    assert {item["quality_rating"] for item in listed} == {"GREEN"}


# --- pywa -----------------------------------------------------------------------------------


def test_pywa_get_business_phone_number(pywa_client: tuple[WhatsApp, ToGateway]) -> None:
    wa, transport = pywa_client

    number = wa.get_business_phone_number()

    assert transport.seen[-1].host == "graph.facebook.com"  # pywa did ask Meta's host
    assert number.id == PHONE_OK
    assert number.display_phone_number == "+86 138 0000 0001"
    assert number.verified_name == "wahealth Demo"
    assert number.quality_rating == "GREEN"
    assert number.status == "CONNECTED"
    assert number.platform_type == "CLOUD_API"
    assert number.throughput == {"level": "STANDARD"}
    assert number.country_dial_code == "86"
    assert number.whatsapp_business_manager_messaging_limit is not None
    assert number.health_status is not None
    assert number.health_status["can_send_message"] == "AVAILABLE"


def test_pywa_follows_the_gateways_page_links(
    gateway: ServedGateway, pywa_client: tuple[WhatsApp, ToGateway]
) -> None:
    wa, transport = pywa_client

    first = wa.get_business_phone_numbers(pagination=Pagination(limit=1))
    everything = first.all()

    assert len(first) == 1
    assert first.has_next
    assert sorted(number.id for number in everything) == sorted([PHONE_OK, PHONE_LIMITED])
    followed = transport.seen[-1]  # the `next` link the gateway gave, as pywa sent it
    assert (followed.host, followed.port) == (gateway.server.host, gateway.server.port)
    assert "demo-meta-token" not in str(followed)


def test_pywa_get_business_account(pywa_client: tuple[WhatsApp, ToGateway]) -> None:
    wa, _ = pywa_client

    account = wa.get_business_account()

    assert account.id == WABA_OK
    assert account.name == "wahealth Demo"
    assert account.timezone_id
    assert account.health_status is not None
    assert account.health_status["can_send_message"] == "AVAILABLE"
    assert account.subscribed_apps is not None
    assert [app.id for app in account.subscribed_apps] == ["634974688087057"]


def test_pywa_get_templates(pywa_client: tuple[WhatsApp, ToGateway]) -> None:
    wa, _ = pywa_client

    templates = wa.get_templates()
    pending = wa.get_templates(statuses=[TemplateStatus.PENDING, TemplateStatus.PAUSED])
    approved = wa.get_templates(statuses=[TemplateStatus.APPROVED])

    assert [t.id for t in templates] == [TEMPLATE_ID]
    assert templates.total_count == 1
    assert templates.message_template_limit > 0
    template = templates[0]
    assert template.name == "order_update"
    assert template.status == TemplateStatus.PENDING
    assert template.components
    assert [t.id for t in pending] == [TEMPLATE_ID]
    assert list(approved) == []


def test_pywa_sees_another_accounts_number_as_missing(gateway: ServedGateway) -> None:
    with httpx.Client(transport=ToGateway(gateway), trust_env=False) as session:
        wa = WhatsApp(phone_id=PHONE_OK, token=DEMO.other_graph_token, session=session)

        with pytest.raises(WhatsAppError) as info:
            wa.get_business_phone_number()

    assert info.value.code == 100
    assert info.value.subcode == 33
