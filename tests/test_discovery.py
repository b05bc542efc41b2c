"""Discovery (issue 21): look-alikes are the nearest creators in the nine look-alike
signals, found by the documented distance and scored like partner-list rows; rising lists hold only
short-history creators above what their size suggests, in the documented order; the API,
the pages and the batch commands agree; bad input is one line. The audit on hidden truth
runs on a small simulated world (slow)."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from commands.serving import main as serving_main
from commands.store import main as store_main
from serving.discovery import (
    MISSING_GAP,
    NEW_DAYS,
    PROVISIONAL,
    factor_weights,
    fit_momentum,
    lookalike_distance,
    lookalike_signals,
    midpoint_percentiles,
    momentum_design,
    nearest,
    rising_frame,
    short_history,
    size_design,
)
from serving.partner_list import INDEX_COLUMNS
from store.read import candidates
from tests.conftest import write_briefs
from tests.worlds import brief_json

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


# ------------------------------------------------------------------ the rules


def test_lookalike_distance_is_the_rms_gap_with_the_null_rules():
    query = np.array([50.0, np.nan, 20.0])
    rows = np.array(
        [
            [50.0, np.nan, 20.0],  # the same: 0
            [80.0, np.nan, 60.0],  # gaps 30, 0, 40
            [50.0, 70.0, 20.0],  # a value against the query's null: MISSING_GAP
            [np.nan, np.nan, np.nan],
        ]
    )
    got = lookalike_distance(rows, query)
    expected = [
        0.0,
        np.sqrt((30**2 + 0 + 40**2) / 3),
        np.sqrt(MISSING_GAP**2 / 3),
        np.sqrt(2 * MISSING_GAP**2 / 3),  # two values against nulls, two nulls
    ]
    np.testing.assert_allclose(got, expected)


def test_nearest_skips_the_creator_and_breaks_ties_by_id():
    distance = np.array([0.0, 5.0, 1.0, 5.0, 1.0, 9.0])
    ids = np.array(["a", "f", "e", "b", "c", "d"])
    assert nearest(distance, ids, 3, exclude=0).tolist() == [4, 2, 3]  # c, e, then b before f
    assert nearest(distance, ids, 10, exclude=0).tolist() == [4, 2, 3, 1, 5]
    assert nearest(distance, ids, 2).tolist() == [0, 4]


def test_factor_weights_count_a_noisy_measure_little():
    rng = np.random.default_rng(5)
    trait = rng.normal(size=3000)
    measures = np.column_stack(
        [trait + rng.normal(0, s, trait.size) for s in (0.3, 0.4, 0.5, 2.0)]
        + [rng.normal(size=trait.size)]  # shares nothing
    )
    measures[:50, 1] = np.nan  # nulls read as the median
    weights = factor_weights(np.column_stack([midpoint_percentiles(m) for m in measures.T]))
    assert weights[0] > weights[1] > weights[2] > 4 * weights[3] > 0
    assert weights[4] < 0.1 * weights[3]
    # shared by nothing: equal weights
    np.testing.assert_allclose(factor_weights(rng.normal(size=(200, 3)) * [0, 0, 0]), 1.0)


def _market(rng, n=400) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "log_followers": rng.normal(9, 1.5, n),
            "history_days": rng.uniform(20, 500, n),
            "posts_per_week_180d": rng.uniform(0.2, 5, n),
            "campaigns_delivered": rng.integers(0, 4, n).astype(float),
        }
    )


def test_rising_frame_finds_short_histories_above_their_size():
    rng = np.random.default_rng(3)
    features = _market(rng)
    raw = 0.5 * features["log_followers"].to_numpy() + rng.normal(0, 0.2, len(features))
    features.loc[0, ["history_days", "campaigns_delivered"]] = [60.0, 0.0]  # new, well above
    features.loc[1, ["history_days", "campaigns_delivered"]] = [400.0, 3.0]  # established
    raw[[0, 1]] += 3.0
    ids = np.array([f"c{i:03d}" for i in range(len(raw))])
    table = rising_frame(features, raw, ids)
    short = short_history(features)
    assert short[0] and not short[1]
    assert table.loc[0, "rising"] and table.loc[0, "order"] == 1
    assert not table.loc[1, "rising"] and table.loc[1, "order"] == 0
    rising = table[table["rising"]]
    assert (rising["lift"] + rising["uncertainty"] > 0).all() and short[rising.index].all()
    assert not table["momentum"].any()  # without a momentum, the estimate is the raw score
    np.testing.assert_allclose(table["estimate"], raw)
    assert (table.loc[~table["rising"], "order"] == 0).all()
    by_order = rising.sort_values("order")
    assert by_order["order"].tolist() == list(range(1, len(rising) + 1))
    assert by_order["lower"].is_monotonic_decreasing
    np.testing.assert_allclose(table["lower"], raw - table["uncertainty"])
    # what size and history suggest: fitted on the short histories (newcomers against
    # newcomers), evaluated on everyone
    design = size_design(features)
    coef, *_ = np.linalg.lstsq(design[short], raw[short], rcond=None)
    np.testing.assert_allclose(table["expected"], design @ coef)
    # more posts, firmer estimate: the uncertainty falls with the posts
    posts = features["posts_per_week_180d"].to_numpy()
    unc = table["uncertainty"].to_numpy()
    assert np.all(np.diff(unc[np.argsort(posts)]) <= 1e-12)
    assert features.loc[short, "history_days"].lt(NEW_DAYS).any()


def test_momentum_is_learned_from_the_earlier_day_and_ranks_the_rising():
    rng = np.random.default_rng(5)
    earlier, later_day = _market(rng), _market(rng)
    for frame in (earlier, later_day):
        frame["log_gmv_90d"] = rng.normal(3, 1, len(frame))
        frame["shoppable_per_week_90d"] = rng.uniform(0, 3, len(frame))
    raw_then = rng.normal(0, 1, len(earlier))
    truth = np.array([1.0, 0.3, -0.02, -0.4, 0.5, 0.6, 0.25])  # of momentum_design
    sold = momentum_design(earlier, raw_then) @ truth + rng.normal(0, 0.1, len(earlier))
    sold[:5] = np.nan  # not candidates any more: not fitted on
    momentum = fit_momentum(earlier, raw_then, sold)
    assert momentum is not None and momentum.rows == int(short_history(earlier)[5:].sum())
    design_then = momentum_design(earlier, raw_then)
    np.testing.assert_allclose(momentum.full[4:], truth[4:], atol=0.05)  # the non-size terms
    np.testing.assert_allclose(design_then @ momentum.full, design_then @ truth, atol=0.05)
    assert 0.05 < momentum.spread < 0.15
    raw_now = rng.normal(0, 1, len(later_day))
    ids = np.array([f"c{i:03d}" for i in range(len(raw_now))])
    table = rising_frame(later_day, raw_now, ids, momentum)
    design = momentum_design(later_day, raw_now)
    np.testing.assert_allclose(table["estimate"], design @ momentum.full)
    np.testing.assert_allclose(table["expected"], design[:, :4] @ momentum.size)
    np.testing.assert_allclose(table["lower"], table["estimate"] - table["uncertainty"])
    assert table["momentum"].all()
    rising = table[table["rising"]].sort_values("order")
    assert (rising["lift"] + rising["uncertainty"] > 0).all()
    assert short_history(later_day)[rising.index].all()
    assert rising["lower"].is_monotonic_decreasing and len(rising) > 0
    # too few newcomers to fit: no momentum (the raw score is the estimate)
    few = earlier.assign(history_days=1000.0, campaigns_delivered=5.0)
    few.loc[:10, ["history_days", "campaigns_delivered"]] = [10.0, 0.0]
    assert fit_momentum(few, raw_then, sold) is None


# ------------------------------------------------------------------ the explorer


def _all_candidates(explorer_world, category):
    brief = brief_json(explorer_world, category=category, top_k=1000)
    return pd.DataFrame(explorer_world.client.post("/api/partner-lists", json=brief).json()["rows"])


def test_lookalike_signals_read_the_families_measures(explorer_world):
    """One measure: its longest window's percentile; two: the stored index; more: a
    weighted mean of the measures' percentiles: 0-100, null exactly where the index is."""
    day = explorer_world.as_of.strftime("%Y-%m-%d")
    store = explorer_world.explorer.store
    _, features, indices = candidates(store, day, explorer_world.market, explorer_world.category)
    signals = pd.DataFrame(lookalike_signals(features, indices), columns=list(INDEX_COLUMNS))
    month_old = features["history_days"].to_numpy() >= 30
    posts = features["posts_per_week_180d"].where(month_old)
    expected = 100 * (posts.rank() - 0.5) / posts.notna().sum()
    np.testing.assert_allclose(signals["volume_index"], expected.to_numpy())
    np.testing.assert_allclose(signals["consistency_index"], indices["consistency_index"])
    for column in INDEX_COLUMNS:  # null exactly where the index is
        assert signals[column].isna().tolist() == indices[column].isna().tolist()
        assert signals[column].dropna().between(0, 100).all()
    assert signals["engagement_index"].corr(indices["engagement_index"], method="spearman") > 0.7


def test_similar_is_the_nearest_by_the_documented_distance(explorer_world):
    category = explorer_world.category
    everyone = _all_candidates(explorer_world, category).set_index("creator_id")
    me = everyone.index[3]
    answer = explorer_world.client.get(
        f"/api/creators/{quote(me, safe='')}/similar",
        params={"category": category, "as_of": explorer_world.as_of.isoformat(), "k": 6},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    rows = pd.DataFrame(body["rows"])
    assert body["k"] == 6 and len(rows) == 6 and me not in set(rows["creator_id"])
    day = explorer_world.as_of.strftime("%Y-%m-%d")
    store = explorer_world.explorer.store
    pairs, features, indices = candidates(store, day, explorer_world.market, category)
    ids = pairs["creator_id"].astype(str).to_numpy()
    assert set(ids) == set(everyone.index)
    signals = lookalike_signals(features, indices)
    at = int(np.flatnonzero(ids == me)[0])
    distance = lookalike_distance(signals, signals[at])
    others = pd.DataFrame({"d": distance, "id": ids}).drop(at)
    expected = others.sort_values(["d", "id"]).head(6)
    assert rows["creator_id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(rows["distance"], expected["d"], rtol=1e-12)
    assert rows["rank"].tolist() == list(range(1, 7))
    for c in ("score", "raw_score", *INDEX_COLUMNS):  # the partner list's values, row for row
        np.testing.assert_allclose(
            rows[c].astype(float), everyone.loc[rows["creator_id"], c].astype(float), rtol=1e-12
        )
    assert rows["reasons"].str.len().gt(0).all()


def test_similar_bad_requests_are_one_line(explorer_world):
    client = explorer_world.client
    assert client.get("/api/creators/nobody/similar").status_code == 404
    me = _all_candidates(explorer_world, explorer_world.category)["creator_id"].iloc[0]
    url = f"/api/creators/{quote(me, safe='')}/similar"
    for params, field in (({"k": 0}, "k"), ({"category": "nope"}, "category")):
        answer = client.get(url, params=params)
        assert answer.status_code == 422 and answer.json()["detail"].startswith(f"{field}: ")


def test_rising_lists_short_histories_in_order(explorer_world):
    for category in (explorer_world.category, None):
        params = {"market": explorer_world.market, "as_of": explorer_world.as_of.isoformat()}
        if category:
            params["category"] = category
        answer = explorer_world.client.get("/api/rising", params={**params, "top": 15})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows = pd.DataFrame(body["rows"])
        assert 0 < len(rows) <= 15 and body["rising"] >= len(rows)
        assert body["category"] == (category or "own")
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["provisional"].all() and rows["why"].str.contains(PROVISIONAL).all()
        assert (rows["lift"] + rows["uncertainty"] > 0).all()
        # a stored day 90 days before: the estimate is the sales momentum, in log(1 +
        # gmv / 100), shown as the next 90 days' gmv
        assert rows["sales_90d"].notna().all() and (rows["sales_90d"] >= 0).all()
        lower = np.log1p(rows["sales_90d"] / 100) - rows["uncertainty"]
        assert lower.is_monotonic_decreasing
    bad = explorer_world.client.get("/api/rising", params={"market": "XX"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("market: ")


def test_rising_reads_nothing_after_its_day(explorer_world, tmp_path):
    """The rising list of a day (its momentum fitted on a stored day 90 or more days
    before) is the same to the bit from a store built on tables whose every fact not yet
    known that day was changed (``change_the_future``): nothing later moves it."""
    from marketplace.validate import load_valid_tables
    from store.build import build_in_memory
    from store.discovery import momentum_day, rising_table
    from store.read import open_store
    from tests.test_point_in_time import change_the_future

    ex = explorer_world.explorer
    day = explorer_world.as_of.strftime("%Y-%m-%d")
    earlier = momentum_day(ex.store, day)
    assert earlier is not None and earlier < day
    changed = change_the_future(load_valid_tables(explorer_world.data), explorer_world.as_of)
    days = [pd.Timestamp(earlier, tz="UTC"), explorer_world.as_of]
    build_in_memory(tmp_path / "changed", None, changed, days)
    market = explorer_world.market
    args = (ex.scorer, "test", market, explorer_world.category, day)
    _, full = rising_table(ex.store, *args)
    _, past = rising_table(open_store(tmp_path / "changed"), *args)
    assert full["momentum"].all() and full["rising"].any()
    pd.testing.assert_frame_equal(full, past, check_exact=True)


def test_pages_show_similar_creators_and_rising(explorer_world):
    client = explorer_world.client
    me = _all_candidates(explorer_world, explorer_world.category)["creator_id"].iloc[0]
    page = client.get(
        f"/creators/{quote(me, safe='')}",
        params={"category": explorer_world.category, "as_of": explorer_world.as_of.isoformat()},
    )
    assert page.status_code == 200 and 'id="similar"' in page.text
    rising = client.get("/rising", params={"market": explorer_world.market})
    assert rising.status_code == 200 and 'id="rising"' in rising.text
    assert "Provisional" in rising.text


# ------------------------------------------------------------------ batch commands


def _batch(explorer_world, command: str, *more: str) -> int:
    return serving_main(
        [
            command,
            "--model",
            "models:/cs@champion",
            "--store",
            str(explorer_world.explorer.store.path),
            "--tracking-uri",
            explorer_world.tracking_uri,
            *more,
        ]
    )


def test_batch_similar_and_rising_equal_the_api(explorer_world, tmp_path, capsys):
    day = explorer_world.as_of.strftime("%Y-%m-%d")
    me = _all_candidates(explorer_world, explorer_world.category)["creator_id"].iloc[1]
    out = tmp_path / "similar.parquet"
    assert (
        _batch(
            explorer_world,
            "similar",
            "--creators",
            me,
            "--category",
            explorer_world.category,
            "--as-of",
            day,
            "--k",
            "4",
            "--out",
            str(out),
        )
        == 0
    )
    api = explorer_world.client.get(
        f"/api/creators/{quote(me, safe='')}/similar",
        params={"category": explorer_world.category, "as_of": day, "k": 4},
    ).json()["rows"]
    got = pd.read_parquet(out)
    assert got["creator_id"].tolist() == [r["creator_id"] for r in api]
    np.testing.assert_allclose(got["score"], [r["score"] for r in api])
    briefs = write_briefs(
        tmp_path,
        "brief_id,market,category,as_of,top_k\n"
        f"r1,{explorer_world.market},{explorer_world.category},{day},5\n"
        f"r2,{explorer_world.market},own,{day},3\n",
    )
    out = tmp_path / "rising.csv"
    assert _batch(explorer_world, "rising", "--briefs", str(briefs), "--out", str(out)) == 0
    rows = pd.read_csv(out)
    assert set(rows["brief_id"]) <= {"r1", "r2"} and rows["provisional"].all()
    api = explorer_world.client.get(
        "/api/rising",
        params={
            "market": explorer_world.market,
            "category": explorer_world.category,
            "as_of": day,
            "top": 5,
        },
    ).json()["rows"]
    assert rows.loc[rows["brief_id"] == "r1", "creator_id"].tolist() == [
        r["creator_id"] for r in api
    ]
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    assert _batch(explorer_world, "similar", "--creators", "nobody", "--out", str(bad)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --creators: not candidates") and not bad.exists()


# ------------------------------------------------------------------ the audit


def _audit_claims(capsys) -> tuple[float, float]:
    """(look-alike ratio, rising gain) of the audit's printed verdicts."""
    text = capsys.readouterr().out
    assert "look-alikes" in text and "rising" in text
    claims = [
        line for line in text.splitlines() if line.strip().startswith(("look-alikes:", "rising:"))
    ]
    ratio, gain = (float(line.split()[-4]) for line in claims)  # value, target, ok
    return ratio, gain


@pytest.mark.slow
def test_audit_discovery_on_a_small_world(tmp_path, capsys):
    """The audit end to end on 2,500 creators: the look-alikes' trait distance well under
    a random creator's, rising lists ahead of the followers-growth list. The issue's
    targets are for 10,000 creators and more (the tests below): at this size a market
    has a few hundred candidates, so neighbours are farther and lists shorter."""
    from marketplace import summary

    data = summary.tiny_marketplace(tmp_path / "data", creators=2500, days=540, seed=3)
    status = store_main(["audit-discovery", str(data), "--top", "30", "--queries", "60"])
    assert status in (0, 1)
    ratio, gain = _audit_claims(capsys)
    assert ratio < 0.7  # 0.62 (0.64 with the nine indices as they are)
    assert gain > 1.5  # 2.17 (1.89 with the raw score as the estimate)


@pytest.mark.slow
def test_rising_meets_the_target_at_10000_creators(tmp_path, capsys):
    """The rising target (at least twice the followers-growth list's share of future top
    sellers) on the default world of 10,000 creators, seed 100: the audit's own quick
    model, store and lists (docs/discovery.md: 2.03; many-new 2.65)."""
    from marketplace import summary
    from store.discovery_audit import MIN_GAIN

    data = summary.tiny_marketplace(tmp_path / "data", creators=10_000, days=540, seed=100)
    store_main(["audit-discovery", str(data)])
    _, gain = _audit_claims(capsys)
    assert gain >= MIN_GAIN


@pytest.mark.slow
def test_lookalikes_meet_the_target_at_30000_creators(tmp_path):
    """The look-alike target (at most half a random creator's trait distance) where markets
    are big enough for close neighbours: 30,000 creators (docs/discovery.md: 0.54 at
    10,000, 0.49 at 30,000). No model: look-alikes need only the store."""
    from marketplace.simulate import SimConfig, simulate
    from store.build import build_in_memory
    from store.discovery_audit import MAX_RATIO, audit_days, lookalike_table
    from store.read import open_store

    tables, truth = simulate(SimConfig(creators=30_000, days=540, seed=100))
    day, _ = audit_days(tables)
    build_in_memory(tmp_path / "store", None, tables, [day])
    declared = tables["creators"].set_index("creator_id")["primary_category"]
    table = lookalike_table(
        open_store(tmp_path / "store"), day.strftime("%Y-%m-%d"), truth["creator_traits"], declared
    )
    assert float(table.loc[table["market"] == "all", "ratio"].iloc[0]) <= MAX_RATIO
