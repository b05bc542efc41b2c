"""The one feature builder: (creator, as_of, category, commission) rows in, features out.

Training calls it with the invitations of historical campaigns (as_of = the campaign's
``created_at``), serving with a brief's candidates (as_of = the brief's ``as_of``).

Point-in-time rule (data contract), applied with strict time bounds:
- a post counts as posted when ``posted_at < as_of``; its metrics (views ... gmv) only
  when ``posted_at + 7 days <= as_of``;
- a follower snapshot counts when ``snapshot_date + 1 day <= as_of``;
- another campaign's invitation counts for responses when ``responded_at < as_of`` (a
  ``no_response`` once that campaign's ``start_at < as_of``), for delivery and results
  when that campaign's ``end_at < as_of``; a campaign's own invitations are never known at
  its own ``created_at``, since they are invited, answered, started and ended after it.
Every window sum is exact (integers, see ``features.timeline``): money is summed in cents,
logs of views in thousandths (``features.history.LOG_SCALE``), log follower increments in
millionths, gaps in whole seconds. Windows are in days back from ``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.history import JUMP_TOLERANCE, LOG_SCALE, History, index_history
from features.registry import FEATURE_NAMES, FEATURES
from features.timeline import MICROS_PER_DAY, Timeline, days, micros, range_max
from marketplace.reference import TIER_COMMENTS_PER_LIKE, TIER_SHARES_PER_LIKE, tier_curve

MEASURE_DELAY = days(7)
SNAPSHOT_DELAY = days(1)
# Priors (pseudo-counts) so that one invitation or one post does not make 0 % or 100 %.
ANSWER_PRIOR = (1.0, 2.0)  # 1 answered out of 2
ACCEPT_PRIOR = (0.5, 2.0)  # 0.5 accepted out of 2
DELIVERY_PRIOR = (1.0, 2.0)  # 1 delivered out of 2 promised
PRIOR_VIEWS = 2000.0  # shoppable views at gmv 0 added to every GPM
SIZE_PRIOR_LIKES = 20.0  # likes at the typical rate added to a size-relative ratio
# Authenticity flags count only what exceeds what genuine growth and noise produce (and
# history.JUMP_TOLERANCE, a week's follower step 10 % above the creator's trend):
UNMATCHED_TOLERANCE = np.log(1.5)  # followers growing 50 % more than views per post
REQUIRED_COLUMNS = ("creator_id", "as_of", "category")
FOLLOWER_LOOKBACK_DAYS = (0, 30, 90)  # followers are looked up as of these days before as_of
# The features that depend on the request's category (all of the category family).
CATEGORY_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.family == "category")


def check_requests(requests: pd.DataFrame) -> None:
    """Raise ValueError (one line) when the request rows lack a column or an as_of."""
    missing = [c for c in REQUIRED_COLUMNS if c not in requests.columns]
    if missing:
        raise ValueError(f"feature requests: missing column(s) {', '.join(missing)}")
    if requests["as_of"].isna().any():
        raise ValueError("feature requests: as_of must not be null")


def build_features(
    tables: dict[str, pd.DataFrame], requests: pd.DataFrame, history: History | None = None
) -> pd.DataFrame:
    """One row of features (the registry's columns, float64) per request row.

    ``requests`` needs ``creator_id``, ``as_of`` (UTC timestamp) and ``category``;
    ``commission_rate`` is optional (NaN when absent). The result keeps the requests'
    index. Pass a ready ``history`` (``index_history(tables)``) to reuse it across calls.
    """
    history = history or index_history(tables)
    q, known, order = _query(history, requests)
    commission = (
        requests["commission_rate"].to_numpy(dtype=float)[order]
        if "commission_rate" in requests.columns
        else np.full(len(requests), np.nan)
    )
    columns = _Columns(order)
    # Followers known 0, 30 and 90 days before as_of: each looked up once.
    followers = {d: _followers_at(history, q, d) for d in FOLLOWER_LOOKBACK_DAYS}
    followers_now = followers[0]
    _post_features(history, q, followers, columns)
    _category_family(history, q, known, columns)
    _cooperation_features(history, q, columns)
    _growth_features(history, q, followers, columns)
    joined = np.where(known, history.joined_us[np.where(known, q.creator, 0)], q.as_of)
    columns["log_followers"] = np.log1p(np.where(np.isnan(followers_now), 0.0, followers_now))
    columns["tenure_days"] = np.maximum(q.as_of - joined, 0) / MICROS_PER_DAY
    columns["commission_rate"] = commission
    return pd.DataFrame(
        columns.values, index=requests.index, columns=list(FEATURE_NAMES), copy=False
    )


def build_category_features(
    tables: dict[str, pd.DataFrame], requests: pd.DataFrame, history: History | None = None
) -> pd.DataFrame:
    """The category family's columns (``CATEGORY_FEATURES``) of ``build_features`` for the
    same ``requests``, computed alone: the same values to the bit, at a fraction of the
    cost (the snapshot store keeps them per creator and category)."""
    history = history or index_history(tables)
    q, known, order = _query(history, requests)
    columns = _Columns(order, CATEGORY_FEATURES)
    _category_family(history, q, known, columns)
    return pd.DataFrame(
        columns.values, index=requests.index, columns=list(CATEGORY_FEATURES), copy=False
    )


def _query(history: History, requests: pd.DataFrame) -> tuple[_Query, np.ndarray, np.ndarray]:
    """The checked requests in (creator, as_of) order, whether each creator is known to
    ``history``, and the order (request positions) they were sorted in."""
    check_requests(requests)
    creator = history.creator_index.get_indexer(requests["creator_id"])
    known = creator >= 0
    creator = np.where(known, creator, len(history.creator_index))  # no events
    as_of = micros(pd.to_datetime(requests["as_of"], utc=True))
    # Work in (creator, as_of) order: every binary search then walks memory in order.
    order = np.lexsort((as_of, creator))
    q = _Query(
        creator=creator[order],
        as_of=as_of[order],
        category=history.categories.get_indexer(requests["category"])[order],
    )
    return q, known[order], order


def _category_family(history: History, q: _Query, known: np.ndarray, out) -> None:
    _category_features(history, q, out)
    declared = np.where(known, history.declared_category[np.where(known, q.creator, 0)], -1)
    out["declared_category_match"] = ((declared == q.category) & (q.category >= 0)).astype(float)


class _Columns:
    """The output matrix (requests x ``names``, by default the registry's features, float64,
    request order), filled column by column from values computed in sorted order."""

    def __init__(self, order: np.ndarray, names: tuple[str, ...] = FEATURE_NAMES):
        self.order = order
        self.values = np.full((len(order), len(names)), np.nan)
        self.position = {name: j for j, name in enumerate(names)}

    def __setitem__(self, name: str, column) -> None:
        self.values[self.order, self.position[name]] = column

    def update(self, columns: dict) -> None:
        for name, column in columns.items():
            self[name] = column


@dataclass
class _Query:
    """Request rows sorted by (creator, as_of); ``by_time`` sorts them by as_of."""

    creator: np.ndarray
    as_of: np.ndarray
    category: np.ndarray

    def __post_init__(self) -> None:
        self.by_time = np.argsort(self.as_of, kind="stable")

    def before(
        self,
        timeline: Timeline,
        back_us: int,
        inclusive: bool = False,
        entity: np.ndarray | None = None,
    ) -> np.ndarray:
        """``timeline.before`` at as_of - back_us for every row (of ``entity``, default
        the creators)."""
        return timeline.before(
            self.creator if entity is None else entity,
            self.as_of - back_us,
            inclusive,
            bound_order=self.by_time,
        )


def _ratio(num, den, prior_num: float = 0.0, prior_den: float = 0.0) -> np.ndarray:
    """(num + prior_num) / (den + prior_den), NaN where that denominator is 0."""
    den = np.asarray(den, float) + prior_den
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            den > 0, (np.asarray(num, float) + prior_num) / np.where(den > 0, den, 1), np.nan
        )


def latest_followers(
    history: History, creator: np.ndarray, at_us: np.ndarray, at_order: np.ndarray | None = None
) -> np.ndarray:
    """Followers of each creator's latest snapshot known at ``at_us`` (one with
    ``snapshot_date + 1 day <= at``), NaN when there is none. ``creator`` holds
    ``history.creator_index`` codes; ``at_order`` optionally sorts ``at_us``."""
    tl = history.snapshots
    first = tl.first(creator)
    end = tl.before(
        creator, np.asarray(at_us) - SNAPSHOT_DELAY, inclusive=True, bound_order=at_order
    )
    values = history.snapshot_followers
    latest = values[np.maximum(end - 1, 0)] if len(values) else np.zeros(len(end))
    return np.where(end > first, latest, np.nan).astype(float)


def _followers_at(history: History, q: _Query, back_days: float) -> np.ndarray:
    """Followers of the latest snapshot known ``back_days`` before as_of (NaN if none)."""
    return latest_followers(history, q.creator, q.as_of - days(back_days), q.by_time)


class _Windows:
    """Window sums of one timeline for the query rows (entity: default the creators)."""

    def __init__(self, timeline: Timeline, sums: dict, q: _Query, entity: np.ndarray | None = None):
        self.tl, self.sums, self.q = timeline, sums, q
        self.entity = q.creator if entity is None else entity
        self.first = timeline.first(self.entity)

    def position(self, back_us: int, inclusive: bool = False) -> np.ndarray:
        return self.q.before(self.tl, back_us, inclusive, self.entity)

    def sum(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return Timeline.window(self.sums[name], self.first, lo, hi).astype(float)


def _post_features(history: History, q: _Query, followers: dict[int, np.ndarray], out) -> None:
    followers_now = followers[0]
    w = _Windows(history.posts, history.post_sums, q)
    posted_end = w.position(0)  # posted_at < as_of
    measured_end = w.position(MEASURE_DELAY, inclusive=True)  # posted_at + 7d <= as_of

    def posted(name, window_days):
        lo = w.first if window_days is None else w.position(days(window_days))
        return w.sum(name, lo, posted_end)

    def measured(name, window_days):
        lo = w.first if window_days is None else w.position(days(window_days))
        return w.sum(name, lo, np.maximum(measured_end, lo))

    follower_base = np.where(followers_now > 0, followers_now, np.nan)
    log_views_per_post = {}
    d: int | None  # a window in days; None: all the history
    for d in (30, 90, 180):
        n = measured("posts", d)
        mean_views = _ratio(measured("views", d), n)
        log_views_per_post[d] = np.log1p(mean_views)
        out[f"views_per_follower_{d}d"] = mean_views / follower_base
        out[f"log_views_per_post_{d}d"] = log_views_per_post[d]
        out[f"posts_per_week_{d}d"] = posted("posts", d) / (d / 7)
    for d in (90, 180):
        out[f"mean_log_views_{d}d"] = (
            _ratio(measured("log_views", d), measured("posts", d)) / LOG_SCALE
        )
    views90 = measured("views", 90)
    out["likes_per_view_90d"] = _ratio(measured("likes", 90), views90)
    out["comments_per_view_90d"] = _ratio(measured("comments", 90), views90)
    out["shares_per_view_90d"] = _ratio(measured("shares", 90), views90)
    out["engagement_per_view_180d"] = _ratio(
        measured("likes", 180) + measured("comments", 180) + measured("shares", 180),
        measured("views", 180),
    )
    out["views_trend"] = log_views_per_post[30] - log_views_per_post[180]

    for d in (90, 180):
        lo = w.position(days(d))
        n_gaps = np.maximum(posted_end - lo - 1, 0).astype(float)
        gaps = w.sum("gaps", lo + 1, posted_end)
        gaps_sq = w.sum("gaps_sq", lo + 1, posted_end)
        mean = _ratio(gaps, n_gaps)
        var = np.maximum(_ratio(gaps_sq, n_gaps) - mean * mean, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"gap_cv_{d}d"] = np.where((n_gaps >= 2) & (mean > 0), np.sqrt(var) / mean, np.nan)
        active_share = np.minimum(posted("weeks", d) / (d / 7), 1.0)
        out[f"active_week_share_{d}d"] = active_share
    # Share of active weeks against a memoryless poster at the same rate (1 - e^-rate):
    # above 1 when posts are spread out evenly, below 1 when they come in bursts.
    per_week = posted("posts", 180) / (180 / 7)
    out["active_week_ratio_180d"] = np.where(
        per_week > 0, active_share / -np.expm1(-np.maximum(per_week, 1e-12)), np.nan
    )
    has_post = posted_end > w.first
    last = history.posts.time_at(posted_end - 1)
    first_time = history.posts.time_at(w.first)
    out["days_since_last_post"] = np.where(has_post, (q.as_of - last) / MICROS_PER_DAY, np.nan)
    out["history_days"] = np.where(has_post, (q.as_of - first_time) / MICROS_PER_DAY, 0.0)

    out["shoppable_share_90d"] = _ratio(posted("shop", 90), posted("posts", 90))
    out["shoppable_share_all"] = _ratio(posted("shop", None), posted("posts", None))
    out["shoppable_per_week_30d"] = posted("shop", 30) / (30 / 7)
    out["shoppable_per_week_90d"] = posted("shop", 90) / (90 / 7)
    out["lives_per_week_90d"] = posted("live", 90) / (90 / 7)
    out["live_share_180d"] = _ratio(posted("live", 180), posted("posts", 180))
    out["log_shoppable_posts_all"] = np.log1p(posted("shop", None))

    for d in (90, 180, None):
        name = f"gpm_{d}d" if d else "gpm_all"
        out[name] = 1000.0 * _ratio(
            measured("shop_gmv", d) / 100.0, measured("shop_views", d), 0.0, PRIOR_VIEWS
        )
    for d in (90, 180, None):
        name = f"orders_per_1k_views_{d}d" if d else "orders_per_1k_views_all"
        out[name] = 1000.0 * _ratio(
            measured("shop_orders", d), measured("shop_views", d), 0.0, PRIOR_VIEWS
        )
    for d, name in ((90, "90d"), (None, "all")):
        out[f"log_gmv_per_shoppable_post_{name}"] = np.log1p(
            _ratio(measured("shop_gmv", d) / 100.0, measured("shop", d))
        )
    out["log_gmv_90d"] = np.log1p(measured("gmv", 90) / 100.0)

    likes90 = measured("likes", 90)
    out["comments_per_like_90d"] = _ratio(measured("comments", 90), likes90)
    out["comments_per_like_all"] = _ratio(measured("comments", None), measured("likes", None))
    out["shares_per_like_90d"] = _ratio(measured("shares", 90), likes90)
    # Against what is typical for an account of this size (log ratio; 0 = typical), with a
    # prior of SIZE_PRIOR_LIKES likes at the typical rate so a few likes do not swing it.
    size = np.log10(np.where(followers_now > 0, followers_now, np.nan))
    for name, typical_curve, num in (
        ("comments", TIER_COMMENTS_PER_LIKE, measured("comments", 90)),
        ("shares", TIER_SHARES_PER_LIKE, measured("shares", 90)),
    ):
        typical = tier_curve(size, typical_curve)
        smoothed = (num + SIZE_PRIOR_LIKES * typical) / (likes90 + SIZE_PRIOR_LIKES)
        out[f"{name}_per_like_vs_size_90d"] = np.where(
            likes90 > 0, np.log(smoothed / typical), np.nan
        )
    n90 = measured("posts", 90)
    mean_log = _ratio(measured("log_views", 90), n90) / LOG_SCALE
    mean_sq = _ratio(measured("log_views_sq", 90), n90) / LOG_SCALE
    out["view_spikiness_90d"] = np.where(
        n90 >= 3, np.sqrt(np.maximum(mean_sq - mean_log**2, 0)), np.nan
    )

    recent = lambda name, a, b: w.sum(name, w.position(days(a)), w.position(days(b), b == 7))  # noqa: E731
    # Followers gained without the views to match: genuine growth brings views with it
    # (views grow with the audience), bought followers do not.
    views_now = _ratio(recent("views", 97, 7), recent("posts", 97, 7))
    views_then = _ratio(recent("views", 187, 97), recent("posts", 187, 97))
    follower_growth = np.log1p(followers_now) - np.log1p(followers[90])
    unmatched = follower_growth - (np.log1p(views_now) - np.log1p(views_then))
    out["followers_without_views_90d"] = np.maximum(unmatched - UNMATCHED_TOLERANCE, 0.0)
    v_recent, v_before = recent("views", 37, 7), recent("views", 67, 37)
    out["views_growth_30d"] = np.where(
        v_recent + v_before > 0, np.log1p(v_recent) - np.log1p(v_before), np.nan
    )
    g_recent, g_before = recent("gmv", 97, 7) / 100.0, recent("gmv", 187, 97) / 100.0
    out["gmv_growth_90d"] = np.where(
        g_recent + g_before > 0, np.log1p(g_recent) - np.log1p(g_before), np.nan
    )


def _category_features(history: History, q: _Query, out) -> None:
    n_cat = len(history.categories)
    entity = np.where(q.category >= 0, q.creator * n_cat + q.category, -1)
    w = _Windows(history.category_posts, history.category_sums, q, entity)
    tl = history.posts
    all_first = tl.first(q.creator)
    all_posted = q.before(tl, 0)
    all_measured = q.before(tl, MEASURE_DELAY, inclusive=True)
    posted_end = w.position(0)
    measured_end = w.position(MEASURE_DELAY, inclusive=True)
    lo180 = w.position(days(180))

    def total(name, lo, hi):
        return Timeline.window(history.post_sums[name], all_first, lo, hi).astype(float)

    none = entity < 0
    zero_if_no_category = lambda x: np.where(none, np.where(np.isnan(x), np.nan, 0.0), x)  # noqa: E731
    shares = {
        "category_post_share_180d": _ratio(
            w.sum("posts", lo180, posted_end), total("posts", q.before(tl, days(180)), all_posted)
        ),
        "category_post_share_all": _ratio(
            w.sum("posts", w.first, posted_end), total("posts", all_first, all_posted)
        ),
        "category_view_share_all": _ratio(
            w.sum("views", w.first, measured_end), total("views", all_first, all_measured)
        ),
        "category_gmv_share_all": _ratio(
            w.sum("gmv", w.first, measured_end), total("gmv", all_first, all_measured)
        ),
        "category_gpm_all": 1000.0
        * _ratio(
            w.sum("shop_gmv", w.first, measured_end) / 100.0,
            w.sum("shop_views", w.first, measured_end),
            0.0,
            PRIOR_VIEWS,
        ),
    }
    for name, value in shares.items():
        out[name] = zero_if_no_category(value)


def _cooperation_features(history: History, q: _Query, out) -> None:
    a = _Windows(history.answers, history.answer_sums, q)
    end = a.position(0)
    n = a.sum("invitations", a.first, end)
    answered = a.sum("answered", a.first, end)
    d = _Windows(history.deliveries, history.delivery_sums, q)
    dend = d.position(0)
    promised = d.sum("promised", d.first, dend)
    delivered = d.sum("delivered", d.first, dend)
    out.update(
        {
            "past_invitations": n,
            "answer_rate": _ratio(answered, n, *ANSWER_PRIOR),
            "acceptance_rate": _ratio(a.sum("accepted", a.first, end), n, *ACCEPT_PRIOR),
            "response_hours": _ratio(a.sum("wait_s", a.first, end) / 3600.0, answered),
            "delivery_rate": _ratio(delivered, promised, *DELIVERY_PRIOR),
            "campaigns_delivered": d.sum("delivered_any", d.first, dend),
            "log_campaign_gmv_per_delivered_post": np.log1p(
                d.sum("gmv", d.first, dend) / 100.0 / (delivered + 1.0)
            ),
        }
    )


def _growth_features(history: History, q: _Query, followers: dict[int, np.ndarray], out) -> None:
    for d in (30, 90):
        out[f"follower_growth_{d}d"] = np.log1p(followers[0]) - np.log1p(followers[d])
    tl = history.snapshots
    end = q.before(tl, SNAPSHOT_DELAY, inclusive=True)  # snapshot_date + 1 day <= as_of
    first = tl.first(q.creator)
    then = q.before(tl, days(90) + SNAPSHOT_DELAY, inclusive=True)
    organic = Timeline.window(history.organic_growth_sums, first, then, end) / 1e6
    out["organic_follower_growth_90d"] = np.where((then > first) & (end > first), organic, np.nan)
    for name, lo in (
        ("follower_jump_180d", q.before(tl, days(180) - SNAPSHOT_DELAY)),
        ("follower_jump_all", first),
    ):
        jump = range_max(history.snapshot_jumps, np.maximum(lo, first), end)
        out[name] = np.maximum(jump - JUMP_TOLERANCE, 0.0)  # NaN stays NaN
