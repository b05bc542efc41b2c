"""Score briefs into partner lists (data contract, "partner list").

For each brief: find its candidates (``features.candidates``), build their features as of
the brief's ``as_of`` with the one feature builder, rank every candidate by the model's
raw output (ties: creator_id), keep the top_k, and explain only those rows: score (the
model's fixed 0-100 map), top_percent (100 x rank / the brief's candidates), the
expected gmv for this brief with its 80 % interval, the chance of any sale and the
provisional mark (``training.sales``), TreeSHAP contributions by family, the nine
indices (percentiles among ALL the brief's candidates) and a reasons sentence.

Reasons recipe (``reasons_text``), deterministic:
1. Families whose contribution is significant: |contrib| >= 10 % of the row's largest
   family |contrib| (and > 1e-9). ``other`` (reach, tenure, commission) has no index and
   is not a reason.
2. Take the two largest lifts (positive) and the largest drag (negative); if that makes
   fewer than three, add the remaining significant families by |contrib| up to three.
3. Write lifts first (largest first), then drags (most negative first); each family has
   one phrase when it lifts, one when it drags and one when the creator lacks the
   history for its index (the index is null); the index follows in brackets when known,
   "(sales 91)"; the category family names the brief's category. Where the index
   disagrees with the contribution's sign (a lift with an index under 50, a drag over
   50: the model weighs the family against all past invitees, the index ranks among
   this brief's candidates) a neutral phrase is used: "sales lifts the score (sales 35)",
   "fit with food holds the score back (category 75)".
4. Phrases are joined by "; ", the first letter capitalised. No significant family:
   "No single family stands out".
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from features.build import History, build_features, index_history
from features.candidates import ACTIVE_DAYS, feature_requests, find_candidates, market_creators
from features.indices import family_indices, index_name
from features.registry import FAMILIES
from marketplace.contract import STRING_DTYPE
from serving.briefs import check_briefs
from serving.model import check_features
from training.model import CONTRIB_COLUMNS, Scorer
from training.sales import SALES_COLUMNS, SALES_VALUES

INDEX_COLUMNS = tuple(index_name(f) for f in FAMILIES)
PARTNER_COLUMNS = (
    "brief_id",
    "creator_id",
    "rank",
    "top_percent",
    "score",
    *SALES_COLUMNS,
    *INDEX_COLUMNS,
    "raw_score",
    *CONTRIB_COLUMNS,
    "reasons",
    "model_version",
)
# Briefs are scored in chunks of about this many (brief, market creator) pairs: memory
# stays bounded and progress is reported after each chunk.
CHUNK_PAIRS = 250_000

SIGNIFICANT_SHARE = 0.10
MAX_LIFTS, MAX_DRAGS, MAX_REASONS = 2, 1, 3
NOTHING_STANDS_OUT = "No single family stands out"
# family: (when it lifts the score, when it drags it, when the index is null: too little history)
PHRASES: dict[str, tuple[str, str, str]] = {
    "engagement": (
        "content lands well with viewers",
        "content draws little engagement",
        "too few measured posts to judge engagement",
    ),
    "volume": (
        "posts a lot",
        "posts little or has slowed down",
        "started posting too recently to judge volume",
    ),
    "consistency": (
        "posts like clockwork",
        "posts in irregular bursts",
        "too few posts to judge consistency",
    ),
    "diligence": (
        "commits to shoppable posts and LIVEs",
        "posts little shoppable content",
        "too few recent posts to judge selling effort",
    ),
    "cooperation": (
        "answers brands reliably",
        "patchy record with brand invitations",
        "no track record with brands yet",
    ),
    "sales": ("sells well", "sells little for its views", "no measured sales yet"),
    "category": (
        "strong in {category}",
        "little presence in {category}",
        "too new to judge in {category}",
    ),
    "growth": ("audience and sales are growing", "momentum is fading", "too new to measure growth"),
    "authenticity": (
        "engagement looks genuine",
        "signs of inflated engagement",
        "too little recent engagement to judge authenticity",
    ),
}


def _quiet(message: str) -> None:
    pass


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def empty_partner_list() -> pd.DataFrame:
    """A partner list with no rows and the contract's columns and dtypes."""
    dtypes = {c: "float64" for c in PARTNER_COLUMNS}
    dtypes.update(
        brief_id=STRING_DTYPE,
        creator_id=STRING_DTYPE,
        rank="int64",
        provisional="bool",
        reasons=STRING_DTYPE,
        model_version=STRING_DTYPE,
    )
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in PARTNER_COLUMNS})


def partner_lists(
    tables: dict[str, pd.DataFrame],
    briefs: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
    history: History | None = None,
    *,
    progress: Callable[[str], None] = _quiet,
    warn: Callable[[str], None] = _warn,
    chunk_pairs: int = CHUNK_PAIRS,
    by_market: dict[str, np.ndarray] | None = None,
    observe: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """The partner list of every brief: its top_k candidates, ordered by brief (as in
    ``briefs``) then rank, with the contract's ``PARTNER_COLUMNS``.

    ``tables`` are validated raw tables; ``briefs`` any frame ``check_briefs`` accepts
    (BriefError otherwise); ``scorer`` must expect the builder's features (ModelError).
    ``history`` (``index_history(tables)``) is built once if not given. ``progress``
    receives a line after each chunk of briefs; ``warn`` a line per brief without
    candidates (default: a Python warning). Briefs are scored in chunks of about
    ``chunk_pairs`` (brief, market creator) pairs; the result does not depend on it.
    ``by_market`` (``market_creators(tables, history)``) may be given to reuse it too.
    ``observe``, when given, receives each chunk's candidate features (serving.drift).
    """
    check_features(scorer, model_version)
    briefs = with_model_defaults(check_briefs(briefs), scorer)
    history = history or index_history(tables)
    by_market = by_market if by_market is not None else market_creators(tables, history)
    started, done, candidates, parts = time.perf_counter(), 0, 0, []
    for chunk in _chunks(briefs, by_market, chunk_pairs):
        part, n_candidates = _score_chunk(
            tables, chunk, scorer, model_version, history, by_market, warn, observe
        )
        parts.append(part)
        done, candidates = done + len(chunk), candidates + n_candidates
        progress(
            f"scored {done:,}/{len(briefs):,} briefs ({candidates:,} candidates) "
            f"in {time.perf_counter() - started:.1f}s"
        )
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_partner_list()
    return pd.concat(parts, ignore_index=True)


def with_model_defaults(briefs: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """Checked briefs with a missing commission_rate set to the model's training median."""
    return briefs.assign(
        commission_rate=briefs["commission_rate"].fillna(scorer.commission_rate_median)
    )


def _chunks(
    briefs: pd.DataFrame, by_market: dict[str, np.ndarray], chunk_pairs: int
) -> Iterator[pd.DataFrame]:
    """Consecutive slices of ``briefs`` of about ``chunk_pairs`` market creators each."""
    sizes = np.array([len(by_market.get(m, ())) for m in briefs["market"]], dtype=np.int64)
    start, total = 0, 0
    for end, size in enumerate(sizes, start=1):
        total += size
        if total >= chunk_pairs:
            yield briefs.iloc[start:end]
            start, total = end, 0
    if start < len(briefs) or len(briefs) == 0:
        yield briefs.iloc[start:]


def rank_candidates(brief: np.ndarray, raw: np.ndarray, creator_id: pd.Series) -> np.ndarray:
    """1-based rank of each row within its brief: raw desc, then creator_id asc."""
    frame = pd.DataFrame({"brief": brief, "raw": raw, "creator_id": creator_id.to_numpy()})
    order = frame.sort_values(
        ["brief", "raw", "creator_id"], ascending=[True, False, True], kind="stable"
    ).index.to_numpy()
    rank = np.empty(len(frame), np.int64)
    rank[order] = frame.loc[order].groupby("brief", sort=False).cumcount().to_numpy() + 1
    return rank


def rank_by_raw(raw: np.ndarray, creator_id: np.ndarray) -> np.ndarray:
    """``rank_candidates`` of one brief's rows: fast when they are ordered by creator_id
    (a stable sort on raw alone then breaks ties by creator_id)."""
    ids = np.asarray(creator_id, dtype=object)
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        return rank_candidates(np.zeros(len(ids), np.int64), raw, pd.Series(ids, dtype=object))
    rank = np.empty(len(raw), np.int64)
    rank[np.argsort(-np.asarray(raw, float), kind="stable")] = np.arange(1, len(raw) + 1)
    return rank


def _score_chunk(
    tables,
    chunk: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
    history: History,
    by_market,
    warn,
    observe=None,
) -> tuple[pd.DataFrame, int]:
    pairs = find_candidates(tables, chunk, history, by_market)
    present = np.bincount(pairs["brief"], minlength=len(chunk)) > 0
    for position in np.flatnonzero(~present):
        warn(no_candidates_message(chunk.iloc[position]))
    if pairs.empty:
        return empty_partner_list(), 0
    features = build_features(tables, feature_requests(chunk, pairs), history)
    if observe is not None:
        observe(features)
    return explained_top(chunk, pairs, features, scorer, model_version), len(pairs)


def no_candidates_message(brief: pd.Series) -> str:
    """The warning for a brief (a row of checked briefs) without candidates."""
    return (
        f"brief {brief['brief_id']}: no candidates (no creator of market {brief['market']} "
        f"with a post in the {ACTIVE_DAYS} days before {brief['as_of'].isoformat()} and "
        f"at least {brief['min_followers']} followers); it gets no rows"
    )


def explained_top(
    briefs: pd.DataFrame,
    pairs: pd.DataFrame,
    features: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
    indices: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The partner-list rows of ``briefs`` (checked, with the model's defaults) from
    their candidates: ``pairs`` as from ``find_candidates`` (``brief`` position,
    ``creator_id``) and the features of those pairs, row for row. Every candidate is
    ranked and indexed; the top_k of each brief are explained. ``indices`` may hold the
    pairs' ``family_indices`` (by brief), row for row, when already known."""
    brief = pairs["brief"].to_numpy()
    raw = scorer.raw(features)
    rank = rank_candidates(brief, raw, pairs["creator_id"])
    if indices is None:  # among ALL the brief's candidates
        indices = family_indices(features, peers=brief)
    rows = top_rows(briefs, brief, rank)
    return explained_rows(
        briefs,
        pairs.iloc[rows].reset_index(drop=True),
        features.iloc[rows],
        raw[rows],
        rank[rows],
        np.bincount(brief, minlength=len(briefs)),
        indices.iloc[rows].reset_index(drop=True),
        scorer,
        model_version,
    )


def top_rows(briefs: pd.DataFrame, brief: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Positions of the rows ranked within their brief's top_k, by brief then rank."""
    rows = np.flatnonzero(rank <= briefs["top_k"].to_numpy()[brief])
    return rows[np.lexsort((rank[rows], brief[rows]))]


def explained_rows(
    briefs: pd.DataFrame,
    pairs: pd.DataFrame,
    features: pd.DataFrame,
    raw: np.ndarray,
    rank: np.ndarray,
    candidates: np.ndarray,
    indices: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
) -> pd.DataFrame:
    """The partner-list rows of some ranked candidates of ``briefs`` (a brief's top_k,
    in list order): their ``pairs`` (``brief`` position, ``creator_id``), features, raw
    scores, ranks and indices among their brief's candidates, row for row, and the
    number of candidates of each brief (``candidates[brief]``). Only these rows are
    explained (TreeSHAP, expected sales, reasons)."""
    brief = pairs["brief"].to_numpy()
    contrib = scorer.contributions(features).reset_index(drop=True)
    indices = indices.reset_index(drop=True)
    categories = briefs["category"].to_numpy()[brief]
    sales = scorer.expected_sales(features, raw, briefs["market"].to_numpy()[brief], categories)
    out = pd.DataFrame(
        {
            "brief_id": pd.Series(briefs["brief_id"].to_numpy()[brief], dtype=STRING_DTYPE),
            "creator_id": pd.Series(pairs["creator_id"].to_numpy(), dtype=STRING_DTYPE),
            "rank": np.asarray(rank, np.int64),
            "top_percent": 100.0 * rank / np.asarray(candidates)[brief],
            "score": scorer.score(raw).astype(float),
            **{c: sales[c].to_numpy(dtype=float) for c in SALES_VALUES},
            "provisional": sales["provisional"].to_numpy(dtype=bool),
            **{c: indices[c].to_numpy(dtype=float) for c in INDEX_COLUMNS},
            "raw_score": np.asarray(raw, float),
            **{c: contrib[c].to_numpy(dtype=float) for c in CONTRIB_COLUMNS},
            "reasons": pd.Series(reasons(contrib, indices, categories), dtype=STRING_DTYPE),
            "model_version": pd.Series([model_version] * len(pairs), dtype=STRING_DTYPE),
        }
    )
    return out[list(PARTNER_COLUMNS)]


def reasons(contributions: pd.DataFrame, indices: pd.DataFrame, categories) -> list[str]:
    """``reasons_text`` of each row (frames aligned by position)."""
    contrib = contributions[[f"contrib_{f}" for f in FAMILIES]].to_numpy(dtype=float)
    index = indices[[index_name(f) for f in FAMILIES]].to_numpy(dtype=float)
    return [reasons_text(contrib[i], index[i], str(categories[i])) for i in range(len(contrib))]


def reasons_text(contrib: np.ndarray, index: np.ndarray, category: str) -> str:
    """One sentence from a row's family contributions and indices (FAMILIES order);
    the recipe is in the module's docstring."""
    contrib = np.asarray(contrib, dtype=float)
    largest = np.max(np.abs(contrib)) if len(contrib) else 0.0
    threshold = max(SIGNIFICANT_SHARE * largest, 1e-9)
    significant = [j for j in range(len(contrib)) if abs(contrib[j]) >= threshold]
    by_size = sorted(significant, key=lambda j: (-abs(contrib[j]), j))
    lifts = [j for j in by_size if contrib[j] > 0]
    drags = [j for j in by_size if contrib[j] < 0]
    chosen = lifts[:MAX_LIFTS] + drags[:MAX_DRAGS]
    chosen += [j for j in by_size if j not in chosen][: MAX_REASONS - len(chosen)]
    if not chosen:
        return NOTHING_STANDS_OUT
    ordered = (
        [j for j in lifts if j in chosen]  # largest lift first
        + [j for j in drags if j in chosen]
    )  # then the largest drag
    phrases = [_phrase(FAMILIES[j], contrib[j], index[j], category) for j in ordered]
    text = "; ".join(phrases)
    return text[:1].upper() + text[1:]


def _phrase(family: str, contrib: float, index: float, category: str) -> str:
    lift, drag, no_history = PHRASES[family]
    if np.isnan(index):
        return no_history.format(category=category)
    subject = "fit with {category}" if family == "category" else family
    if contrib > 0:
        phrase = lift if index >= 50 else f"{subject} lifts the score"
    else:
        phrase = drag if index <= 50 else f"{subject} holds the score back"
    return f"{phrase.format(category=category)} ({family} {index:.0f})"
