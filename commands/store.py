"""``python -m store build DATA --out STORE``: materialise daily snapshots;
``python -m store info STORE``: what a store holds."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from marketplace.cli import (
    TRACKING_URI_HELP,
    UserError,
    fail,
    load_tables_or_report,
    log,
    rows_or_report,
)
from scaleout.session import SparkError, add_engine_arguments
from store.build import build_in_memory, days_to_build, parse_span, requested_days
from store.layout import StoreError, check_files, day_name, drop_days, read_manifest
from store.snapshot import TARGET_QUANTILE

DAY = pd.Timedelta(days=1)


def parse_build_args(argv) -> argparse.Namespace:
    """The command line of ``python -m store build``."""
    parser = argparse.ArgumentParser(
        prog="python -m store build",
        description="Materialise, for each requested day D (as of D 00:00 UTC), every "
        "candidate creator of every market (a post in the 90 days before D) with its "
        "followers, tier, features, indices among its market and, per category, the "
        "category features, as Parquet partitioned by day and market with a manifest. "
        "Days the store already holds from the same data and feature registry are "
        "skipped; the others are written whole or not at all. The data is validated first.",
    )
    parser.add_argument("data", type=Path, metavar="DATA", help="data directory (raw tables)")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="STORE", help="the store (created if new)"
    )
    parser.add_argument(
        "--as-of",
        metavar="D",
        help="the (latest) day to build, YYYY-MM-DD (default: the day after the data's last post)",
    )
    parser.add_argument(
        "--every",
        metavar="Nd",
        help="also build every N days back from --as-of (e.g. 30d), as far as --back",
    )
    parser.add_argument(
        "--back",
        default="180d",
        metavar="Nd",
        help="with --every: how far back (default 180d)",
    )
    parser.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="afterwards keep only the N latest days of the store",
    )
    add_engine_arguments(parser)
    return parser.parse_args(argv)


def parse_info_args(argv) -> argparse.Namespace:
    """The command line of ``python -m store info``."""
    parser = argparse.ArgumentParser(
        prog="python -m store info",
        description="Print a store's days, what each was built from and its row counts per "
        "market; exit 1 when the manifest and the files disagree.",
    )
    parser.add_argument("store", type=Path, metavar="STORE", help="the store")
    return parser.parse_args(argv)


def parse_day(text: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a UTC midnight; UserError for anything but a day."""
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UserError(f"--as-of: {text!r} is not a day (YYYY-MM-DD)") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stamp != stamp.normalize():
        raise UserError(f"--as-of: {text!r} is not a day: a stored day is as of 00:00 UTC")
    return stamp.as_unit("us")


def build_main(argv) -> int:
    """``python -m store build``; the exit status."""
    args = parse_build_args(argv)
    started = time.perf_counter()
    try:
        if args.keep is not None and args.keep < 1:
            raise UserError(f"--keep must be at least 1, not {args.keep}")
        every = parse_span(args.every, "--every") if args.every else None
        back = parse_span(args.back, "--back")
        as_of = parse_day(args.as_of)
        if args.out.exists() and not args.out.is_dir():
            raise UserError(f"{args.out}: exists and is not a folder")
        if args.engine == "spark":
            written = _build_on_spark(args, as_of, every, back)
        else:
            tables = load_tables_or_report(args.data)
            if as_of is None:
                as_of = tables["posts"]["posted_at"].max().normalize() + DAY
            wanted = requested_days(as_of, every, back)
            days = days_to_build(args.out, args.data, wanted)
            _say_skipped(wanted, days)
            written = build_in_memory(args.out, args.data, tables, days, progress=log)
        dropped = drop_days(args.out, args.keep) if args.keep else []
    except (UserError, StoreError, SparkError) as err:
        return fail(str(err))
    log(
        f"{args.out}: wrote {len(written)} day(s)"
        + (f", dropped {', '.join(dropped)}" if dropped else "")
        + f" in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _say_skipped(wanted: list[pd.Timestamp], days: list[pd.Timestamp]) -> None:
    skipped = [day_name(d) for d in wanted if d not in days]
    if skipped:
        log(f"already stored from the same data: {', '.join(skipped)}")


def _build_on_spark(args, as_of, every, back) -> list[str]:
    from scaleout.session import run_job, session_name, start_job_for
    from scaleout.store import last_post_day, spark_build

    rows = rows_or_report(args.data)
    spark, buckets = start_job_for(args, rows)
    if as_of is None:
        as_of = run_job(lambda: last_post_day(spark, args.data), spark) + DAY
    wanted = requested_days(as_of, every, back)
    days = days_to_build(args.out, args.data, wanted)
    _say_skipped(wanted, days)
    log(
        f"Spark {spark.version} on {session_name(spark)}, {buckets} creator buckets; "
        f"building {len(days)} day(s) ..."
    )
    return run_job(
        lambda: spark_build(spark, args.data, args.out, days, buckets, progress=log), spark
    )


def info_text(store: Path, manifest: dict) -> str:
    """The days of a store, one line each, and a total."""
    lines = [f"store {store} (feature registry {manifest['registry_digest']})"]
    for day, record in sorted(manifest["days"].items()):
        creators = sum(m["creators"] for m in record["markets"].values())
        markets = ", ".join(f"{k} {v['creators']:,}" for k, v in record["markets"].items())
        lines.append(
            f"{day}: {creators:,} candidates ({markets}); {len(record['categories'])} "
            f"categories; data {record['data'] or 'given in memory'} ({record['data_fingerprint']}); built "
            f"{record['built_at']} {'on Spark' if record['engine'] == 'spark' else 'in memory'}"
        )
    for digest, entry in sorted(manifest.get("scores", {}).items()):
        current = [
            d
            for d, r in sorted(entry["days"].items())
            if d in manifest["days"] and r["day_built_at"] == manifest["days"][d]["built_at"]
        ]
        stale = len(entry["days"]) - len(current)
        low, high = entry["commission_low"], entry["commission_high"]
        lines.append(
            f"scores of model {entry['model_version']} ({digest}) at commission "
            f"{entry['commission_rate']} (read by briefs at a commission in "
            f"({'-inf' if low is None else f'{low:.6g}'}, {'inf' if high is None else f'{high:.6g}'}]): "
            f"{len(current)} day(s)"
            + (f" ({', '.join(current)})" if current else "")
            + (f"; {stale} stale (the day was built again since)" if stale else "")
        )
    lines.append(
        f"{len(manifest['days'])} day(s); counterfactual targets at the peers' "
        f"{TARGET_QUANTILE:.0%} point"
    )
    return "\n".join(lines)


def info_main(argv) -> int:
    """``python -m store info``; the exit status."""
    args = parse_info_args(argv)
    try:
        manifest = read_manifest(args.store)
        check_files(args.store, manifest)
    except StoreError as err:
        return fail(str(err))
    print(info_text(args.store, manifest))
    return 0


def parse_score_args(argv) -> argparse.Namespace:
    """The command line of ``python -m store score``."""
    parser = argparse.ArgumentParser(
        prog="python -m store score",
        description="Precompute a model's raw score of every candidate in every category "
        "on stored days, at one commission rate, beside the snapshots (scores/<model "
        "digest>/). Briefs and creator pages at a commission the model treats the same "
        "then read them instead of scoring every candidate; the partner lists do not "
        "change. Days already scored for this model and rate are skipped; a day is "
        "published whole or not at all.",
    )
    parser.add_argument("store", type=Path, metavar="STORE", help="the store")
    parser.add_argument(
        "--model", required=True, metavar="URI", help="MLflow model URI (models:/name@alias)"
    )
    parser.add_argument(
        "--days",
        metavar="D[,D...]",
        help="stored days to score, YYYY-MM-DD (default: every stored day)",
    )
    parser.add_argument(
        "--commission-rate",
        type=float,
        metavar="R",
        help="the commission rate to score at (default: the model's default for briefs "
        "without one, the median of its training campaigns)",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=TRACKING_URI_HELP,
    )
    return parser.parse_args(argv)


def score_main(argv) -> int:
    """``python -m store score``; the exit status."""
    from serving.model import ModelError, load_model
    from store.read import open_store
    from store.scores import days_to_score, write_scores

    args = parse_score_args(argv)
    started = time.perf_counter()
    try:
        store = open_store(args.store)
        wanted = store.days if args.days is None else [d.strip() for d in args.days.split(",")]
        scorer, version = load_model(args.model, args.tracking_uri)
        rate = (
            scorer.commission_rate_median if args.commission_rate is None else args.commission_rate
        )
        if not rate > 0:
            raise UserError(f"--commission-rate must be above 0, not {rate}")
        days = days_to_score(store, scorer, float(rate), wanted)
        held = [d for d in wanted if d not in days]
        if held:
            log(f"already scored by this model at {rate}: {', '.join(held)}")
        log(f"model {version}: scoring {len(days)} day(s) at commission {rate} ...")
        write_scores(store, scorer, version, days, float(rate), progress=log)
    except (UserError, StoreError, ModelError) as err:
        return fail(str(err))
    log(f"{args.store}: scored {len(days)} day(s) in {time.perf_counter() - started:.1f}s")
    return 0


def audit_discovery_main(argv) -> int:
    """``python -m store audit-discovery``; the exit status."""
    from store.discovery_cli import audit_main

    return audit_main(argv)


COMMANDS = {
    "build": build_main,
    "info": info_main,
    "score": score_main,
    "audit-discovery": audit_discovery_main,
}
USAGE = (
    "usage: python -m store {build,info,score,audit-discovery} ...\n\n"
    "  build DATA --out STORE [--as-of D] [--every 30d --back 180d] [--keep N] [--engine spark]\n"
    "        materialise daily snapshots of a data directory\n"
    "  info STORE\n"
    "        the days a store holds, their data and row counts\n"
    "  score STORE --model URI [--days D,...] [--commission-rate R]\n"
    "        precompute a model's raw scores on stored days (faster briefs and pages)\n"
    "  audit-discovery DIR [--truth DIR] [--model URI] [--top N]\n"
    "        look-alikes and rising lists judged on a simulated marketplace's hidden truth\n\n"
    "python -m store COMMAND --help for a command's options"
)


def main(argv=None) -> int:
    """``python -m store``: dispatch to a subcommand; the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        return fail(
            f"unknown command {argv[0]!r} (build, info, score or audit-discovery; "
            "--help lists them)"
        )
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
