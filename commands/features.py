"""``python -m features DIR --out FILE``: the training pair table of a data directory
(``--engine spark``: the same table computed on Spark, as a directory of Parquet parts).
``python -m features audit DIR``: the indices against the marketplace's hidden truth."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from features.audit import TRAITS, audit_frame, audit_table, format_audit
from features.build import index_history
from features.pairs import training_pairs
from features.registry import FEATURE_NAMES
from marketplace.cli import (
    UserError,
    check_output_path,
    fail,
    load_tables_or_report,
    log,
    read_truth_table,
    rows_or_report,
    write_frame_atomically,
)
from marketplace.io import read_table
from scaleout.session import add_engine_arguments


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m features DIR --out FILE``."""
    parser = argparse.ArgumentParser(
        prog="python -m features",
        description="Write the training pair table of a data directory: one row per "
        "invitation with campaign_id, creator_id, created_at, gmv (the label "
        f"source, 0 without a result) and the {len(FEATURE_NAMES)} features of "
        "the registry, each as of the campaign's created_at. The data is "
        "validated first.",
        epilog="Also: python -m features audit DIR [--truth DIR] [--as-of TIME] [--out FILE]: "
        "each index against the hidden trait it names, on simulated data with its truth "
        "(python -m features audit --help).",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="OUT",
        help="output file, .parquet or .csv (written atomically); with "
        "--engine spark a directory of Parquet parts (replaced "
        "atomically)",
    )
    add_engine_arguments(parser)
    return parser.parse_args(argv)


def parse_audit_args(argv) -> argparse.Namespace:
    """The command line of ``python -m features audit DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m features audit",
        description="Check that each 0-100 index measures what it names, on a marketplace "
        "whose hidden truth is known (the simulator's DIR/truth/creator_traits"
        ".parquet): Spearman correlation of each index with its trait ("
        + ", ".join(f"{family}: {meaning}" for family, (_, meaning) in TRAITS.items())
        + "), the authenticity index's AUC for bought engagement, its median "
        "for genuine fast growers against genuine creators, and its correlation "
        "with account size among genuine creators. Every creator with a "
        "post in the 90 days before as_of is scored among its market, as a "
        "partner list would. Exit 0 when every claim meets its target, 1 "
        "otherwise.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument(
        "--truth",
        type=Path,
        metavar="DIR",
        help="truth directory with creator_traits.parquet (default DIR/truth)",
    )
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        help="when to score (UTC; default: midnight after the data's last post, "
        "the time the truth's growth is measured at)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also write the audit table (.csv or .parquet, atomically)",
    )
    return parser.parse_args(argv)


def read_traits(directory: Path) -> pd.DataFrame:
    """The simulator's creator_traits of the truth directory, checked for the columns the audit reads."""
    needed = {"creator_id", "fake", "log10_f0", "affinity_1", "category_1"} | {
        column for column, _ in TRAITS.values() if column != "affinity"
    }
    return read_truth_table(directory, "creator_traits", needed)


def parse_as_of(text: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a UTC timestamp (a zone-less time is UTC); None when not given."""
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UserError(
            f"--as-of: {text!r} is not a timestamp (e.g. 2025-12-01T00:00:00Z)"
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def audit_main(argv) -> int:
    """``python -m features audit``: each index against the trait it names; the exit status."""
    args = parse_audit_args(argv)
    try:
        if args.out is not None:
            check_output_path(args.out)
        traits = read_traits(args.truth or args.directory / "truth")
        as_of = parse_as_of(args.as_of)
        tables = load_tables_or_report(args.directory)
        log("scoring every active creator's indices among its market ...")
        try:
            table = audit_table(audit_frame(tables, traits, as_of))
        except ValueError as err:
            raise UserError(str(err)) from None
        if args.out is not None:
            write_frame_atomically(table, args.out)
    except UserError as err:
        return fail(str(err))
    print(format_audit(table))
    return 0 if table["ok"].all() else 1


def main(argv=None) -> int:
    """``python -m features``: the training pair table of DIR (or the audit); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["audit"]:
        return audit_main(argv[1:])
    args = parse_args(argv)
    try:
        if args.engine == "spark":
            return run_spark(args)
        check_output_path(args.out)
        started = time.perf_counter()
        tables = load_tables_or_report(args.directory)
        log(
            f"read and validated {args.directory} in {time.perf_counter() - started:.1f}s; "
            f"building features for {len(tables['invitations']):,} invitations ..."
        )
        history = index_history(tables, release_posts=True)  # memory: see its docstring
        pairs = training_pairs(tables, history)
        write_frame_atomically(pairs, args.out)
    except UserError as err:
        return fail(str(err))
    log(
        f"wrote {args.out}: {len(pairs):,} pairs x {len(FEATURE_NAMES)} features "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


def check_output_folder(path: Path) -> None:
    """UserError unless ``path`` can become a directory of Parquet parts."""
    if path.suffix.lower() == ".csv" or path.is_file():
        raise UserError(f"{path}: with --engine spark the output is a directory of Parquet parts")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: output folder does not exist")


def run_spark(args: argparse.Namespace) -> int:
    """``--engine spark``: the pair table as a directory of Parquet parts, built on Spark."""
    from scaleout.features import spark_pairs
    from scaleout.session import SparkError, run_job, session_name, start_job_for
    from scaleout.tables import write_parts_atomically

    started = time.perf_counter()
    try:
        check_output_folder(args.out)
        rows = rows_or_report(args.directory)
        campaigns = read_table(args.directory, "campaigns")
        log(
            f"validated {args.directory} part by part in {time.perf_counter() - started:.1f}s; "
            "starting Spark ..."
        )
        spark, buckets = start_job_for(args, rows)
        log(
            f"Spark {spark.version} on {session_name(spark)}: building features for "
            f"{rows['invitations']:,} invitations in {buckets} creator buckets ..."
        )
        pairs, unsorted = run_job(lambda: spark_pairs(spark, args.directory, campaigns, buckets))
        run_job(lambda: write_parts_atomically(pairs, args.out))
        unsorted.unpersist()
    except (UserError, SparkError) as err:
        return fail(str(err))
    log(
        f"wrote {args.out}/: {rows['invitations']:,} pairs x {len(FEATURE_NAMES)} features "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
