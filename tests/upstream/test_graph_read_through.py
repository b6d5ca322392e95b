"""`GraphClient.read`: a GET on a caller's behalf, with Meta's refusals kept as Meta said them."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from wahealth.core.ports import UpstreamNotFound, UpstreamRejected
from wahealth.upstream.emulator import emulator_state
from wahealth.upstream.errors import GraphNotFound
from wahealth.upstream.graph import GraphClient

PHONE = "106540352242922"
WABA = "102290129340398"


async def test_reads_a_node_and_an_edge(graph: GraphClient) -> None:
    node = await graph.read(PHONE, {"fields": "platform_type,account_mode"})
    edge = await graph.read(f"{WABA}/phone_numbers", {"fields": "id", "limit": "1"})

    assert node == {"platform_type": "CLOUD_API", "account_mode": "LIVE", "id": PHONE}
    assert edge["data"] == [{"id": PHONE}]
    assert "next" in edge["paging"]


async def test_a_field_meta_lacks_is_rejected_with_metas_error(graph: GraphClient) -> None:
    with pytest.raises(UpstreamRejected) as info:
        await graph.read(PHONE, {"fields": "id,bogus"})

    assert info.value.http_status == 400
    assert info.value.code == 100
    assert info.value.error_type == "OAuthException"
    assert info.value.message == (
        "(#100) Tried accessing nonexisting field (bogus) on node type (WhatsAppBusinessPhoneNumber)"
    )


async def test_a_node_meta_does_not_know_is_not_found(graph: GraphClient) -> None:
    with pytest.raises(UpstreamNotFound) as info:
        await graph.read("123456789", {"fields": "id"})

    assert info.value.subcode == 33  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["", "a/b/c", "../x", f"{PHONE}/", "x y"])
async def test_paths_that_are_not_a_node_or_an_edge_are_never_sent(
    graph: GraphClient, emulator: Starlette, path: str
) -> None:
    with pytest.raises(GraphNotFound):
        await graph.read(path, {})

    assert emulator_state(emulator).calls.total == 0
