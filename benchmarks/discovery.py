"""How fast are look-alikes and rising lists on a big market? (issue 21)

A query reads one market's candidates of one day (the cost grows with that market's
size, not with the rest of the store), so the benchmark builds a store whose largest
market has the candidates it would have in a store of ``--creators`` creators: the
latest day of a real store (``--store``, e.g. the demo's), its largest market's rows
copied until it is that big (as if every creator were a candidate: conservative) (each copy's ids suffixed ``~NNNN`` and its indices moved by
up to +-2 points, so copies do not tie), the other markets as they were. It then times,
in this process: the first (cold) read of the market in a category, look-alike queries
(``store.discovery.similar_rows``, k = 20, the explorer's API path without HTTP) for
``--queries`` random creators of the market on the warm cache, and the rising list
(cold, then warm). Figures go to stdout.

    python benchmarks/discovery.py --store demo/store --model models:/creator-scores@champion \\
        --creators 1000000 --out /tmp/big-store

``--as-is`` times a real big store itself instead (its latest day and largest market; its
earlier days give the rising list its momentum), e.g. the 1,000,000-creator store.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serving.model import load_model  # noqa: E402
from store.discovery import clear_caches, market_rows, rising_rows, similar_rows  # noqa: E402
from store.layout import day_record, market_file, publish_day, staging_folder, write_market  # noqa: E402
from store.read import open_store  # noqa: E402
from training.model import Scorer  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a real store to grow from")
    parser.add_argument(
        "--model", required=True, help="MLflow model URI, or a folder with a saved Scorer"
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI")
    parser.add_argument("--creators", type=int, default=1_000_000, help="store size to mimic")
    parser.add_argument("--out", type=Path, help="the grown store (replaced)")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="time --store itself (its latest day, its largest market), no growing: for a "
        "real big store, whose earlier days give the rising list its momentum",
    )
    parser.add_argument("--queries", type=int, default=200, help="look-alike queries timed")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def grown(frame: pd.DataFrame, copies: int, rng, jitter: list[str]) -> pd.DataFrame:
    """``copies`` copies of ``frame`` (ids suffixed), ``jitter`` columns moved +-2 points."""
    parts = []
    for r in range(copies):
        part = frame.copy()
        part["creator_id"] = part["creator_id"] + f"~{r:04d}"
        for c in jitter:
            part[c] = (part[c] + rng.uniform(-2, 2, len(part))).clip(0, 100)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def market_sizes(store, day: str) -> dict[str, int]:
    """Each market's candidates on ``day``."""
    return {m: v["creators"] for m, v in store.manifest["days"][day]["markets"].items()}


def largest_market(store) -> tuple[str, str, int]:
    """(the store's latest day, its largest market that day, that market's candidates)."""
    day = store.days[-1]
    sizes = market_sizes(store, day)
    market = max(sizes, key=sizes.get)
    return day, market, sizes[market]


def grow_store(source: Path, out: Path, creators: int, seed: int) -> tuple[str, str, int]:
    """The grown store (see the module): (day, market, its candidates)."""
    store = open_store(source)
    day, market, _ = largest_market(store)
    record = store.manifest["days"][day]
    sizes = market_sizes(store, day)
    # as if every creator were a candidate: a store of ``creators`` has fewer (conservative)
    copies = max(1, round(creators / sum(sizes.values())))
    rng = np.random.default_rng(seed)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    staged = staging_folder(out, day)
    rows = {}
    for m in sorted(sizes):
        frames = {
            t: pd.read_parquet(market_file(source, day, m, t)).assign(market=m)
            for t in ("creators", "categories", "targets")
        }
        if m == market:
            creators_frame = frames["creators"]
            index_columns = [c for c in creators_frame.columns if c.endswith("_index")]
            frames["creators"] = grown(creators_frame, copies, rng, index_columns)
            frames["categories"] = grown(frames["categories"], copies, rng, ["category_index"])
            for t in ("creators", "categories"):
                keys = ["creator_id"] + (["category"] if t == "categories" else [])
                frames[t] = frames[t].sort_values(keys, ignore_index=True)
        rows[m] = write_market(staged, m, frames)
    publish_day(out, staged, day, day_record(None, record["categories"], rows, "memory"))
    return day, market, rows[market]["creators"]


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.as_is:
        folder = args.store
        day, market, size = largest_market(open_store(folder))
        print(f"store as it is: {market} has {size:,} candidates on {day}")
    elif args.out is None:
        print("benchmarks/discovery.py: --out is needed unless --as-is", file=sys.stderr)
        return 2
    else:
        folder = args.out
        day, market, size = grow_store(args.store, args.out, args.creators, args.seed)
        print(
            f"grown store: {market} has {size:,} candidates on {day} "
            f"({time.perf_counter() - started:.0f}s)"
        )
    if Path(args.model).is_dir():  # a saved Scorer (booster.txt, scoring.json)
        folder = Path(args.model)
        scorer = Scorer.load(folder / "booster.txt", folder / "scoring.json")
        version = str(folder)
    else:
        scorer, version = load_model(args.model, args.tracking_uri)
    store = open_store(folder)
    category = store.categories(day)[0]
    clear_caches()
    t = time.perf_counter()
    rows = market_rows(store, day, market, category)
    cold = time.perf_counter() - t
    print(
        f"cold read of {market} in {category}: {cold * 1000:.0f} ms ({len(rows.creator_id):,} rows)"
    )
    rng = np.random.default_rng(args.seed)
    asked = rng.choice(rows.creator_id, size=args.queries, replace=False)
    times = []
    for creator_id in asked:
        t = time.perf_counter()
        similar_rows(store, scorer, version, str(creator_id), market, category, day, 20)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    print(
        f"look-alikes, k=20, warm: {args.queries} queries, p50 {np.percentile(ms, 50):.1f} ms, "
        f"p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms"
    )
    for label in ("cold", "warm"):
        t = time.perf_counter()
        listed, rising = rising_rows(store, scorer, version, market, None, day, 100)
        print(
            f"rising list (own categories), {label}: {(time.perf_counter() - t) * 1000:.0f} ms "
            f"({rising:,} rising, {len(listed)} shown)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
