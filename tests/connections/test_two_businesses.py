"""Each space's Graph calls use its own Meta connection, end to end through the app."""

from __future__ import annotations

from pathlib import Path

from tests.connections._scenario import (
    ACME_GRAPH,
    ACME_PHONE,
    BETA_GRAPH,
    BETA_PHONE,
    two_business_settings,
)

from wahealth.testing import running_app


def _graph(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_space_sees_its_own_nodes_through_its_own_token(tmp_path: Path) -> None:
    async with running_app(two_business_settings(tmp_path)) as running:
        acme = await running.client.get(
            f"/v21.0/{ACME_PHONE}", params={"fields": "health_status"}, headers=_graph(ACME_GRAPH)
        )
        beta = await running.client.get(
            f"/v21.0/{BETA_PHONE}", params={"fields": "health_status"}, headers=_graph(BETA_GRAPH)
        )
        crossed = await running.client.get(
            f"/v21.0/{BETA_PHONE}", params={"fields": "health_status"}, headers=_graph(ACME_GRAPH)
        )
        stored = {c.name: c for c in await running.components.connections.list_connections()}
    assert acme.status_code == 200, acme.text
    assert acme.json()["health_status"]["can_send_message"] == "AVAILABLE"
    assert beta.status_code == 200, beta.text
    assert beta.json()["health_status"]["can_send_message"] == "LIMITED"
    assert crossed.status_code != 200
    assert stored["acme"].state == stored["beta"].state == "ok"
    assert stored["acme"].spaces == ("acme-space",)
    assert stored["beta"].spaces == ("beta-space",)


async def test_without_its_app_secret_a_connection_is_refused_by_the_emulator(
    tmp_path: Path,
) -> None:
    """Acme's app requires appsecret_proof: the same token without the secret is refused."""
    settings = two_business_settings(tmp_path, acme_secret=None)
    async with running_app(settings) as running:
        acme = await running.client.get(
            f"/v21.0/{ACME_PHONE}", params={"fields": "health_status"}, headers=_graph(ACME_GRAPH)
        )
        beta = await running.client.get(
            f"/v21.0/{BETA_PHONE}", params={"fields": "health_status"}, headers=_graph(BETA_GRAPH)
        )
        stored = {c.name: c for c in await running.components.connections.list_connections()}
    assert acme.status_code != 200
    assert stored["acme"].state == "refused"
    assert stored["acme"].problem == "(100) Invalid appsecret_proof provided in the API argument"
    assert beta.status_code == 200
    assert stored["beta"].state == "ok"
