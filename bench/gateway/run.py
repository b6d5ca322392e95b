"""Gateway benchmark: cache-hit requests/s and latency per dialect, against a bare route.

    .venv/bin/python bench/gateway/run.py [--duration 5] [--concurrency 64] [--rounds 1]

Starts one granian worker, with the options `wahealth serve` uses, serving the real app
plus `/bench/bare` (a pre-serialized JSON body behind an API-key check, see bench_app.py)
on loopback, pinned to one core, with the load generator pinned to the other(s). The
account's limit is 1,000,000 requests/s and the cache TTL a day, so every measured request
is a cache hit the limiter admits. Each target is warmed, then measured for `--duration`
seconds at a fixed concurrency; `--rounds` repeats everything and keeps the best round.

Every target goes through the same client: wrk (one thread) replaying raw requests from a
file with `replay.lua`. Bare, 360dialog and Graph replay one request; CAMS replays
requests pre-signed like the official SDK, one nonce each (presign.py), enough for the
rate the warm-up saw. "ratio" is req/s over the bare route's in the same round. The server
column should be near 100%: then the server, not the client, set the pace.

Then, unless `--no-inprocess`, `inprocess.py` times each dialect's ASGI app called
directly (no sockets) in microseconds per request.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import presign
from bench_app import BARE_KEY_ENV, BARE_KEY_HEADER, BARE_PATH

from wahealth.auth.tokens import (
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
)

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PHONE_NUMBER_ID = "106540352242922"
PHONE_NUMBER = "8613800000001"
SPACE = "demo-space"
WABAS = ("102290129340398", "299399000000001")
TARGETS = ("bare", "bare-sdk", "d360", "graph", "cams", "gate")
LABELS = {
    "bare": "bare route",
    "bare-sdk": "bare, SDK req",
    "d360": "360dialog",
    "graph": "Graph",
    "cams": "CAMS",
    "gate": "gate",
}
# The pre-send gate for the demo number and template: two nodes, one request.
GATE_PATH = (
    f"/api/v1/gate?space={SPACE}&phone_number={PHONE_NUMBER}&template=order_update&language=en"
)
CAMS_PARAMS = {"CustSpaceId": SPACE, "NodeType": "phone", "PhoneNumber": PHONE_NUMBER}
MIN_SIGNED = 2_000  # pre-signed CAMS requests per wrk run, at least


@dataclass(frozen=True)
class Keys:
    bare: str
    access_key_id: str
    access_key_secret: str
    d360: str
    graph: str

    @classmethod
    def generate(cls) -> Keys:
        return cls(new_graph_token(), new_access_key_id(), new_access_key_secret(),
                   new_d360_key(), new_graph_token())  # fmt: skip


@dataclass(frozen=True)
class Row:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    server_cpu: float
    client_cpu: float
    body_bytes: int
    prepared: int  # requests in the replay file
    sent: int  # requests wrk sent from it (more than prepared: nonces repeated)


def _config(workdir: Path, port: int, keys: Keys) -> Path:
    path = workdir / "bench.toml"
    path.write_text(
        f"""
[server]
host = "{HOST}"
port = {port}
[storage]
url = "sqlite+aiosqlite:///{workdir / "bench.db"}"
[security]
master_key_file = "{workdir / "bench.key"}"
[cache]
ttl_seconds = 86400
[monitor]
enabled = false
[[spaces]]
id = "{SPACE}"
account = "bench"
wabas = {json.dumps(list(WABAS))}
[[accounts]]
name = "bench"
qps = 1000000
access_keys = [{{ id = "{keys.access_key_id}", secret = "{keys.access_key_secret}" }}]
d360_keys = [{{ key = "{keys.d360}", phone_number_id = "{PHONE_NUMBER_ID}" }}]
graph_tokens = [{{ token = "{keys.graph}" }}]
""",
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_split() -> tuple[set[int], set[int]] | None:
    """(server cores, client cores), or None when there is only one core to share."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


def _process_tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and its descendants (granian runs the app in a child process)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


@contextmanager
def _server(config: Path, keys: Keys, cores: set[int] | None, log: Path) -> Iterator[int]:
    env = {
        **os.environ,
        "WAHEALTH_CONFIG": str(config),
        BARE_KEY_ENV: keys.bare,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(HERE / "server.py")]
    pin: Callable[[], None] | None = None
    if cores is not None and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(map(str, sorted(cores))), *command]
    elif cores is not None:
        pin = functools.partial(os.sched_setaffinity, 0, cores)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=pin
        )
        try:
            yield process.pid
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(base_url: str, server_log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"the server did not become ready; its log:\n{server_log.read_text()}")


class Requests:
    """The replay files of one run: fixed requests, and CAMS ones signed on demand."""

    def __init__(self, workdir: Path, port: int, keys: Keys) -> None:
        host = f"{HOST}:{port}"
        self._workdir = workdir
        self._fixed = {
            "bare": presign.plain_get(host, BARE_PATH, {BARE_KEY_HEADER.decode(): keys.bare}),
            "d360": presign.plain_get(host, "/health_status", {"D360-API-KEY": keys.d360}),
            "graph": presign.plain_get(
                host,
                f"/v21.0/{PHONE_NUMBER_ID}?fields=health_status",
                {"Authorization": f"Bearer {keys.graph}"},
            ),
            "gate": presign.plain_get(host, GATE_PATH, {"Authorization": f"Bearer {keys.graph}"}),
        }
        self._signer = presign.CamsPresigner(
            host, keys.access_key_id, keys.access_key_secret, CAMS_PARAMS
        )
        self._signer.check()
        # The bare route sent the CAMS SDK's request (its 11 headers, its query): how much
        # of CAMS's cost is the server reading a larger request rather than the app.
        _, _, sdk_rest = next(self._signer.requests(1)).decode("latin-1").partition("\r\n")
        self._fixed["bare-sdk"] = (
            f"POST {BARE_PATH} HTTP/1.1\r\n{BARE_KEY_HEADER.decode()}: {keys.bare}\r\n{sdk_rest}"
        ).encode("latin-1")

    def one(self, target: str) -> bytes:
        """One request for `target` (CAMS: freshly signed)."""
        return self._fixed.get(target) or next(self._signer.requests(1))

    def file(self, target: str, count: int) -> tuple[Path, int]:
        """A replay file for `target`: its one request, or `count` signed CAMS requests."""
        path = self._workdir / f"{target}.requests"
        if target in self._fixed:
            return path, presign.write_requests(path, [self._fixed[target]])
        return path, presign.write_requests(path, self._signer.requests(max(count, MIN_SIGNED)))


def _check(port: int, requests: Requests, targets: list[str]) -> dict[str, int]:
    """One request per target (this also fills the cache); their body sizes."""
    sizes: dict[str, int] = {}
    for target in targets:
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(requests.one(target))
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer) < _expected_length(answer):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"{target}: expected 200, got {head.decode(errors='replace')}\n{body!r}")
        sizes[target] = len(body)
    return sizes


def _expected_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
    return len(head) + 4 + (int(match.group(1)) if match else 0)


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _WRK_UNITS[match.group(2)] if match else float("nan")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    client_cpu: float
    server_cpu: float
    sent: int


def _pid_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    port: int, replay_file: Path, concurrency: int, seconds: int, server_pid: int
) -> WrkResult:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(HERE / "replay.lua"), f"http://{HOST}:{port}", "--", str(replay_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    # replay.lua says when it has read its file; the clocks start then, not at exec.
    first = process.stdout.readline()
    client_before = _pid_cpu_seconds(process.pid)
    server_before, wall_before = _process_tree_cpu_seconds(server_pid), time.perf_counter()
    before = os.times()
    out = first + process.stdout.read()
    process.wait()
    wall = time.perf_counter() - wall_before
    after, server_after = os.times(), _process_tree_cpu_seconds(server_pid)
    if process.returncode or not first.startswith("replay: ready"):
        sys.exit(f"wrk failed ({process.returncode}):\n{out}")
    client = (
        (after.children_user - before.children_user)
        + (after.children_system - before.children_system)
        - client_before
    )
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    failed = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    sent = re.search(r"replay: requests=\d+ sent=(\d+)", out)
    if errors:
        print(f"  wrk: {errors.group(0)}", file=sys.stderr)
    return WrkResult(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_wrk_ms(out, "50%"),
        p99_ms=_wrk_ms(out, "99%"),
        failed=int(failed.group(1)) if failed else 0,
        client_cpu=client / wall,
        server_cpu=(server_after - server_before) / wall,
        sent=int(sent.group(1)) if sent else 0,
    )


def _run_one(
    target: str, port: int, requests: Requests, server_pid: int, args: argparse.Namespace,
    expected_rps: float, body_bytes: int,
) -> Row:  # fmt: skip
    """Warm up, then measure; CAMS files are sized for the rate seen (times 1.5)."""
    warmup, duration = max(1, round(args.warmup)), max(1, round(args.duration))
    path, _ = requests.file(target, int(expected_rps * warmup * 1.5))
    warm = _wrk(port, path, args.concurrency, warmup, server_pid)
    path, prepared = requests.file(target, int(warm.rps * duration * 3))
    result = _wrk(port, path, args.concurrency, duration, server_pid)
    return Row(target, result.rps, result.p50_ms, result.p99_ms, result.failed,
               result.server_cpu, result.client_cpu, body_bytes, prepared, result.sent)  # fmt: skip


def _best(rows: list[Row]) -> tuple[dict[str, Row], dict[str, float]]:
    """Per target: the round with the most requests/s, and the spread of the rounds.

    Other processes on the machine only ever slow a round down, so the best round is the
    closest to what the server can do; a wide spread says the machine was not quiet.
    """
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.target, []).append(row)
    best = {target: max(group, key=lambda row: row.rps) for target, group in groups.items()}
    spread = {
        target: (best[target].rps - min(r.rps for r in group)) / best[target].rps
        for target, group in groups.items()
        if best[target].rps
    }
    return best, spread


def _print_table(rows: list[Row], rounds: int) -> None:
    best, spread = _best(rows)
    bare = best["bare"].rps
    header = (
        f"{'target':<13} {'req/s':>8} {'spread':>6} {'p50 ms':>6} {'p99 ms':>7} {'fail':>5} "
        f"{'ratio':>5} {'server':>6} {'client':>6} {'us/req':>6} {'body':>5}"
    )
    print(header)
    print("-" * len(header))
    for target, row in best.items():
        cost = row.server_cpu / row.rps * 1e6 if row.rps else float("nan")
        print(
            f"{LABELS[target]:<13} {row.rps:>8,.0f} {spread.get(target, 0):>6.0%} "
            f"{row.p50_ms:>6.2f} {row.p99_ms:>7.2f} {row.failed:>5} "
            f"{row.rps / bare if bare else float('nan'):>5.2f} {row.server_cpu:>6.0%} "
            f"{row.client_cpu:>6.0%} {cost:>6.1f} {row.body_bytes:>5}"
        )
        if row.sent > row.prepared > 1:
            print(f"  warning: {LABELS[target]} sent {row.sent:,} requests from {row.prepared:,} "
                  "pre-signed ones; the repeats failed on their used nonce")  # fmt: skip
    print(
        f"best of {rounds} round(s); spread: (max - min) / max req/s over the rounds.\n"
        "ratio: req/s / bare req/s; server, client: share of one core used while measuring\n"
        "(server: all its processes; near 100% means it set the pace); us/req: server CPU per\n"
        "request. CAMS: one pre-signed request, own nonce, per request sent. bare, SDK req:\n"
        "the bare route sent the CAMS SDK's request (its headers and query string)."
    )
    if "bare-sdk" in best and "cams" in best and best["bare-sdk"].rps:
        print(f"CAMS / bare with the SDK's request: {best['cams'].rps / best['bare-sdk'].rps:.2f}")


def _warn_if_busy() -> None:
    try:
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if load > 0.5:
        print(
            f"warning: load average {load:.2f} before starting: other processes share the "
            "cores, so figures will be low and noisy (--rounds 3 helps)",
            file=sys.stderr,
        )


def _inprocess(cores: set[int] | None, iterations: int) -> None:
    command = [sys.executable, str(HERE / "inprocess.py"), "--iterations", str(iterations)]
    if cores is not None and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(map(str, sorted(cores))), *command]
    print(flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per target")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each")
    parser.add_argument("--concurrency", type=int, default=64, help="open connections")
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything; keep the best")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write every round's rows to this file")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process timing")
    parser.add_argument("--iterations", type=int, default=20_000, help="in-process, per dialect")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if set(targets) - set(TARGETS) or "bare" not in targets:
        parser.error(f"--targets: a subset of {','.join(TARGETS)} that includes bare")
    targets.sort(key=TARGETS.index)  # bare first: CAMS sizes its first file by it
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")

    _warn_if_busy()
    keys = Keys.generate()
    split = _cpu_split()
    with tempfile.TemporaryDirectory(prefix="wahealth-bench-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        config = _config(workdir, port, keys)
        server_log = workdir / "server.log"
        with _server(config, keys, split[0] if split else None, server_log) as server_pid:
            if split:
                os.sched_setaffinity(0, split[1])  # wrk, started by us, inherits this
            _wait_ready(f"http://{HOST}:{port}", server_log)
            requests = Requests(workdir, port, keys)
            sizes = _check(port, requests, targets)
            print(
                f"server pid {server_pid} on cores {sorted(split[0]) if split else 'shared'}, "
                f"wrk on {sorted(split[1]) if split else 'shared'}; "
                f"{args.concurrency} connections, {args.warmup:g}s warm-up + "
                f"{args.duration:g}s per target, {args.rounds} round(s)",
                file=sys.stderr,
            )
            rows: list[Row] = []
            for round_number in range(1, args.rounds + 1):
                bare_rps = 0.0
                for target in targets:
                    print(f"  round {round_number}: {target}", file=sys.stderr)
                    row = _run_one(target, port, requests, server_pid, args, bare_rps,
                                   sizes[target])  # fmt: skip
                    bare_rps = row.rps if target == "bare" else bare_rps
                    rows.append(row)
    _print_table(rows, args.rounds)
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))
    if not args.no_inprocess:
        _inprocess(split[1] if split else None, args.iterations)


if __name__ == "__main__":
    main()
