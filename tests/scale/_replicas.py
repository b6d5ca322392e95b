"""Two `wahealth serve` replicas on one PostgreSQL and Redis, with a standalone emulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from cryptography.fernet import Fernet
from tests._databases import postgres_database
from tests._processes import (
    START_TIMEOUT_SECONDS,
    environment,
    free_port,
    start,
    stop,
    wahealth,
    wait_for,
)

TOKEN = "scale-out-token"
WABAS = ("102290129340398", "299399000000001")
PHONE = "106540352242922"
NODES = (
    "106540352242922",
    "105154286024403",
    "106540352242999",
    "2632273056924580",
    "102290129340398",
    "299399000000001",
)


@dataclass(frozen=True)
class Fleet:
    """Where the emulator and the replicas answer."""

    emulator: str
    replicas: tuple[str, str]

    def calls(self, *, times: bool = False) -> dict[str, object]:
        query = "?times=true" if times else ""
        answer = httpx.get(f"{self.emulator}/_emulator/calls{query}", trust_env=False)
        answer.raise_for_status()
        found: dict[str, object] = answer.json()
        return found

    def fault(self, fault: dict[str, int]) -> None:
        """What to do to the next Graph requests (see docs/emulator.md)."""
        answer = httpx.post(f"{self.emulator}/_emulator/faults", json=fault, trust_env=False)
        answer.raise_for_status()

    def reset_calls(self) -> None:
        httpx.delete(f"{self.emulator}/_emulator/calls", trust_env=False).raise_for_status()


def forget_shared_state(redis_url: str) -> None:
    """No report, lease or budget spend left in Redis by an earlier test."""
    with redis.Redis.from_url(redis_url) as client:
        keys = [
            *client.scan_iter(match="wahealth:budget:*"),
            *client.scan_iter(match="wahealth:lock:*"),
            *(f"wahealth:rc:{node}" for node in NODES),
        ]
        client.delete(*keys)


@contextmanager
def two_replicas(tmp_path: Path, redis_url: str, settings: str) -> Iterator[Fleet]:
    """An emulator and two replicas configured with `settings` (TOML sections) on top of
    the shared storage, Redis and upstream; each replica ready when the block starts."""
    forget_shared_state(redis_url)
    emulator_port, port1, port2 = free_port(), free_port(), free_port()
    env = environment(WAHEALTH_MASTER_KEY=Fernet.generate_key().decode())
    with postgres_database() as storage_url, ExitStack() as stack:
        config = tmp_path / "wahealth.toml"
        config.write_text(
            f"""{settings}
[storage]
url = "{storage_url}"
[ratelimit]
url = "{redis_url}"
[upstream]
kind = "meta"
base_url = "http://127.0.0.1:{emulator_port}"
access_token = "demo-meta-token"
[[spaces]]
id = "s"
account = "a"
wabas = {list(WABAS)!r}
[[accounts]]
name = "a"
qps = 100000
[[accounts.graph_tokens]]
token = "{TOKEN}"
""",
            encoding="utf-8",
        )
        emulator = start(
            wahealth("emulator", "--port", str(emulator_port)), env, tmp_path / "emulator.log"
        )
        stack.callback(stop, emulator)
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        wait_for(
            emulator,
            f"{emulator_url}/_emulator/calls",
            START_TIMEOUT_SECONDS,
            tmp_path / "emulator.log",
        )
        replicas = []
        for n, port in enumerate((port1, port2), start=1):
            log = tmp_path / f"replica{n}.log"
            command = wahealth("serve", "--config", str(config), "--port", str(port))
            replicas.append((start(command, env, log), port, log))
            stack.callback(stop, replicas[-1][0])
        for process, port, log in replicas:
            wait_for(process, f"http://127.0.0.1:{port}/readyz", START_TIMEOUT_SECONDS, log)
        yield Fleet(emulator_url, (f"http://127.0.0.1:{port1}", f"http://127.0.0.1:{port2}"))
