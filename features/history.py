"""The raw tables indexed once for as-of lookups: ``History`` and ``index_history``.

Each event table becomes a ``features.timeline.Timeline`` (sorted by creator, then time)
with exact running sums of what features need: money in cents, logs in thousandths
(``LOG_SCALE``), gaps in whole seconds. ``features.build`` reads them at any as_of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.timeline import MICROS_PER_DAY, MICROS_PER_SECOND, Timeline, micros

LOG_SCALE = 1_000  # logs summed in thousandths: int32 sums for all but the busiest creators
JUMP_TREND_STEPS = 3  # a follower step is judged against the mean of the 3 before it
JUMP_TOLERANCE = np.log(1.1)  # a week's follower step 10 % above the creator's trend counts


@dataclass(frozen=True)
class History:
    """The raw tables indexed for as-of lookups; built once, queried many times."""

    creator_index: pd.Index
    declared_category: np.ndarray
    joined_us: np.ndarray
    categories: pd.Index
    posts: Timeline
    post_sums: dict[str, np.ndarray]
    category_posts: Timeline
    category_sums: dict[str, np.ndarray]
    snapshots: Timeline
    snapshot_followers: np.ndarray
    snapshot_jumps: np.ndarray
    organic_growth_sums: np.ndarray
    answers: Timeline
    answer_sums: dict[str, np.ndarray]
    deliveries: Timeline
    delivery_sums: dict[str, np.ndarray]


def index_history(tables: dict[str, pd.DataFrame], release_posts: bool = False) -> History:
    """Sort and sum the raw tables once (O(n log n)); ``tables`` as read and validated.

    With ``release_posts`` the posts frame in ``tables`` is replaced by an empty one as
    soon as its columns are read into arrays, before the sorting and summing: at scale
    the raw frame's strings are the largest thing in memory, and the history holds all
    that features need of the posts. Only a caller that owns ``tables`` should ask.
    """
    creators = tables["creators"]
    creator_index = pd.Index(creators["creator_id"])
    posts = tables["posts"]
    categories = pd.Index(
        sorted(
            set(posts["category"].dropna().unique())
            | set(tables["campaigns"]["category"].dropna().unique())
            | set(creators["primary_category"].dropna().unique())
        )
    )
    columns = _post_arrays(posts, creator_index, categories)
    if release_posts:
        tables["posts"] = posts.iloc[:0]
        del posts
        pa.default_memory_pool().release_unused()  # the strings' memory, back to the system
    timeline = Timeline.build(columns["code"], columns["posted"])
    post_sums = _post_sums(timeline, columns)

    has_cat = columns["category"] >= 0
    category_posts = Timeline.build(
        (columns["code"] * len(categories) + columns["category"])[has_cat],
        columns["posted"][has_cat],
    )
    shop, views, cents = (columns[c][has_cat] for c in ("shop", "views", "cents"))
    category_sums = {
        "posts": category_posts.running(np.ones(len(views), np.int8)),
        "views": category_posts.running(views),
        "gmv": category_posts.running(cents),
        "shop_views": category_posts.running(views * shop),
        "shop_gmv": category_posts.running(cents * shop),
    }
    del columns, shop, views, cents

    snaps = tables["follower_snapshots"]
    snapshots = Timeline.build(
        creator_index.get_indexer(snaps["creator_id"]), micros(snaps["snapshot_date"])
    )
    snapshot_followers = snapshots.take(snaps["followers"].to_numpy())
    jumps = follower_jumps(snapshots, snapshot_followers)
    answers, answer_sums, deliveries, delivery_sums = _invitation_history(tables, creator_index)
    declared = categories.get_indexer(creators["primary_category"])
    return History(
        creator_index=creator_index,
        declared_category=declared,
        joined_us=micros(creators["joined_at"]),
        categories=categories,
        posts=timeline,
        post_sums=post_sums,
        category_posts=category_posts,
        category_sums=category_sums,
        snapshots=snapshots,
        snapshot_followers=snapshot_followers,
        snapshot_jumps=jumps,
        organic_growth_sums=snapshots.running(
            organic_increments(snapshots, snapshot_followers, jumps), presorted=True
        ),
        answers=answers,
        answer_sums=answer_sums,
        deliveries=deliveries,
        delivery_sums=delivery_sums,
    )


def snapshot_steps(snapshots: Timeline, followers: np.ndarray):
    """Per snapshot (sorted order): whether it is its creator's first, its log(1 +
    followers) increment over the one before (0 at a first), and the weeks between them."""
    first = snapshots.is_first()
    log_f = np.log1p(followers.astype(float))
    increment = np.where(first, 0.0, np.diff(log_f, prepend=0.0))
    weeks = np.diff(snapshots.time_at(np.arange(len(followers))), prepend=0) / (7 * MICROS_PER_DAY)
    return first, increment, weeks


def follower_jumps(snapshots: Timeline, followers: np.ndarray) -> np.ndarray:
    """How far each snapshot's follower growth jumps above the creator's own trend.

    Growth between consecutive snapshots is log(1 + followers) per week; a snapshot's
    jump is that growth minus the mean growth of the (up to ``JUMP_TREND_STEPS``) steps
    before it, in log units per week: about 0 for steady growth however fast, about
    log(1 + share bought) for a purchase of followers. NaN for a creator's first two
    snapshots. Uses only the snapshot and earlier ones of the same creator, so it is known
    when the snapshot is. Sorted (Timeline) order.
    """
    n = len(followers)
    if n == 0:
        return np.zeros(0)
    first, increment, weeks = snapshot_steps(snapshots, followers)
    step = np.where(first, np.nan, increment / np.where(first, 1.0, weeks))
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))  # each creator's first row
    trend_sum = np.zeros(n)
    trend_n = np.zeros(n)
    for lag in range(1, JUMP_TREND_STEPS + 1):
        earlier = np.arange(n) - lag
        valid = earlier > start  # the step at a creator's first row is undefined
        trend_sum += np.where(valid, step[np.maximum(earlier, 0)], 0.0)
        trend_n += valid
    return np.where(trend_n > 0, step - trend_sum / np.maximum(trend_n, 1), np.nan)


def organic_increments(snapshots: Timeline, followers: np.ndarray, jumps: np.ndarray) -> np.ndarray:
    """Each snapshot's log follower increment over the one before, with the part of a jump
    beyond ``JUMP_TOLERANCE`` above the creator's trend taken out (millionths, int64, sorted
    order; 0 at a creator's first snapshot). Summed over a window: organic growth."""
    if len(followers) == 0:
        return np.zeros(0, np.int64)
    _, increment, weeks = snapshot_steps(snapshots, followers)
    excess = np.where(np.isnan(jumps), 0.0, np.maximum(jumps - JUMP_TOLERANCE, 0.0) * weeks)
    return np.round((increment - excess) * 1e6).astype(np.int64)


def _post_arrays(posts: pd.DataFrame, creator_index: pd.Index, categories: pd.Index) -> dict:
    """What the history needs of each post, as plain arrays (no strings)."""
    return {
        "code": creator_index.get_indexer(posts["creator_id"]),
        "posted": micros(posts["posted_at"]),
        "category": categories.get_indexer(posts["category"]),
        "live": (posts["format"] == "live").to_numpy(),
        "shop": posts["is_shoppable"].to_numpy(),
        "cents": _cents(posts["gmv"]),
        **{c: posts[c].to_numpy() for c in ("views", "likes", "comments", "shares", "orders")},
    }


def post_time_range(history: History) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last posted_at of the indexed posts (None when there are none)."""
    times = history.posts.ranks  # every distinct posted_at, sorted
    if len(times) == 0:
        return None, None
    return (
        pd.Timestamp(int(times[0]), unit="us", tz="UTC"),
        pd.Timestamp(int(times[-1]), unit="us", tz="UTC"),
    )


def _cents(values: pd.Series) -> np.ndarray:
    return np.round(values.to_numpy(dtype=float) * 100.0).astype(np.int64)


def _post_sums(timeline: Timeline, posts: dict[str, np.ndarray]) -> dict:
    """Running sums over each creator's posts in time order (see ``Timeline.running``);
    ``posts`` as from ``_post_arrays``."""
    shop, views, cents = posts["shop"], posts["views"], posts["cents"]
    log_views = np.round(np.log1p(views) * LOG_SCALE).astype(np.int64)
    # Gaps and calendar weeks need time order: computed on the sorted posts directly.
    sorted_time = timeline.take(posts["posted"])
    first_in_creator = timeline.is_first()
    gap_s = np.where(
        first_in_creator, 0, np.diff(sorted_time, prepend=sorted_time[:1]) // MICROS_PER_SECOND
    )
    week = sorted_time // (7 * MICROS_PER_DAY)
    new_week = first_in_creator | (np.diff(week, prepend=week[:1]) != 0)
    run = timeline.running
    return {
        "posts": run(np.ones(len(views), np.int8)),
        "shop": run(shop),
        "live": run(posts["live"]),
        "gaps": run(gap_s, presorted=True),
        "gaps_sq": run(gap_s * gap_s, presorted=True),
        "weeks": run(new_week, presorted=True),
        "views": run(views),
        "likes": run(posts["likes"]),
        "comments": run(posts["comments"]),
        "shares": run(posts["shares"]),
        "gmv": run(cents),
        "shop_views": run(views * shop),
        "shop_orders": run(posts["orders"] * shop),
        "shop_gmv": run(cents * shop),
        "log_views": run(log_views),
        "log_views_sq": run(log_views * log_views // LOG_SCALE),
    }


def _invitation_history(tables: dict, creator_index: pd.Index):
    """Timelines of invitation answers (known at answer or at campaign start for silence)
    and of campaign deliveries and results (known at the campaign's end)."""
    inv = tables["invitations"].merge(
        tables["campaigns"][["campaign_id", "start_at", "end_at"]], on="campaign_id", how="left"
    )
    inv = inv.merge(
        tables["campaign_results"][["campaign_id", "creator_id", "gmv"]],
        on=["campaign_id", "creator_id"],
        how="left",
    )
    code = creator_index.get_indexer(inv["creator_id"])
    answered = (inv["response"] != "no_response").to_numpy()
    known = np.where(
        answered, micros(inv["responded_at"].fillna(inv["start_at"])), micros(inv["start_at"])
    )
    answers = Timeline.build(code, known)
    wait_s = np.where(answered, (known - micros(inv["invited_at"])) // MICROS_PER_SECOND, 0)
    answer_sums = {
        "invitations": answers.running(np.ones(len(inv), np.int64)),
        "answered": answers.running(answered),
        "accepted": answers.running((inv["response"] == "accepted").to_numpy()),
        "wait_s": answers.running(wait_s),
    }
    deliveries = Timeline.build(code, micros(inv["end_at"]))
    promised = inv["posts_promised"].fillna(0).to_numpy(dtype=np.int64)
    delivered = inv["posts_delivered"].fillna(0).to_numpy(dtype=np.int64)
    delivery_sums = {
        "promised": deliveries.running(promised),
        "delivered": deliveries.running(delivered),
        "delivered_any": deliveries.running(delivered > 0),
        "gmv": deliveries.running(_cents(inv["gmv"].fillna(0.0))),
    }
    return answers, answer_sums, deliveries, delivery_sums
