"""The access log: one line per request with its id, dialect, account, status and latency; no secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from tests._processes import environment, free_port, running, wahealth
from tests.faults._matrix import DIALECTS

from wahealth.testing import DEMO, demo_settings, running_app

SECRETS = (
    DEMO.graph_token,
    DEMO.d360_key,
    DEMO.access_key_secret,
    DEMO.other_access_key_secret,
)


def _requests(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line.get("event") == "request"]


async def test_each_dialect_logs_one_line_with_its_fields(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, server={"access_log": True})
    for account in settings.accounts:
        account.qps = 1000
    async with running_app(settings) as running:
        client = running.client
        with structlog.testing.capture_logs() as logs:
            answers = {name: await query(client) for name, query in DIALECTS.items()}
            # Cached now: the express lanes that answer without awaiting are logged too.
            answers |= {f"{name} again": await query(client) for name, query in DIALECTS.items()}
            unknown = await client.get("/health_status", headers={"D360-API-KEY": "wrong"})
            await client.get("/healthz")
            await client.get("/readyz")
            await client.get("/api/v1/nodes/106540352242922/history")
    lines = _requests(logs)
    assert [line["dialect"] for line in lines] == [
        "cams", "d360", "graph", "cams", "d360", "graph", "d360", "web",
    ]  # fmt: skip
    every = [*answers.values(), unknown]
    for line, answer in zip(lines, every, strict=False):
        assert line["request_id"] == answer.headers["x-request-id"]
        assert line["status"] == answer.status_code
        assert line["account"] == (None if answer is unknown else DEMO.account)
        assert line["method"] == "GET"
        assert isinstance(line["latency_ms"], float)
        assert line["latency_ms"] >= 0
        assert line["log_level"] == "info"
    assert [line["status"] for line in lines[:7]] == [200] * 6 + [401]
    assert lines[2]["path"] == "/v21.0/106540352242922"  # never the query string
    assert lines[0]["path"] == "/"
    text = json.dumps(lines)
    for secret in SECRETS:
        assert secret not in text
    assert "Signature" not in text
    assert "fields=" not in text


async def test_off_by_default_nothing_is_logged(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        with structlog.testing.capture_logs() as logs:
            for query in DIALECTS.values():
                assert (await query(running.client)).status_code == 200
            await running.client.get("/api/v1/nodes/106540352242922/history")
    assert _requests(logs) == []


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "wahealth.toml"
    token = f'[[accounts.graph_tokens]]\ntoken = "{DEMO.graph_token}"\n'
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n"
        '[[spaces]]\nid = "s"\naccount = "a"\nwabas = ["102290129340398"]\n'
        f'[[accounts]]\nname = "a"\n{token}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("level", ["info", "warning"])
def test_a_real_server_writes_json_lines_at_the_log_level(
    config: Path, tmp_path: Path, level: str
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = environment(WAHEALTH_SERVER__ACCESS_LOG="true", WAHEALTH_SERVER__LOG_LEVEL=level)
    command = wahealth("serve", "--config", str(config), "--port", str(port))
    with running(command, env, log, f"http://127.0.0.1:{port}/readyz"):
        answer = httpx.get(
            f"http://127.0.0.1:{port}/v21.0/102290129340398?fields=health_status",
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
            trust_env=False,
        )
        assert answer.status_code == 200
    output = log.read_text()
    assert DEMO.graph_token not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = _requests(lines)
    if level == "warning":
        assert requests == []
        assert not [line for line in lines if line["level"] == "info"]
        return
    [line] = requests
    assert line["request_id"] == answer.headers["x-request-id"]
    assert (line["dialect"], line["account"], line["status"]) == ("graph", "a", 200)
    assert line["path"] == "/v21.0/102290129340398"
    assert line["client"] == "127.0.0.1"
    assert line["level"] == "info"
