"""``python -m serving similar`` and ``python -m serving rising``: look-alikes and rising
lists in batch, read from a snapshot store (``store.discovery``); and ``python -m store
audit-discovery``: both judged on a simulated marketplace's hidden truth."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from marketplace.cli import (
    TRACKING_URI_HELP,
    UserError,
    check_output_path,
    fail,
    load_tables_or_report,
    log,
    read_truth_table,
    write_frame_atomically,
)
from serving.briefs import BriefError, read_briefs
from serving.discovery import MOMENTUM_DAYS
from serving.model import ModelError, check_features, load_model
from serving.partner_list import with_model_defaults
from store.discovery import (
    DEFAULT_K,
    MAX_K,
    OWN,
    NotACandidate,
    rising_rows,
    similar_rows,
)
from store.layout import StoreError
from store.read import creator_directory, open_store, stored_day
from store.serve import brief_days

MODEL_HELP = "MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="URI", help=MODEL_HELP)
    parser.add_argument("--store", required=True, type=Path, metavar="STORE", help="snapshot store")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help=".csv or .parquet (atomically)"
    )
    parser.add_argument("--tracking-uri", metavar="URI", help=TRACKING_URI_HELP)


def parse_similar_args(argv) -> argparse.Namespace:
    """The command line of ``python -m serving similar``."""
    parser = argparse.ArgumentParser(
        prog="python -m serving similar",
        description="For each creator, the k candidates of its market most like it in the "
        "nine look-alike signals, one per family (the category family's of --category, "
        "default each creator's declared one; docs/discovery.md) on a stored day: root "
        "mean square of the signal gaps (a null against a value 33.3 points, two nulls none), nearest first, ties by creator_id. Rows: "
        "the partner-list columns (brief_id similar-<creator_id>, rank 1 = nearest), "
        "distance and followers.",
    )
    _common(parser)
    parser.add_argument(
        "--creators",
        required=True,
        metavar="IDS|FILE",
        help="comma-separated creator ids, or a .csv/.parquet file with a creator_id column",
    )
    parser.add_argument("--category", help="the category (default: each creator's declared one)")
    parser.add_argument("--as-of", metavar="D", help="a stored day (default: the latest)")
    parser.add_argument(
        "--k",
        type=int,
        default=DEFAULT_K,
        help=f"look-alikes per creator, 1-{MAX_K} (default %(default)s)",
    )
    return parser.parse_args(argv)


def parse_rising_args(argv) -> argparse.Namespace:
    """The command line of ``python -m serving rising``."""
    parser = argparse.ArgumentParser(
        prog="python -m serving rising",
        description="For each brief (brief_id, market, category, as_of on a stored day; top_k "
        f"the list's length; category {OWN!r}: each creator in its declared category), the "
        "market's rising creators: a short history (a first post under 180 days before "
        "as_of, or no delivered campaign yet) whose estimated sales momentum (learned from "
        "the store's day 90 or more days before as_of; the raw score without one), with its "
        "uncertainty, reaches above what their size and history suggest, best first by that "
        "estimate less its uncertainty. Rows: the partner-list columns, sales_90d, lift, "
        "uncertainty, history_days, followers, why and provisional.",
    )
    _common(parser)
    parser.add_argument("--briefs", required=True, type=Path, metavar="FILE", help="briefs file")
    return parser.parse_args(argv)


def creator_ids(text: str) -> list[str]:
    """The creator ids of ``--creators``: a file's creator_id column, or a comma list."""
    path = Path(text)
    if path.suffix.lower() in (".csv", ".parquet"):
        if not path.is_file():
            raise UserError(f"{path}: creators file not found")
        frame = (
            pd.read_csv(path, dtype=str, keep_default_na=False)
            if path.suffix.lower() == ".csv"
            else pd.read_parquet(path)
        )
        if "creator_id" not in frame.columns:
            raise UserError(f"{path}: missing column creator_id")
        ids = frame["creator_id"].astype(str).tolist()
    else:
        ids = [i.strip() for i in text.split(",") if i.strip()]
    if not ids:
        raise UserError("--creators: no creator id given")
    return list(dict.fromkeys(ids))


def similar_main(argv) -> int:
    """``python -m serving similar``; the exit status."""
    args = parse_similar_args(argv)
    started = time.perf_counter()
    try:
        if not 1 <= args.k <= MAX_K:
            raise UserError(f"--k: must be between 1 and {MAX_K}")
        check_output_path(args.out)
        ids = creator_ids(args.creators)
        scorer, version = load_model(args.model, args.tracking_uri)
        store = open_store(args.store)
        day = store.days[-1] if args.as_of is None else stored_day(store, pd.Timestamp(args.as_of))
        if args.category is not None and args.category not in store.categories(day):
            raise UserError(f"--category: unknown category {args.category!r} on {day}")
        markets = creator_directory(store, [day])
        unknown = [i for i in ids if i not in markets.index]
        if unknown:
            raise UserError(
                f"--creators: not candidates on {day}: {', '.join(unknown[:3])}"
                + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
            )
        parts = []
        for creator_id in ids:
            market, declared = markets.loc[creator_id, ["market", "primary_category"]]
            category = args.category or (
                declared if declared in store.categories(day) else store.categories(day)[0]
            )
            parts.append(
                similar_rows(store, scorer, version, creator_id, market, category, day, args.k)
            )
        rows = pd.concat(parts, ignore_index=True)
        write_frame_atomically(rows, args.out)
    except (UserError, ModelError, StoreError, NotACandidate) as err:
        return fail(str(err))
    log(
        f"wrote {args.out}: {len(rows):,} look-alikes of {len(ids):,} creators on {day} "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


def rising_main(argv) -> int:
    """``python -m serving rising``; the exit status."""
    args = parse_rising_args(argv)
    started = time.perf_counter()
    try:
        check_output_path(args.out)
        briefs = read_briefs(args.briefs)
        scorer, version = load_model(args.model, args.tracking_uri)
        check_features(scorer, version)
        store = open_store(args.store)
        briefs = with_model_defaults(briefs, scorer)
        days = brief_days(store, briefs)
        parts = []
        for day, (_, b) in zip(days, briefs.iterrows(), strict=True):
            category = None if b["category"] == OWN else str(b["category"])
            if category is not None and category not in store.categories(day):
                raise UserError(f"brief {b['brief_id']}: unknown category {category!r} on {day}")
            rows, _ = rising_rows(
                store,
                scorer,
                version,
                str(b["market"]),
                category,
                day,
                int(b["top_k"]),
                float(b["commission_rate"]),
            )
            parts.append(rows.assign(brief_id=pd.Series([b["brief_id"]] * len(rows), dtype="str")))
        rows = pd.concat(parts, ignore_index=True)
        write_frame_atomically(rows, args.out)
    except (UserError, ModelError, StoreError, BriefError) as err:
        return fail(str(err))
    log(
        f"wrote {args.out}: {len(rows):,} rising creators for {len(briefs):,} briefs "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


# ------------------------------------------------------------------ the audit


def parse_audit_args(argv) -> argparse.Namespace:
    """The command line of ``python -m store audit-discovery``."""
    from store.discovery_audit import HORIZON_DAYS, MAX_RATIO, MIN_GAIN, QUERIES, TOP

    parser = argparse.ArgumentParser(
        prog="python -m store audit-discovery",
        description="Judge look-alikes and rising lists on a simulated marketplace's hidden "
        "truth (DIR/truth/creator_traits). A temporary store holds the data's last day "
        f"(look-alikes), {HORIZON_DAYS} days before it (rising lists) and {MOMENTUM_DAYS} "
        "days before that (the rising lists' momentum). Look-alikes: "
        "the mean hidden-trait distance of each sampled creator's 10 nearest against every "
        f"other candidate of its market (target: at most {MAX_RATIO:g} of it). Rising: "
        "of the creators reaching their market's top decile of gmv in the next "
        f"{HORIZON_DAYS} days, the share each market's rising list's first --top named, "
        f"against a followers-growth list of the same short-history pool (target: at least "
        f"{MIN_GAIN:g}x). The rising day is scored by a quick model trained only on what was "
        "known then, unless --model is given. Exit 0 when both targets hold, 1 otherwise.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument(
        "--truth", type=Path, metavar="DIR", help="truth directory (default DIR/truth)"
    )
    parser.add_argument(
        "--model",
        metavar="URI",
        help=f"score with this model instead (it must not have seen the last {HORIZON_DAYS} days)",
    )
    parser.add_argument("--tracking-uri", metavar="URI", help=TRACKING_URI_HELP)
    parser.add_argument(
        "--top", type=int, default=TOP, help="rising list length judged (default %(default)s)"
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=QUERIES,
        help="look-alike queries per market (default %(default)s)",
    )
    return parser.parse_args(argv)


def audit_main(argv) -> int:
    """``python -m store audit-discovery``; the exit status."""
    from store.build import build_in_memory
    from store.discovery_audit import (
        TRUTH_COLUMNS,
        audit_days,
        format_discovery_audit,
        future_gmv,
        lookalike_table,
        rising_table_audit,
        train_before,
        verdicts,
    )

    args = parse_audit_args(argv)
    try:
        if args.top < 1 or args.queries < 1:
            raise UserError("--top and --queries must be at least 1")
        truth = args.truth or args.directory / "truth"
        traits = read_truth_table(truth, "creator_traits", TRUTH_COLUMNS)
        model = load_model(args.model, args.tracking_uri) if args.model else None
        tables = load_tables_or_report(args.directory)
        look_day, rise_day = audit_days(tables)
        if model is None:
            log(f"training a quick model on what was known on {rise_day.date()} ...")
            scorer, version = train_before(tables, rise_day), f"trained before {rise_day.date()}"
        else:
            scorer, version = model
        with tempfile.TemporaryDirectory(prefix="discovery-audit-") as folder:
            fit_day = rise_day - pd.Timedelta(days=MOMENTUM_DAYS)
            log(
                f"building a store of {fit_day.date()} (the rising list's momentum), "
                f"{rise_day.date()} and {look_day.date()} ..."
            )
            days = [fit_day, rise_day, look_day]
            build_in_memory(Path(folder), args.directory, tables, days, log)
            store = open_store(folder)
            declared = tables["creators"].set_index("creator_id")["primary_category"]
            log("judging look-alikes and rising lists ...")
            looks = lookalike_table(
                store, look_day.strftime("%Y-%m-%d"), traits, declared, args.queries
            )
            future = future_gmv(tables["posts"], rise_day)
            rising = rising_table_audit(
                store, rise_day.strftime("%Y-%m-%d"), scorer, version, future, args.top
            )
    except (UserError, ModelError, StoreError) as err:
        return fail(str(err))
    claims = verdicts(looks, rising)
    print(format_discovery_audit(looks, rising, claims))
    return 0 if claims["ok"].all() else 1
