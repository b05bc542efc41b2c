"""Score resolution and recourse of a served model on a data directory (issue 18).

    .venv/bin/python benchmarks/sales.py --model models:/creator-scores@champion \
        (--data demo/data | --store STORE) [--briefs examples/briefs.csv] [--top 50] \
        [--outside 10] [--recourse-briefs N]

Prints, over the briefs' partner lists (each brief's top ``--top``; top_k is raised to
it): the share of adjacent ranks whose raw scores differ by more than 0.05 that show
different scores at one decimal; and, for the creators ranked below ``--outside`` in
each list, the share whose counterfactual (the explorer's creator page) names a rank
change for at least one family (on the first ``--recourse-briefs`` briefs). With
``--store`` (a snapshot store) and no ``--briefs``, every market and category of its last
day is briefed. Reads the model and the data; writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.core import (  # noqa: E402
    checked_brief,
    explorer_from,
    explorer_on_store,
    partner_list,
)
from explorer.creators import creator_profile  # noqa: E402
from marketplace.cli import load_tables_or_report  # noqa: E402
from serving.briefs import read_briefs  # noqa: E402
from serving.model import load_model  # noqa: E402


def distinct_share(rows: pd.DataFrame, gap: float = 0.05) -> tuple[int, int]:
    """(adjacent pairs with raw scores more than ``gap`` apart, of them shown apart)."""
    pairs = shown_apart = 0
    for _, brief in rows.groupby("brief_id"):
        brief = brief.sort_values("rank")
        far = np.abs(np.diff(brief["raw_score"].to_numpy())) > gap
        apart = np.diff(np.round(brief["score"].to_numpy(), 1)) != 0
        pairs += int(far.sum())
        shown_apart += int((far & apart).sum())
    return pairs, shown_apart


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="MLflow model URI")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="data directory (a temporary store is built)")
    source.add_argument("--store", type=Path, help="snapshot store")
    parser.add_argument("--briefs", type=Path, help="briefs file (default with --store: all)")
    parser.add_argument(
        "--recourse-briefs", type=int, default=10, help="briefs whose recourse is measured"
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI")
    parser.add_argument("--top", type=int, default=50, help="list length (default 50)")
    parser.add_argument("--outside", type=int, default=10, help="recourse below this rank")
    args = parser.parse_args(argv)
    scorer, version = load_model(args.model, args.tracking_uri)
    if args.store is not None:
        ex = explorer_on_store(args.store, scorer, version)
    else:
        ex = explorer_from(load_tables_or_report(args.data), scorer, version)
    if args.briefs is not None:
        briefs = read_briefs(args.briefs).to_dict("records")
    else:
        briefs = [{"market": m, "category": c} for m in ex.markets for c in ex.categories]
    lists, moved, asked = [], 0, 0
    for position, brief in enumerate(briefs):
        brief = {k: (None if pd.isna(v) else v) for k, v in brief.items()}
        brief.update(top_k=args.top, as_of=None)  # as of the data's last day
        checked = checked_brief(ex, brief)
        rows, candidates = partner_list(ex, checked)
        lists.append(rows)
        below = rows.loc[rows["rank"] > args.outside, "creator_id"]
        for creator_id in below if position < args.recourse_briefs else []:
            profile = creator_profile(
                ex, creator_id, brief["category"], None, brief.get("commission_rate")
            )
            asked += 1
            moved += any(c["rank_change"] != 0 for c in profile["counterfactuals"])
        print(f"{checked['brief_id'].iloc[0]}: {candidates:,} candidates", file=sys.stderr)
    pairs, apart = distinct_share(pd.concat(lists, ignore_index=True))
    print(
        f"top {args.top}: {apart} of {pairs} adjacent pairs more than 0.05 apart in raw score "
        f"show different scores ({apart / max(pairs, 1):.1%})"
    )
    print(
        f"recourse: {moved} of {asked} creators ranked below {args.outside} have a family "
        f"that changes their rank ({moved / max(asked, 1):.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
