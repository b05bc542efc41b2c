"""``python -m marketplace``: simulate a marketplace or validate a data directory."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from marketplace.cli import UserError, fail, load_tables_or_report, log, rows_or_report
from marketplace.sim_world import MARKETS, SCENARIOS
from marketplace.simulate import SimConfig
from marketplace.stage import simulate_to_directory
from marketplace.validate import is_partitioned


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m marketplace`` (simulate or validate)."""
    parser = argparse.ArgumentParser(
        prog="python -m marketplace",
        description="The raw marketplace tables: simulate a realistic marketplace, or "
        "check that a data directory meets the data contract.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate",
        help="write a simulated marketplace (six tables + truth/)",
        description="Write the six raw tables to DIR and the hidden truth to DIR/truth/ "
        "(expected_gmv.parquet, creator_traits.parquet). Same seed, same bytes.",
    )
    sim.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output data directory (created; must be empty unless --overwrite)",
    )
    sim.add_argument(
        "--creators",
        type=int,
        default=SimConfig.creators,
        help="number of creators (default %(default)s)",
    )
    sim.add_argument(
        "--days", type=int, default=SimConfig.days, help="days of history (default %(default)s)"
    )
    sim.add_argument(
        "--seed", type=int, default=SimConfig.seed, help="random seed (default %(default)s)"
    )
    sim.add_argument(
        "--markets",
        default=",".join(MARKETS),
        metavar="CODES",
        help="comma-separated markets to simulate (default all: %(default)s)",
    )
    sim.add_argument(
        "--scenario",
        default="default",
        metavar="NAME",
        help="the kind of world to simulate (default %(default)s): "
        + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    sim.add_argument(
        "--chunk-creators",
        type=int,
        metavar="N",
        help="draw and write N creators at a time (rounded up to whole blocks of "
        f"{SimConfig.block:,}), each table as a directory of Parquet parts: "
        "bounded memory for large marketplaces; the data is the same "
        "whatever N (default: everything at once, one file per table)",
    )
    sim.add_argument(
        "--csv", action="store_true", help="write the raw tables as CSV instead of Parquet"
    )
    sim.add_argument(
        "--overwrite", action="store_true", help="replace DIR if it already holds files"
    )

    val = sub.add_parser(
        "validate",
        help="check a data directory against the data contract",
        description="Exit 0 when DIR meets the data contract; otherwise print every "
        "violation (table.column: rule (rows, e.g. ids)) and exit 1. "
        "Nothing is written into DIR.",
    )
    val.add_argument("directory", type=Path, metavar="DIR", help="data directory to check")
    return parser.parse_args(argv)


def run_simulate(args: argparse.Namespace) -> int:
    """``simulate``: draw a marketplace and write its tables and truth to --out; the exit status."""
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        return fail(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    try:
        cfg = SimConfig(
            creators=args.creators,
            days=args.days,
            seed=args.seed,
            scenario=args.scenario,
            markets=tuple(m.strip().upper() for m in args.markets.split(",") if m.strip()),
        )
    except ValueError as err:
        return fail(str(err))
    chunked = args.chunk_creators is not None and args.chunk_creators < cfg.creators
    if chunked and args.csv:
        return fail("--csv writes one file per table: it does not go with --chunk-creators")
    if args.chunk_creators is not None and args.chunk_creators < 1:
        return fail(f"--chunk-creators must be at least 1, got {args.chunk_creators}")
    started = time.perf_counter()
    log(
        f"simulating {cfg.creators:,} creators over {cfg.days} days (seed {cfg.seed}, "
        f"scenario {cfg.scenario}) ..."
    )
    rows = simulate_to_directory(
        cfg, out, csv=args.csv, chunk_creators=args.chunk_creators, progress=log
    )
    log(
        f"wrote {out}: {rows['posts']:,} posts, {rows['campaigns']:,} campaigns, "
        f"{rows['invitations']:,} invitations in {time.perf_counter() - started:.1f}s"
    )
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """``validate``: print every violation of the data contract in DIR, or a summary; the exit status."""
    try:
        if is_partitioned(args.directory):  # directories of parts: checked part by part
            counts = rows_or_report(args.directory, recheck=True)
        else:
            counts = {
                name: len(frame)
                for name, frame in load_tables_or_report(args.directory, recheck=True).items()
            }
    except UserError as err:
        return fail(str(err))
    rows = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    print(f"{args.directory}: meets the data contract ({rows} rows)")
    return 0


def main(argv=None) -> int:
    """``python -m marketplace``: simulate or validate; the exit status."""
    args = parse_args(argv)
    return run_simulate(args) if args.command == "simulate" else run_validate(args)


if __name__ == "__main__":
    sys.exit(main())
