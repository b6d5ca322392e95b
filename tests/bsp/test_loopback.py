"""B takes its health from A's 360dialog and CAMS dialects: changes, history, alerts, stale."""

from __future__ import annotations

from pathlib import Path

from tests.bsp._pair import BILLING_KEY, BILLING_PHONE, BILLING_WABA, B_D360_KEY, pair

from wahealth.upstream.bsp.ids import phone_node_id


def test_probe(tmp_path: Path) -> None:
    with pair(tmp_path) as p:
        print(p.recorded(BILLING_PHONE))
        answer = p.http.get(f"{p.b.base_url}/health_status", headers={"D360-API-KEY": B_D360_KEY})
        print(answer.status_code, answer.headers, answer.text)
        node = phone_node_id("cams-space", "8613800000002")
        print(p.recorded(node))
        print(p.graph(node).text)
        print(p.graph(BILLING_WABA).text)
