"""Latency and memory of the explorer over a snapshot store, against a running server:
``python benchmarks/explorer.py --model URI --store STORE``.

Starts ``python -m explorer --store STORE`` on a free 127.0.0.1 port and waits for
``/api/health`` (the start-up time). Then, measured by the client (JSON included):
1. creator pages (``GET /api/creators/ID``) on every stored day, the very first request
   included (cold caches), for creators of the briefed markets;
2. sequential ``POST /api/partner-lists`` (after warm-up requests): briefs on the stored
   days rotating over the markets given, every category, two follower minimums and two
   commission rates, top_k 50; the server's resident memory (from /proc) every 100;
3. the whole candidate list of the two largest markets ranked (no follower minimum, the
   model's default commission), top_k 50 and top_k 1,000;
4. ``--clients`` concurrent clients for ``--seconds`` (briefs and creator pages mixed):
   requests, errors and latency.
Then it stops the server. ``--markdown FILE`` appends the report to FILE.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
from run import emit, machine  # benchmarks/run.py, beside this script

PYTHON = sys.executable
TARGET = (
    "ready < 30 s; resident memory < 3 GiB; brief p95 < 300 ms at 30,000 candidates and < 1 s "
    "for the largest market's whole list; creator page p95 < 300 ms on any stored day, first "
    "request included; 20 clients for 60 s with no error; memory flat over 1,000 requests"
)


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


def timed(url: str, payload: dict | None = None) -> tuple[int, dict, float]:
    t0 = time.perf_counter()
    status, body = call(url, payload)
    return status, body, time.perf_counter() - t0


def rss_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def percentiles(seconds) -> str:
    s = pd.Series(seconds, dtype=float)
    return f"p50 {s.quantile(0.5) * 1000:.0f} ms, p95 {s.quantile(0.95) * 1000:.0f} ms, max {s.max() * 1000:.0f} ms"


def briefs(
    markets: list[str], categories: list[str], days: list[str], n: int, top_k: int
) -> list[dict]:
    """``n`` briefs cycling over markets, categories and stored days, with no follower
    minimum and a minimum of 1,000 in turn, the model's default commission or 0.1."""
    out = []
    for i in range(n):
        brief = {
            "market": markets[i % len(markets)],
            "category": categories[(i // len(markets)) % len(categories)],
            "as_of": days[(i // 7) % len(days)],
            "top_k": top_k,
            "min_followers": 1000 * ((i // 3) % 2),
        }
        if i % 4 == 3:
            brief["commission_rate"] = 0.1
        out.append(brief)
    return out


def concurrent(base: str, plan: list[dict], pages: list[str], clients: int, seconds: float):
    """Each client alternates briefs and creator pages until ``seconds`` pass: (latencies,
    errors, requests)."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            if i % 2:
                status, _, s = timed(f"{base}/api/partner-lists", plan[i % len(plan)])
            else:
                status, _, s = timed(pages[i % len(pages)])
            with lock:
                latencies.append(s)
                if status != 200:
                    errors.append(status)
            i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="URI", help="MLflow model URI")
    parser.add_argument("--store", required=True, type=Path, metavar="STORE", help="snapshot store")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    parser.add_argument(
        "--markets",
        default=None,
        help="comma-separated markets to brief (default: the two largest)",
    )
    parser.add_argument("--requests", type=int, default=1000, help="sequential timed briefs")
    parser.add_argument("--warmup", type=int, default=5, help="untimed briefs first")
    parser.add_argument("--creator-pages", type=int, default=40, help="timed creator pages")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=60, help="concurrent phase length")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--markdown", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args(argv)

    manifest = json.loads((args.store / "manifest.json").read_text())
    days = sorted(manifest["days"])
    sizes = manifest["days"][days[-1]]["markets"]
    markets = (
        args.markets.split(",")
        if args.markets
        else sorted(sizes, key=lambda m: -sizes[m]["creators"])[:2]
    )
    categories = manifest["days"][days[-1]]["categories"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [PYTHON, "-m", "explorer", "--model", args.model, "--store", str(args.store)]
    command += ["--port", str(port)]
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
            time.sleep(0.2)
        startup = time.perf_counter() - started
        health = call(f"{base}/api/health")[1]
        rss_start = rss_gib(server.pid)
        print(f"ready in {startup:.1f}s, {rss_start:.2f} GiB", file=sys.stderr)
        # 1. creator pages, cold: creators of the briefed markets' lists, every stored day
        listed = call(
            f"{base}/api/partner-lists",
            {"market": markets[0], "category": categories[0], "top_k": args.creator_pages},
        )[1]["rows"]
        page_urls = [
            f"{base}/api/creators/{urllib.request.quote(row['creator_id'], safe='')}"
            f"?category={categories[k % len(categories)]}&as_of={days[k % len(days)]}"
            for k, row in enumerate(listed)
        ]
        page_seconds = []
        for url in page_urls:
            status, body, s = timed(url)
            assert status == 200, body
            page_seconds.append(s)
        # 2. sequential briefs
        plan = briefs(markets, categories, days, args.warmup + args.requests, args.top_k)
        for brief in plan[: args.warmup]:
            status, body = call(f"{base}/api/partner-lists", brief)
            assert status == 200, body
        rss = [(0, rss_gib(server.pid))]
        timings = []
        for i, brief in enumerate(plan[args.warmup :], start=1):
            status, body, s = timed(f"{base}/api/partner-lists", brief)
            assert status == 200, body
            kind = (
                f"{'min 1,000' if brief['min_followers'] else 'min 0'}, "
                f"{'commission 0.1' if 'commission_rate' in brief else 'default commission'}"
            )
            timings.append((brief["market"], kind, body["candidates"], s))
            if i % 100 == 0:
                rss.append((i, rss_gib(server.pid)))
                print(f"{i} briefs, last {s:.3f}s, {rss[-1][1]:.2f} GiB", file=sys.stderr)
        # 3. the two largest markets' whole candidate lists ranked, top 50 and top 1,000
        whole = []
        for market in sorted(sizes, key=lambda m: -sizes[m]["creators"])[:2]:
            for top_k in (50, 1000):
                for category in categories[-3:]:
                    status, body, s = timed(
                        f"{base}/api/partner-lists",
                        {"market": market, "category": category, "top_k": top_k},
                    )
                    assert status == 200, body
                    whole.append((market, top_k, body["candidates"], s))
        # 4. concurrent clients
        latencies, errors = concurrent(base, plan, page_urls, args.clients, args.seconds)
        rss_end = rss_gib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    frame = pd.DataFrame(timings, columns=["market", "kind", "candidates", "seconds"])
    lines = [
        "| market | briefs | candidates per brief | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    groups = [(str(m), g) for m, g in frame.groupby("market", sort=False)]
    groups += [(f"{m}, {k}", g) for (m, k), g in frame.groupby(["market", "kind"], sort=True)]
    for label, group in groups:
        s = group["seconds"] * 1000
        lines.append(
            f"| {label} | {len(group)} | {group['candidates'].min():,}-{group['candidates'].max():,} "
            f"| {s.quantile(0.5):.0f} | {s.quantile(0.95):.0f} | {s.max():.0f} |"
        )
    memory = ", ".join(f"{n}: {g:.2f}" for n, g in rss)
    text = (
        f"\n### {time.strftime('%Y-%m-%d')}: explorer over a store, "
        f"{health['data']['creators']:,} creators, {len(days)} stored days\n\n"
        f"Machine: {machine()}. Command: `python benchmarks/explorer.py --model {args.model} "
        f"--store {args.store} --requests {args.requests}`. Model: {health['model_version']}.\n\n"
        f"- ready (health answers) in {startup:.1f} s, resident memory {rss_start:.2f} GiB\n"
        f"- creator pages on every stored day, first request included ({len(page_seconds)}): "
        f"first {page_seconds[0] * 1000:.0f} ms; {percentiles(page_seconds)}\n"
        f"- whole candidate list (three categories each, no follower minimum, default "
        f"commission): "
        + "; ".join(
            f"{m} top_k {k:,}: {n:,} candidates in {s * 1000:.0f} ms" for m, k, n, s in whole
        )
        + f"\n- {args.clients} concurrent clients for {args.seconds:.0f} s: {len(latencies):,} "
        f"requests, {len(errors)} errors; {percentiles(latencies)}; resident memory after "
        f"{rss_end:.2f} GiB\n\nSequential briefs (top_k {args.top_k}, after {args.warmup} "
        f"warm-up):\n\n"
        + "\n".join(lines)
        + f"\n\nServer resident memory (GiB) after N sequential briefs: {memory} (growth "
        f"{rss[-1][1] - rss[0][1]:+.2f} GiB over {rss[-1][0]} briefs). Targets: {TARGET}.\n"
    )
    emit(text, args.markdown)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
