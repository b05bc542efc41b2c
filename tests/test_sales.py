"""Expected sales (training.sales): the calibrated mean, the conformal intervals, the
provisional mark, the tail of the score map, and the new partner-list columns."""

from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from tests.worlds import brief_json
from training.model import SCORE_TAIL_FROM, Scorer, score_map_knots
from training.sales import (
    COVERAGE,
    PROVISIONAL_FEATURES,
    QUANTILE_LEVELS,
    SalesModel,
    coverage_at,
    decile_ratios,
    deciles_within,
    fit_sales_model,
    interval_ends,
    provisional,
    sales_metrics,
    sales_summary,
)


def synthetic_calibration(n: int, seed: int) -> pd.DataFrame:
    """Pairs whose gmv is 0 unless the creator sells (more often at a higher score; a
    provisional creator rarely), then log-normal around a level rising with the score,
    doubled in market B; provisional rows are noisier. As in the simulator, most pairs
    sell nothing, and most provisional ones have a chance of nothing above 80 %. ``truth``
    is each pair's expected gmv."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 100, n)
    is_provisional = rng.random(n) < 0.3
    market = np.where(rng.random(n) < 0.5, "A", "B")
    level = np.exp(2 + score / 25) * np.where(market == "B", 2.0, 1.0)
    chance = np.where(is_provisional, 0.02 + 0.2 * score / 100, 0.1 + 0.5 * score / 100)
    sells = rng.random(n) < chance
    sd = np.where(is_provisional, 1.0, 0.4)
    noise = np.exp(rng.normal(0, sd))
    return pd.DataFrame(
        {
            "campaign_id": [f"k{i // 20}" for i in range(n)],
            "creator_id": [f"c{i}" for i in range(n)],
            "score": score,
            "market": market,
            "category": "beauty",
            "commission_rate": 0.1,
            "provisional": is_provisional,
            "gmv": np.where(sells, level * noise, 0.0),
            "truth": level * chance * np.exp(sd**2 / 2),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[SalesModel, pd.DataFrame]:
    calibration = synthetic_calibration(20_000, seed=1)
    return fit_sales_model(calibration), synthetic_calibration(20_000, seed=2)


def predict(model: SalesModel, frame: pd.DataFrame) -> pd.DataFrame:
    return model.predict(
        frame["score"],
        frame["market"],
        frame["category"],
        frame["commission_rate"],
        frame["provisional"],
    )


def test_metrics_say_what_a_perfect_model_would_read(fitted):
    model, new = fitted
    predicted = predict(model, new)
    metrics = sales_metrics(predicted, new["gmv"], new["provisional"], truth=new["truth"])
    of_truth = metrics["sales_calibration_of_truth"]
    assert set(of_truth) == {f"decile{d}" for d in range(1, 11)}
    assert all(0.8 < r < 1.25 for r in of_truth.values())  # an unbiased truth, many rows
    truth_by_model = metrics["sales_calibration_truth"]
    assert all(0.7 < r < 1.4 for r in truth_by_model.values())  # the fit is close to it
    doubled = sales_metrics(predicted, 2 * new["gmv"], new["provisional"], truth=new["truth"])
    for name, ratio in of_truth.items():  # deciles of the truth: the sales do not move them
        assert doubled["sales_calibration_of_truth"][name] == pytest.approx(2 * ratio)
    assert doubled["sales_calibration_truth"] == truth_by_model
    summary = sales_summary(metrics).splitlines()
    assert f"coverage {metrics['sales_coverage']['all']:.3f}" in summary[1]
    assert summary[-1].endswith(f"({deciles_within(of_truth)} of 10 within 0.8-1.25)")
    assert deciles_within({"a": 0.79, "b": 0.8, "c": 1.25, "d": 1.26}) == 2


def test_expected_gmv_rises_with_the_score_and_follows_the_market(fitted):
    model, _ = fitted
    score = np.linspace(0, 100, 201)
    expected = model.expected(score, ["A"] * 201, ["beauty"] * 201, np.full(201, 0.1), False)
    assert (np.diff(expected) >= 0).all() and expected[-1] > 20 * expected[0]
    in_b = model.expected(score, ["B"] * 201, ["beauty"] * 201, np.full(201, 0.1), False)
    assert np.median(in_b / expected) == pytest.approx(2.0, rel=0.15)
    unknown = model.expected([50.0], ["ZZ"], ["beauty"], [np.nan], [False])[0]
    assert np.isfinite(unknown) and unknown > 0  # an unseen market gets the average


def test_new_data_is_calibrated_and_covered_in_both_groups(fitted):
    model, new = fitted
    predicted = predict(model, new)
    zero = model.zero_covered(predicted, new["provisional"])
    metrics = sales_metrics(
        predicted, new["gmv"], new["provisional"], zero, campaign=new["campaign_id"]
    )
    assert 0.85 < metrics["sales_ratio"] < 1.15
    assert all(0.7 < r < 1.4 for r in metrics["sales_calibration"].values())
    # each decile's campaign bootstrap interval holds its ratio
    for name, ratio in metrics["sales_calibration"].items():
        interval = metrics["sales_calibration_interval"]
        assert interval[f"{name}_lo"] <= ratio <= interval[f"{name}_hi"]
    # 80 % in both groups with ties at 0 shared out; as shown, more where 0 is likely
    for group in ("all", "established", "provisional"):
        assert 0.77 < metrics["sales_coverage"][group] < 0.83
        assert metrics["sales_coverage_plain"][group] >= metrics["sales_coverage"][group]
    assert metrics["sales_coverage_plain"]["provisional"] > 0.85  # mostly [0, 0]
    assert metrics["sales_zero_intervals"]["provisional"] > 0.5
    # each group's interval comes from its own rows
    assert model.bands["provisional"]["quantiles"] != model.bands["established"]["quantiles"]
    assert set(metrics["sales_interval_width"]) == {"established", "provisional"}


def test_chance_of_sale_follows_the_score_and_the_group(fitted):
    model, new = fitted
    predicted = predict(model, new)
    chance = predicted["chance_of_sale"].to_numpy()
    sold = new["gmv"].to_numpy() > 0
    for group in (False, True):
        rows = new["provisional"].to_numpy() == group
        assert chance[rows].mean() == pytest.approx(sold[rows].mean(), abs=0.02)
    high = new["score"].to_numpy() > 80
    assert chance[high].mean() > chance[~high].mean() + 0.2


def test_interval_is_the_level_of_the_zero_or_sale_distribution():
    ratio = np.linspace(0.5, 1.5, 101)  # if it sells: 0.5 to 1.5 x expected / chance
    rule = {"level": COVERAGE, "edges": [], "quantiles": [ratio.tolist()]}
    expected, chance = np.array([10.0, 10.0, 10.0]), np.array([0.1, 0.5, 0.95])
    low, high = interval_ends(rule, expected, chance)
    # 90 % sell nothing: [0, 0]
    assert (low[0], high[0]) == (0.0, 0.0)
    # half sell nothing: [0, the sold ratio's 60th percentile x 10 / 0.5]
    assert low[1] == 0.0
    assert high[1] == pytest.approx(np.interp(0.6, QUANTILE_LEVELS, ratio) * 20)
    # 5 % sell nothing: central, from quantile 0.1 to 0.9 of the whole, above 0
    at = [np.interp((q - 0.05) / 0.95, QUANTILE_LEVELS, ratio) * 10 / 0.95 for q in (0.1, 0.9)]
    assert (low[2], high[2]) == pytest.approx(tuple(at)) and low[2] > 0


def test_a_zero_in_a_zero_interval_counts_level_over_its_chance(fitted):
    model, new = fitted
    predicted = predict(model, new).head(2000)
    zero = model.zero_covered(predicted, new["provisional"].head(2000))
    nothing = 1 - predicted["chance_of_sale"].to_numpy()
    at_zero = predicted["gmv_high"].to_numpy() <= 0
    assert at_zero.any() and (~at_zero).any()
    level = np.where(
        new["provisional"].head(2000),
        *(model.bands[g]["level"] for g in ("provisional", "established")),
    )
    assert zero[at_zero] == pytest.approx(level[at_zero] / nothing[at_zero])
    assert (zero[~at_zero & (predicted["gmv_low"].to_numpy() == 0)] == 1).all()


def test_group_level_covers_its_calibration_rows():
    calibration = synthetic_calibration(5000, seed=3)
    model = fit_sales_model(calibration)
    for group, rows in (
        ("established", ~calibration["provisional"]),
        ("provisional", calibration["provisional"]),
    ):
        frame = calibration[rows]
        args = (
            frame["score"],
            frame["market"],
            frame["category"],
            frame["commission_rate"],
            frame["provisional"],
        )
        covered = coverage_at(
            model.bands[group],
            model.expected(*args),
            model.chance_of_sale(*args),
            frame["gmv"].to_numpy(),
        )
        assert covered == pytest.approx(COVERAGE, abs=0.005)


def test_trimmed_deciles_leave_out_the_largest_rows():
    expected = np.linspace(1, 10, 2000)
    observed = expected.copy()
    observed[-1] = 1e6  # one giant sale in the top decile
    assert decile_ratios(expected, observed)["decile10"] > 100
    kept = observed <= np.quantile(observed, 0.999)
    assert decile_ratios(expected, observed, keep=kept)["decile10"] == pytest.approx(1.0, rel=0.01)


def test_sales_model_is_plain_json(fitted):
    model, new = fitted
    again = SalesModel.from_dict(json.loads(json.dumps(model.as_dict())))
    pd.testing.assert_frame_equal(predict(again, new), predict(model, new))


def test_provisional_marks_each_thin_history():
    base = {
        "tenure_days": 400.0,
        "posts_per_week_180d": 2.0,
        "views_per_follower_180d": 0.3,
        "log_gmv_per_shoppable_post_all": 4.0,
        "campaigns_delivered": 3.0,
    }
    thin = {
        "tenure_days": 30.0,
        "posts_per_week_180d": 0.05,
        "views_per_follower_180d": np.nan,
        "log_gmv_per_shoppable_post_all": np.nan,
        "campaigns_delivered": 0.0,
    }
    rows = [base] + [{**base, name: thin[name]} for name in PROVISIONAL_FEATURES]
    assert provisional(pd.DataFrame(rows)).tolist() == [False] + [True] * len(PROVISIONAL_FEATURES)


def test_score_map_is_percentiles_then_a_line_to_the_best():
    raw = np.random.default_rng(0).normal(size=20_000)
    knots = score_map_knots(raw)
    scorer = Scorer(booster=None, score_map=knots)
    assert scorer.score(np.quantile(raw, [0.5, 0.8])) == pytest.approx([50.0, 80.0], abs=0.01)
    top = np.linspace(np.quantile(raw, SCORE_TAIL_FROM / 100), raw.max(), 50)
    steps = np.diff(scorer.score(top))
    assert steps == pytest.approx(np.full(49, steps[0]))  # straight in raw above 90
    assert scorer.score(np.array([raw.max(), raw.max() + 5])).tolist() == [100.0, 100.0]


def test_trained_model_reports_and_keeps_its_sales_model(trained, tmp_path):
    metrics = trained.metrics
    assert 0.6 < metrics["sales_coverage"]["all"] <= 1.0
    assert set(metrics["sales_coverage"]) == {"all", "established", "provisional"}
    assert metrics["sales_calibration"] and "sales_calibration_truth" in metrics
    assert set(metrics["sales_calibration_of_truth"]) == set(metrics["sales_calibration"])
    for group, covered in metrics["sales_coverage"].items():
        assert covered <= metrics["sales_coverage_plain"][group] + 1e-12
    interval = metrics["sales_calibration_interval"]
    assert set(interval) == {
        f"{d}_{end}" for d in metrics["sales_calibration"] for end in ("lo", "hi")
    }
    assert trained.scorer.sales is not None and trained.scorer.sales is trained.evaluated.sales
    paths = trained.scorer.save(tmp_path)
    loaded = Scorer.load(paths["booster"], paths["scoring"])
    frame = trained.test.head(200)
    raw = loaded.raw(frame)
    pd.testing.assert_frame_equal(
        loaded.expected_sales(frame, raw, "ID", "beauty"),
        trained.scorer.expected_sales(frame, raw, "ID", "beauty"),
    )


def test_partner_list_sales_columns(scored_briefs, serving_world):
    rows = scored_briefs
    assert rows["provisional"].dtype == bool
    assert (rows["gmv_low"] <= rows["gmv_high"]).all() and (rows["gmv_low"] >= 0).all()
    assert (rows["expected_gmv"] > 0).all()
    chance = rows["chance_of_sale"].to_numpy()
    assert ((chance > 0) & (chance < 1)).all()
    # the interval is [0, 0] exactly where nothing is at least the group's level likely
    bands = serving_world.scorer.sales.bands
    level = np.where(
        rows["provisional"], bands["provisional"]["level"], bands["established"]["level"]
    )
    np.testing.assert_array_equal(rows["gmv_high"].to_numpy() <= 0, 1 - chance >= level)
    assert (rows["gmv_high"] <= 0).any() and (rows["gmv_high"] > 0).any()
    for _, brief in rows.groupby("brief_id"):
        for _, group in brief.groupby("provisional"):  # same brief and group: by rank
            assert (np.diff(group.sort_values("rank")["expected_gmv"].to_numpy()) <= 1e-9).all()
        candidates = brief["rank"] * 100 / brief["top_percent"]
        assert candidates.round(6).nunique() == 1 and candidates.iloc[0] >= len(brief)


def test_creator_page_gives_rank_sales_and_recourse_in_ranks(explorer_world):
    brief = brief_json(explorer_world, top_k=3)
    answer = explorer_world.client.post("/api/partner-lists", json=brief).json()
    for row in answer["rows"][:3:2]:  # rank 1 and rank 3
        path = f"/creators/{quote(row['creator_id'], safe='')}"
        params = {"category": explorer_world.category, "as_of": brief["as_of"]}
        p = explorer_world.client.get(f"/api/{path.lstrip('/')}", params=params).json()
        assert (p["rank"], p["candidates"]) == (row["rank"], answer["candidates"])
        assert p["top_percent"] == pytest.approx(row["top_percent"])
        for c in ("expected_gmv", "gmv_low", "gmv_high", "chance_of_sale", "provisional"):
            assert p[c] == pytest.approx(row[c])
        outcomes = {c["outcome"] for c in p["counterfactuals"]}
        if row["rank"] == 1:
            assert outcomes == {"already first"}
        else:
            for c in p["counterfactuals"]:
                expect = "no change" if c["rank"] == 3 else f"rank 3 → {c['rank']}"
                assert c["outcome"] == expect and c["rank_change"] == 3 - c["rank"]
        page = explorer_world.client.get(path, params=params).text
        assert f"rank {row['rank']} of {answer['candidates']:,}" in page
        assert f"top {row['top_percent']:.1f} %" in page
        assert f"{100 * row['chance_of_sale']:.0f} %</span> chance of any sale" in page


def test_a_model_with_the_older_sales_format_loads_without_expected_sales(trained, tmp_path):
    paths = trained.scorer.save(tmp_path)
    scoring = json.loads(paths["scoring"].read_text())
    del scoring["sales"]["sale"]  # saved before the chance of a sale existed
    paths["scoring"].write_text(json.dumps(scoring))
    loaded = Scorer.load(paths["booster"], paths["scoring"])
    assert loaded.sales is None
    frame = trained.test.head(20)
    sales = loaded.expected_sales(frame, loaded.raw(frame), "ID", "beauty")
    assert sales["expected_gmv"].isna().all() and sales["chance_of_sale"].isna().all()
    assert sales["provisional"].dtype == bool
