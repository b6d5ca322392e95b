"""The emulator's business tokens: scoping, appsecret_proof, token trouble, discovery, the
app's webhook subscriptions — through the Graph client, on the wire Meta's way."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from tests.connections._scenario import (
    ACME_CLIENT_WABA,
    ACME_PHONE,
    ACME_SECOND_WABA,
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    BETA_PHONE,
    BETA_TOKEN,
    BETA_WABA,
    write_scenario,
)

from wahealth.upstream.discovery import check_token, discover_wabas, subscribe_app
from wahealth.upstream.emulator import create_emulator, emulator_state
from wahealth.upstream.emulator.scenario import load_scenario
from wahealth.upstream.errors import GraphAuthError, GraphNotFound
from wahealth.upstream.graph import GraphClient
from wahealth.upstream.graph_credentials import appsecret_proof


@pytest.fixture
def emulator(tmp_path: Path) -> Starlette:
    return create_emulator(load_scenario(write_scenario(tmp_path)))


def _client(app: Starlette, token: str, secret: str | None = None, **options: int) -> GraphClient:
    transport = httpx.ASGITransport(app=app)
    return GraphClient(
        base_url="http://emulator.test",
        access_token=token,
        app_secret=secret,
        transport=transport,
        max_attempts=1,
        **options,
    )


def test_appsecret_proof_is_hex_hmac_sha256_of_the_token_keyed_by_the_secret() -> None:
    expected = hmac.new(b"s3cret", b"EAAG-token", hashlib.sha256).hexdigest()
    assert appsecret_proof("EAAG-token", "s3cret") == expected


async def test_a_token_sees_only_its_business(emulator: Starlette) -> None:
    async with _client(emulator, BETA_TOKEN) as beta:
        assert (await beta.health(BETA_PHONE)).node_id == BETA_PHONE
        with pytest.raises(GraphNotFound):
            await beta.health(ACME_PHONE)
        answers = await beta.batch_health([BETA_PHONE, ACME_PHONE])
        with pytest.raises(GraphNotFound):
            await beta.phone_numbers(ACME_WABA)
    assert answers[BETA_PHONE].node_id == BETA_PHONE  # type: ignore[union-attr]
    assert isinstance(answers[ACME_PHONE], GraphNotFound)


async def test_the_emulator_checks_appsecret_proof_when_the_app_requires_it(
    emulator: Starlette,
) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with _client(emulator, ACME_TOKEN, ACME_SECRET) as acme:
        acme._http._client.event_hooks["request"].append(record)
        assert (await acme.health(ACME_PHONE)).node_id == ACME_PHONE
        batch = await acme.batch_health([ACME_PHONE])
    assert batch[ACME_PHONE].node_id == ACME_PHONE  # type: ignore[union-attr]
    proofs = {r.url.params.get("appsecret_proof") for r in seen}
    assert proofs == {appsecret_proof(ACME_TOKEN, ACME_SECRET)}
    assert all(ACME_TOKEN not in str(r.url) for r in seen)  # the token is in the header only
    for secret in (None, "not-the-secret"):
        async with _client(emulator, ACME_TOKEN, secret) as wrong:
            with pytest.raises(GraphAuthError) as refused:
                await wrong.health(ACME_PHONE)
        assert refused.value.code == 100
        assert refused.value.message == "Invalid appsecret_proof provided in the API argument"


async def test_token_trouble_answers_as_meta_does(emulator: Starlette) -> None:
    state = emulator_state(emulator)
    expected = {"revoked": (190, 460), "expired": (190, 463), "permission": (200, None)}
    for trouble, (code, subcode) in expected.items():
        state.token_trouble[BETA_TOKEN] = trouble
        async with _client(emulator, BETA_TOKEN) as beta:
            with pytest.raises(GraphAuthError) as refused:
                await beta.batch_health([BETA_PHONE])
            with pytest.raises(GraphAuthError):
                await check_token(beta, BETA_TOKEN)
        assert (refused.value.code, refused.value.subcode) == (code, subcode)


async def test_discovery_pages_through_owned_and_client_wabas_and_subscribes(
    emulator: Starlette,
) -> None:
    async with _client(emulator, ACME_TOKEN, ACME_SECRET, page_size=1) as acme:
        checked = await check_token(acme, ACME_TOKEN)
        found = await discover_wabas(acme)
        subscribed = await subscribe_app(acme, ACME_WABA)
    assert "whatsapp_business_management" in checked.scopes
    assert checked.app_id == "801"
    assert found.businesses == [("111", "Acme")]
    assert [(w.id, w.relation) for w in found.wabas] == [
        (ACME_WABA, "owned"),
        (ACME_SECOND_WABA, "owned"),  # on a second page
        (ACME_CLIENT_WABA, "client"),
    ]
    assert subscribed is True
    assert emulator_state(emulator).subscribed_apps == {ACME_WABA: ["801"]}
    assert BETA_WABA not in {w.id for w in found.wabas}
