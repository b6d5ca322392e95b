"""Why, and what fixes it, in English, Indonesian and Chinese: every dialect over the socket.

The blocked demo nodes (template 2632273056924580 with 141002, WABA 299399000000001 with
141006) asked in each dialect with `Accept-Language` (and Graph's `locale=`); the CAMS
SDK reading LIMITED reasons in `Message`; English unchanged byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_cams20200606.client import Client
from alibabacloud_cams20200606.models import (
    GetWhatsappHealthStatusRequest,
    GetWhatsappHealthStatusResponse,
)
from alibabacloud_tea_openapi.models import Config, GlobalParameters
from darabonba.runtime import ExtendsParameters, RuntimeOptions
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import (
    LIMITED_INFO,
    PAYMENT_ERROR,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_ERROR,
    TEMPLATE_ID,
    WABA_BLOCKED,
)

from wahealth.domain.catalog import describe, texts
from wahealth.domain.languages import Language
from wahealth.testing import DEMO, demo_settings

BLOCKED_WABA_KEY = "d360-key-of-the-number-on-the-blocked-waba"
TRANSLATED = [("id", Language.ID), ("id-ID,id;q=0.9,en;q=0.5", Language.ID), ("zh-CN", Language.ZH)]
ENGLISH_HEADERS: list[dict[str, str]] = [
    {},
    {"Accept-Language": "en-US,en;q=0.9"},
    {"Accept-Language": "fr-FR"},
    {"Accept-Language": "zh-TW"},  # Traditional Chinese is not served
    {"Accept-Language": "id;q=0"},
]
# Seed 003, "Example Blocked Response", as Graph puts it on the wire.
SEED_003_BLOCKED = {
    "health_status": {
        "can_send_message": "BLOCKED",
        "entities": [
            {
                "entity_type": "MESSAGE_TEMPLATE",
                "id": "2632273056924580",
                "can_send_message": "BLOCKED",
                "errors": [
                    {
                        "error_code": 141002,
                        "error_description": TEMPLATE_ERROR["ErrorDescription"],
                        "possible_solution": TEMPLATE_ERROR["PossibleSolution"],
                    }
                ],
            },
            {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
            {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
            {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"},
        ],
    },
    "id": "2632273056924580",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The demo gateway, with a 360dialog key also on the number of the blocked WABA."""
    tmp_path = tmp_path_factory.mktemp("languages")
    accounts = [account.model_dump() for account in demo_settings(tmp_path).accounts]
    accounts[0]["d360_keys"].append(
        {"key": BLOCKED_WABA_KEY, "phone_number_id": PHONE_ON_BLOCKED_WABA}
    )
    with serve_gateway(tmp_path, qps=UNTHROTTLED_QPS, accounts=accounts) as served:
        yield served


def _texts(code: str, language: Language) -> tuple[str, str]:
    found = describe(code, language)
    assert found is not None
    return found


def _cams(gateway: ServedGateway, accept_language: str | None = None) -> Client:
    """The SDK as its users would set a language for every call: a global header."""
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    return Client(
        Config(
            access_key_id=DEMO.access_key_id,
            access_key_secret=DEMO.access_key_secret,
            endpoint=gateway.endpoint,
            protocol="http",
            global_parameters=GlobalParameters(headers=headers),
        )
    )


def _ask(client: Client, **fields: Any) -> GetWhatsappHealthStatusResponse:
    response: GetWhatsappHealthStatusResponse = client.get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(cust_space_id=DEMO.space, **fields)
    )
    return response


def _wire(gateway: ServedGateway, response: GetWhatsappHealthStatusResponse) -> bytes:
    """The body the server sent, with the request id taken out (it differs per call)."""
    request_id = response.headers["x-request-id"]
    return gateway.exchange(request_id).response_body.replace(request_id.encode(), b"RID")


def _graph(gateway: ServedGateway, node: str, headers: dict[str, str], **params: str) -> Any:
    with gateway.http() as http:
        response = http.get(
            f"/v21.0/{node}",
            params={"fields": "health_status", **params},
            headers={"Authorization": f"Bearer {DEMO.graph_token}", **headers},
        )
    assert response.status_code == 200, response.text
    return response


def _d360(gateway: ServedGateway, headers: dict[str, str]) -> Any:
    with gateway.http() as http:
        response = http.get("/health_status", headers={"D360-API-KEY": BLOCKED_WABA_KEY, **headers})
    assert response.status_code == 200, response.text
    return response


def _errors(answer: dict[str, Any], entity_type: str) -> list[dict[str, Any]]:
    entity = next(e for e in answer["health_status"]["entities"] if e["entity_type"] == entity_type)
    errors: list[dict[str, Any]] = entity["errors"]
    return errors


# --- Indonesian and Chinese on the blocked nodes ---------------------------------------------


@pytest.mark.parametrize(("header", "language"), TRANSLATED)
def test_the_blocked_template_in_cams_and_graph(
    gateway: ServedGateway, header: str, language: Language
) -> None:
    description, solution = _texts("141002", language)

    cams = _ask(
        _cams(gateway, header), node_type="template", template_code="order_update", language="en"
    )
    template = cams.body.data.entities[0]
    assert (template.entity_type, template.language) == ("MESSAGE_TEMPLATE", "en")
    assert [(e.error_code, e.error_description, e.possible_solution) for e in template.errors] == [
        ("141002", description, solution)
    ]
    assert cams.headers["content-language"] == language.tag

    graph = _graph(gateway, TEMPLATE_ID, {"Accept-Language": header})
    assert _errors(graph.json(), "MESSAGE_TEMPLATE") == [
        {"error_code": 141002, "error_description": description, "possible_solution": solution}
    ]
    assert graph.headers["content-language"] == language.tag


@pytest.mark.parametrize(("header", "language"), TRANSLATED)
def test_the_blocked_waba_in_all_three_dialects(
    gateway: ServedGateway, header: str, language: Language
) -> None:
    description, solution = _texts("141006", language)
    expected = {
        "error_code": 141006,
        "error_description": description,
        "possible_solution": solution,
    }

    cams = _ask(_cams(gateway, header), node_type="waba", waba_id=WABA_BLOCKED)
    waba = cams.body.data.entities[0]
    assert (waba.entity_type, waba.can_send_message) == ("WABA", "BLOCKED")
    assert [(e.error_code, e.error_description, e.possible_solution) for e in waba.errors] == [
        ("141006", description, solution)
    ]
    graph = _graph(gateway, WABA_BLOCKED, {"Accept-Language": header})
    assert _errors(graph.json(), "WABA") == [expected]
    d360 = _d360(gateway, {"Accept-Language": header})
    assert d360.json()["id"] == PHONE_ON_BLOCKED_WABA
    assert _errors(d360.json(), "WABA") == [expected]
    assert d360.headers["content-language"] == language.tag


def test_graph_locale_names_the_language_and_wins_over_the_header(gateway: ServedGateway) -> None:
    for locale, language in (("id_ID", Language.ID), ("zh_CN", Language.ZH)):
        answer = _graph(gateway, TEMPLATE_ID, {"Accept-Language": "en"}, locale=locale)
        assert (
            _errors(answer.json(), "MESSAGE_TEMPLATE")[0]["error_description"]
            == _texts("141002", language)[0]
        )
    english = _graph(gateway, TEMPLATE_ID, {})
    # A locale we do not serve is English, whatever the header says.
    unserved = _graph(gateway, TEMPLATE_ID, {"Accept-Language": "id"}, locale="pt_BR")
    assert unserved.content == english.content
    assert "content-language" not in unserved.headers


# --- English: unchanged ----------------------------------------------------------------------


def test_english_is_meta_text_byte_for_byte_whatever_else_the_header_says(
    gateway: ServedGateway,
) -> None:
    expected = json.dumps(SEED_003_BLOCKED, separators=(",", ":")).encode()
    for headers in ENGLISH_HEADERS:
        graph = _graph(gateway, TEMPLATE_ID, headers)
        assert graph.content == expected, headers
        assert "content-language" not in graph.headers
        d360 = _d360(gateway, headers)
        assert (
            _errors(d360.json(), "WABA")[0]["error_description"]
            == PAYMENT_ERROR["ErrorDescription"]
        )
        assert "content-language" not in d360.headers
    cams = [
        _wire(
            gateway,
            _ask(
                _cams(gateway, headers.get("Accept-Language")),
                node_type="waba",
                waba_id=WABA_BLOCKED,
            ),
        )
        for headers in ENGLISH_HEADERS
    ]
    assert len(set(cams)) == 1
    errors = json.loads(cams[0])["Data"]["Entities"][0]["Errors"]
    assert errors == [PAYMENT_ERROR]


def test_languages_in_turn_never_serve_each_other_answers(gateway: ServedGateway) -> None:
    english = _graph(gateway, WABA_BLOCKED, {}).content
    for header in ("zh", None, "id", "zh", None, "id"):
        answer = _graph(
            gateway, WABA_BLOCKED, {} if header is None else {"Accept-Language": header}
        )
        if header is None:
            assert answer.content == english
        else:
            language = Language(header)
            assert (
                _errors(answer.json(), "WABA")[0]["possible_solution"]
                == _texts("141006", language)[1]
            )


def test_meta_english_stays_in_the_stored_report(gateway: ServedGateway) -> None:
    _graph(gateway, TEMPLATE_ID, {"Accept-Language": "zh"})
    _ask(_cams(gateway, "id"), node_type="template", template_code="order_update", language="en")
    components = gateway.components
    gateway.run(components.health.drain())
    stored = gateway.run(components.history.get(TEMPLATE_ID))
    assert stored is not None
    assert stored.payload is not None
    assert (
        stored.payload["health_status"]["entities"][0]["errors"]
        == SEED_003_BLOCKED["health_status"]["entities"][0]["errors"]
    )


# --- LIMITED reasons reach CAMS SDK users ----------------------------------------------------


def test_the_sdk_reads_limited_reasons_in_message(gateway: ServedGateway) -> None:
    response = _ask(_cams(gateway), node_type="phone", phone_number="8613800000002")

    assert response.body.data.can_send_message == "LIMITED"
    assert response.body.message == f"LIMITED: {LIMITED_INFO}"
    # Why Message: the SDK's entity model has no field for them (nor for Id).
    phone = response.body.data.entities[0]
    assert not hasattr(phone, "additional_info")
    assert "AdditionalInfo" not in phone.to_map()
    assert json.loads(_wire(gateway, response))["Data"]["Entities"][0]["AdditionalInfo"] == [
        LIMITED_INFO
    ]


@pytest.mark.parametrize("language", [Language.ID, Language.ZH])
def test_the_sdk_sets_the_language_per_call_through_runtime_options(
    gateway: ServedGateway, language: Language
) -> None:
    runtime = RuntimeOptions(
        extends_parameters=ExtendsParameters(headers={"Accept-Language": language.tag})
    )
    response = gateway.cams().get_whatsapp_health_status_with_options(
        GetWhatsappHealthStatusRequest(
            cust_space_id=DEMO.space, node_type="phone", phone_number="8613800000002"
        ),
        runtime,
    )

    reason = texts(language).info["display_name_pending"]
    assert response.body.message == f"LIMITED: {reason}"
    assert json.loads(_wire(gateway, response))["Data"]["Entities"][0]["AdditionalInfo"] == [reason]
    # The same client without the runtime header is English again.
    again = _ask(gateway.cams(), node_type="phone", phone_number="8613800000002")
    assert again.body.message == f"LIMITED: {LIMITED_INFO}"


def test_nodes_with_nothing_to_say_keep_message_none(gateway: ServedGateway) -> None:
    for header in (None, "id", "zh"):
        client = _cams(gateway, header)
        assert _ask(client, node_type="phone", phone_number="8613800000001").body.message == "None"
        assert _ask(client, node_type="waba", waba_id=WABA_BLOCKED).body.message == "None"


def test_a_per_call_header_wins_over_the_client_global_one(gateway: ServedGateway) -> None:
    runtime = RuntimeOptions(
        extends_parameters=ExtendsParameters(headers={"Accept-Language": "zh"})
    )
    response = _cams(gateway, "id").get_whatsapp_health_status_with_options(
        GetWhatsappHealthStatusRequest(
            cust_space_id=DEMO.space, node_type="waba", waba_id=WABA_BLOCKED
        ),
        runtime,
    )
    assert (
        response.body.data.entities[0].errors[0].error_description
        == _texts("141006", Language.ZH)[0]
    )
