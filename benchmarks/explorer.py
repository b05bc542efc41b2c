"""Latency and memory of the explorer's partner-list API against a running server:
``python benchmarks/explorer.py --model URI --data DIR``.

Starts ``python -m explorer`` on a free 127.0.0.1 port, waits for ``/api/health``
(the start-up time: reading, validating and indexing the data), then sends a bounded
number of sequential ``POST /api/partner-lists`` requests (warm-up requests first, not
counted): briefs as of the data's last day (the default) rotating over the markets
given, every category, two follower minimums and two commission rates, top_k 50; then a
few briefs as of earlier days, reported apart. It reports per market the candidates per brief and the latency
(p50, p95, max, measured by the client, JSON included), the server's resident memory
after the warm-up and every 100 requests (from /proc), and a few creator-page timings;
then stops the server. ``--markdown FILE`` appends the table to FILE.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from run import emit, machine  # benchmarks/run.py, beside this script

PYTHON = sys.executable
TARGET = "p95 < 1 s warm at 30,000+ candidates; memory flat over 1,000 requests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, payload: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {"detail": err.read().decode()}
    except urllib.error.URLError:
        return 0, {}


def rss_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def briefs(
    markets: list[str],
    categories: list[str],
    n: int,
    top_k: int,
    earlier: pd.Timestamp | None = None,
) -> list[dict]:
    """``n`` briefs cycling over markets and categories, with no follower minimum and a
    minimum of 1,000 in turn, and the model's default commission or 0.1 in turn; as of
    the data's last day (the default), or of the 27 days before ``earlier`` when given."""
    out = []
    for i in range(n):
        brief = {
            "market": markets[i % len(markets)],
            "category": categories[(i // len(markets)) % len(categories)],
            "top_k": top_k,
            "min_followers": 1000 * ((i // 3) % 2),
        }
        if i % 4 == 3:
            brief["commission_rate"] = 0.1
        if earlier is not None:
            brief["as_of"] = (earlier - pd.Timedelta(days=1 + i % 27)).isoformat()
        out.append(brief)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="URI", help="MLflow model URI")
    parser.add_argument("--data", required=True, type=Path, metavar="DIR", help="data directory")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    parser.add_argument(
        "--markets",
        default=None,
        help="comma-separated markets to brief (default: the two largest)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=1000,
        help="timed requests, sequential (default %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests first")
    parser.add_argument(
        "--earlier-days",
        type=int,
        default=20,
        help="timed requests as of earlier days, after the others (their "
        "candidates' features are built per request)",
    )
    parser.add_argument(
        "--creator-pages",
        type=int,
        default=10,
        help="timed creator profile requests after the briefs",
    )
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=2400,
        help="stop sending after this long (default %(default)s)",
    )
    parser.add_argument("--markdown", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args(argv)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        PYTHON,
        "-m",
        "explorer",
        "--model",
        args.model,
        "--data",
        str(args.data),
        "--port",
        str(port),
    ]
    if args.tracking_uri:
        command += ["--tracking-uri", args.tracking_uri]
    log_path = Path(f"/tmp/explorer-bench-{port}.log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        while call(f"{base}/api/health", timeout=5)[0] != 200:
            if server.poll() is not None:
                raise SystemExit(f"explorer exited; see {log_path}")
            time.sleep(0.5)
        startup = time.perf_counter() - started
        health = call(f"{base}/api/health")[1]
        rss_start = rss_gib(server.pid)
        print(f"started in {startup:.1f}s, {rss_start:.2f} GiB: {health}", file=sys.stderr)
        creators = pd.read_parquet(args.data / "creators.parquet", columns=["market"])
        markets = (
            args.markets.split(",")
            if args.markets
            else list(creators["market"].value_counts().index[:2])
        )
        categories = sorted(
            pd.read_parquet(args.data / "campaigns.parquet", columns=["category"])[
                "category"
            ].unique()
        )
        last_day = pd.Timestamp(health["data"]["last_day"], tz="UTC")
        plan = briefs(markets, categories, args.warmup + args.requests, args.top_k)
        plan += briefs(markets, categories, args.earlier_days, args.top_k, earlier=last_day)
        for brief in plan[: args.warmup]:
            status, body = call(f"{base}/api/partner-lists", brief)
            assert status == 200, body
        rss = [(0, rss_gib(server.pid))]
        timings = []
        deadline = time.monotonic() + args.max_seconds
        for i, brief in enumerate(plan[args.warmup :], start=1):
            t0 = time.perf_counter()
            status, body = call(f"{base}/api/partner-lists", brief)
            seconds = time.perf_counter() - t0
            assert status == 200, body
            timings.append((brief["market"], "as_of" in brief, body["candidates"], seconds))
            if i % 100 == 0 and "as_of" not in brief:
                rss.append((i, rss_gib(server.pid)))
                print(f"{i} requests, last {seconds:.3f}s, {rss[-1][1]:.2f} GiB", file=sys.stderr)
            if time.monotonic() > deadline:
                break
        some = call(f"{base}/api/partner-lists", plan[0])[1]["rows"][: args.creator_pages]
        pages = []
        for row in some:
            t0 = time.perf_counter()
            status, _ = call(
                f"{base}/api/creators/{urllib.request.quote(row['creator_id'], safe='')}"
                f"?category={plan[0]['category']}"
            )
            assert status == 200
            pages.append(time.perf_counter() - t0)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    frame = pd.DataFrame(timings, columns=["market", "earlier", "candidates", "seconds"])
    lines = [
        "| as_of | market | requests | candidates per brief | p50 s | p95 s | max s |",
        "|---|---|---|---|---|---|---|",
    ]
    for (earlier, market), group in frame.groupby(["earlier", "market"], sort=False):
        s = group["seconds"]
        lines.append(
            f"| {'an earlier day' if earlier else 'last day (default)'} | {market} | "
            f"{len(group)} | {group['candidates'].min():,}-"
            f"{group['candidates'].max():,} | {s.quantile(0.5):.3f} | "
            f"{s.quantile(0.95):.3f} | {s.max():.3f} |"
        )
    memory = ", ".join(f"{n}: {g:.2f}" for n, g in rss)
    text = (
        f"\n### {time.strftime('%Y-%m-%d')}: explorer, {health['data']['creators']:,} "
        f"creators\n\nMachine: {machine()}. Command: `python benchmarks/explorer.py "
        f"--model {args.model} --data {args.data} --requests {args.requests} "
        f"--earlier-days {args.earlier_days}`. "
        f"Model: {health['model_version']}. Start-up (read, validate, index, ready candidates): "
        f"{startup:.1f} s. Sequential `POST /api/partner-lists`, top_k {args.top_k}, "
        f"after {args.warmup} warm-up requests; latency as the client sees it.\n\n"
        + "\n".join(lines)
        + f"\n\nServer resident memory (GiB) after N timed requests: {memory} "
        f"(growth {rss[-1][1] - rss[0][1]:+.2f} GiB over {rss[-1][0]} requests). "
        f"Creator profile (`GET /api/creators/ID`, six monthly points): "
        f"p50 {np.median(pages):.2f} s, max {max(pages):.2f} s over {len(pages)}. "
        f"Target: {TARGET}.\n"
    )
    emit(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
