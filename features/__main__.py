"""``python -m features DIR --out FILE``: the training pair table of a data directory."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from features.build import index_history
from features.pairs import training_pairs
from features.registry import FEATURE_NAMES
from marketplace.cli import UserError, check_output_path, fail, load_tables_or_report, log, \
    write_frame_atomically


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m features",
        description="Write the training pair table of a data directory: one row per "
                    "invitation with campaign_id, creator_id, created_at, gmv (the label "
                    f"source, 0 without a result) and the {len(FEATURE_NAMES)} features of "
                    "the registry, each as of the campaign's created_at. The data is "
                    "validated first.")
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="output file, .parquet or .csv (written atomically)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_output_path(args.out)
        started = time.perf_counter()
        tables = load_tables_or_report(args.directory)
        log(f"read and validated {args.directory} in {time.perf_counter() - started:.1f}s; "
            f"building features for {len(tables['invitations']):,} invitations ...")
        history = index_history(tables, release_posts=True)  # memory: see its docstring
        pairs = training_pairs(tables, history)
        write_frame_atomically(pairs, args.out)
    except UserError as err:
        return fail(str(err))
    log(f"wrote {args.out}: {len(pairs):,} pairs x {len(FEATURE_NAMES)} features "
        f"in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
