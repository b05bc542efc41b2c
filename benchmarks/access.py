"""The cost of the explorer's access checks per request (key lookup, rate limit, audit
line, scope check): ``python benchmarks/access.py --model URI --data DIR``.

Two measurements:

1. **A real server.** Starts ``python -m explorer`` twice on free 127.0.0.1 ports, once
   without keys and once with ``--keys`` (a key file of ``--keys-in-file`` keys; the one
   used reads the largest market; the rate limit set high enough never to refuse), and
   sends ``--requests`` sequential ``GET /api/health`` to each over a kept-alive
   connection, alternating between them so both see the same machine load. The health
   check computes nothing, so the difference of the two latencies is what the access
   layer adds to every request (authentication, rate limit, audit line, middleware).
2. **The checks in-process**, each timed over many calls: the key lookup in a file of
   ``--keys-in-file`` keys, the rate limit, an audit line, and the scope checks of a brief
   and of a creator (over 100,000 creators).

``--markdown FILE`` appends the table to FILE.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from run import emit, machine  # benchmarks/run.py, beside this script

# benchmarks/explorer.py, beside this script, would shadow the explorer package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.access import AuditLog, KeyFile, RateLimit, add_key  # noqa: E402
from explorer.guard import brief_in_scope, creator_scope  # noqa: E402

PYTHON = sys.executable
TARGET = "under 5 ms per request"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def get(connection: http.client.HTTPConnection, path: str, headers: dict) -> int:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def wait_until_up(port: int, headers: dict, server: subprocess.Popen, log_path: Path) -> None:
    while True:
        if server.poll() is not None:
            raise SystemExit(f"explorer exited; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if get(connection, "/api/health", headers) == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)


def server_latencies(args, keys: Path, secret: str, workdir: Path) -> dict[str, np.ndarray]:
    """Seconds per ``GET /api/health`` without keys and with them, alternating."""
    base = [PYTHON, "-m", "explorer", "--model", args.model, "--data", str(args.data)]
    if args.tracking_uri:
        base += ["--tracking-uri", args.tracking_uri]
    ports = {"without keys": free_port(), "with keys": free_port()}
    headers = {"without keys": {}, "with keys": {"Authorization": f"Bearer {secret}"}}
    extra = {
        "without keys": [],
        "with keys": ["--keys", str(keys), "--rate", "1e9", "--burst", str(10**9)],
    }
    servers = {
        name: start([*base, "--port", str(port), *extra[name]], workdir / f"{port}.log")
        for name, port in ports.items()
    }
    try:
        for name, server in servers.items():
            wait_until_up(ports[name], headers[name], server, workdir / f"{ports[name]}.log")
        connections = {
            name: http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for name, port in ports.items()
        }
        seconds: dict[str, list[float]] = {name: [] for name in ports}
        for i in range(args.warmup + args.requests):
            for name in ports if i % 2 else reversed(list(ports)):
                t0 = time.perf_counter()
                status = get(connections[name], "/api/health", headers[name])
                elapsed = time.perf_counter() - t0
                assert status == 200, (name, status)
                if i >= args.warmup:
                    seconds[name].append(elapsed)
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGINT)
        for server in servers.values():
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return {name: np.array(s) for name, s in seconds.items()}


def per_call(function, number: int) -> float:
    """Median over 5 repeats of the seconds per call of ``function``."""
    return float(np.median(timeit.repeat(function, number=number, repeat=5)) / number)


def check_timings(keys: Path, secret: str, market: str, workdir: Path) -> dict[str, float]:
    """Seconds per call of each check, in-process."""
    key_file = KeyFile(keys)
    key = key_file.lookup(secret)
    limit = RateLimit(1e9, 10**9)
    audit = AuditLog(workdir / "bench.audit.jsonl")
    n = 100_000
    creators = pd.DataFrame(
        {"market": np.where(np.arange(n) % 2, market, "XX")},
        index=pd.Index([f"c{i:06d}" for i in range(n)], name="creator_id", dtype="str"),
    )
    in_scope = creator_scope(SimpleNamespace(creators=creators))
    request = SimpleNamespace(state=SimpleNamespace(key=key, audit={}))
    out = {
        "key lookup (SQLite, indexed)": per_call(lambda: key_file.lookup(secret), 2000),
        "rate limit (token bucket)": per_call(lambda: limit.wait("k"), 20000),
        "audit line (JSON, appended)": per_call(
            lambda: audit.write(key="k", method="GET", path="/api/health", status=200), 2000
        ),
        "brief scope check": per_call(
            lambda: brief_in_scope(request, {"market": market, "category": "beauty"}), 20000
        ),
        "creator scope check (100,000 creators)": per_call(
            lambda: in_scope(request, "c000001", None), 20000
        ),
    }
    audit.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="URI", help="MLflow model URI")
    parser.add_argument("--data", required=True, type=Path, metavar="DIR", help="data directory")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    parser.add_argument(
        "--requests", type=int, default=2000, help="timed requests per server (default 2000)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests first")
    parser.add_argument(
        "--keys-in-file", type=int, default=1000, help="keys in the key file (default 1000)"
    )
    parser.add_argument("--markdown", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args(argv)

    market = str(
        pd.read_parquet(args.data / "creators.parquet", columns=["market"])["market"]
        .value_counts()
        .index[0]
    )
    with tempfile.TemporaryDirectory(prefix="access-bench-") as tmp:
        workdir = Path(tmp)
        keys = workdir / "bench.keys"
        for i in range(args.keys_in_file - 1):
            add_key(keys, f"partner-{i}", frozenset({market}), None)
        secret = add_key(keys, "bench", frozenset({market}), None)
        started = time.perf_counter()
        checks = check_timings(keys, secret, market, workdir)
        latencies = server_latencies(args, keys, secret, workdir)
        print(f"measured in {time.perf_counter() - started:.0f}s", file=sys.stderr)

    ms = {name: s * 1000 for name, s in latencies.items()}
    lines = [
        f"\nMachine: {machine()}. Command: `python benchmarks/access.py --data {args.data} "
        f"--requests {args.requests} --keys-in-file {args.keys_in_file}`. Target: {TARGET}.\n",
        "| server | requests | p50 ms | mean ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for name, values in ms.items():
        lines.append(
            f"| {name} | {len(values)} | {np.median(values):.2f} | {values.mean():.2f} "
            f"| {np.percentile(values, 95):.2f} |"
        )
    added = np.median(ms["with keys"]) - np.median(ms["without keys"])
    added_mean = ms["with keys"].mean() - ms["without keys"].mean()
    lines.append(
        f"\nAdded per request by the access layer: {added:.2f} ms at the median, "
        f"{added_mean:.2f} ms on average.\n"
    )
    lines += ["| check, in-process | µs per call |", "|---|---|"]
    lines += [f"| {name} | {seconds * 1e6:.1f} |" for name, seconds in checks.items()]
    emit("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
