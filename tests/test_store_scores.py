"""A model's precomputed scores in the store (``python -m store score``): the same raw
scores as scoring the stored features, the same partner lists as the raw data, and a
store that says when they no longer hold."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from commands.serving import main as serving_main
from commands.store import main as store_main
from explorer.core import checked_brief, explorer_on_store, partner_list, pool_of
from explorer.creators import creator_profile
from features.indices import family_indices, indices_of_rows
from serving.partner_list import partner_lists, rank_by_raw, rank_candidates
from store import layout
from store.read import INDEX_INPUTS, candidates, index_inputs, open_store
from store.scores import (
    commission_bin,
    commission_thresholds,
    computed_pool,
    score_set,
    stored_pool,
)
from store.snapshot import OTHER
from tests.conftest import write_briefs

DAY = pd.Timedelta(days=1)


def score(store: Path, world, *flags: str) -> int:
    return store_main(
        [
            "score",
            str(store),
            "--model",
            "models:/cs@champion",
            "--tracking-uri",
            world.tracking_uri,
        ]
        + list(flags)
    )


@pytest.fixture(scope="module")
def scored(serving_world, tmp_path_factory) -> Path:
    """serving_world's data in a store of two days, both scored by its model."""
    store = tmp_path_factory.mktemp("scored") / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    flags = ["--as-of", day, "--every", "60d", "--back", "60d"]
    assert store_main(["build", str(serving_world.data), "--out", str(store), *flags]) == 0
    assert score(store, serving_world) == 0
    return store


def test_stored_raw_scores_are_the_models_on_the_stored_features(serving_world, scored):
    store, scorer = open_store(scored), serving_world.scorer
    scores = score_set(store, scorer)
    assert scores is not None and scores.days == frozenset(store.days)
    rate = scorer.commission_rate_median
    assert scores.commission_rate == rate and scores.covers(store.days[0], rate)
    for day in store.days:
        for market in store.markets(day):
            for category in (*store.categories(day)[:3], "no-such-category", OTHER):
                got = stored_pool(store, scores, day, market, category)
                want = computed_pool(store, scorer, day, market, category, rate)
                assert len(got.raw) == len(want.raw) > 0
                np.testing.assert_array_equal(got.creator_id, want.creator_id)
                np.testing.assert_array_equal(got.followers, want.followers)
                np.testing.assert_array_equal(got.raw, want.raw)  # to the bit


def test_a_rate_in_the_same_bin_scores_every_candidate_the_same(serving_world, scored):
    store, scorer = open_store(scored), serving_world.scorer
    thresholds = commission_thresholds(scorer)
    assert len(thresholds) > 0  # the model splits on commission
    day, rate = store.days[-1], scorer.commission_rate_median
    low, high = commission_bin(thresholds, rate)
    inside = [r for r in (high, (max(low, 0.0) + high) / 2) if math.isfinite(r) and r > 0]
    base = computed_pool(store, scorer, day, "ID", "beauty", rate).raw
    for r in inside:
        assert score_set(store, scorer).covers(day, r)
        np.testing.assert_array_equal(
            computed_pool(store, scorer, day, "ID", "beauty", r).raw, base
        )
    outside = [float(thresholds[0]) / 2, float(thresholds[-1]) * 2]
    assert not any(score_set(store, scorer).covers(day, r) for r in outside)


def test_briefs_from_scores_are_the_raw_datas_partner_lists(serving_world, scored, tmp_path):
    scorer = serving_world.scorer
    store = open_store(scored)
    day = serving_world.as_of.strftime("%Y-%m-%d")
    earlier = store.days[0]
    rate = scorer.commission_rate_median
    high = commission_bin(commission_thresholds(scorer), rate)[1]
    other = float(commission_thresholds(scorer)[-1]) * 2
    briefs = write_briefs(
        tmp_path,
        "brief_id,market,category,as_of,top_k,min_followers,commission_rate\n"
        f"default,ID,beauty,{day},25,,\n"
        f"bin-edge,VN,food,{earlier},40,0,{high if math.isfinite(high) else rate}\n"
        f"followers,ID,fashion,{day},30,5000,\n"
        f"unknown,TH,no-such-category,{day},10,,\n"
        f"other-bin,ID,beauty,{day},20,,{other}\n",
    )
    frame = pd.read_csv(briefs)
    covered = [
        score_set(store, scorer).covers(
            pd.Timestamp(a).strftime("%Y-%m-%d"), rate if pd.isna(c) else c
        )
        for a, c in zip(frame["as_of"], frame["commission_rate"], strict=True)
    ]
    assert covered == [True, True, True, True, False]
    outs = {}
    for name, source in (("data", ["--data", serving_world.data]), ("store", ["--store", scored])):
        outs[name] = tmp_path / f"{name}.parquet"
        argv = ["--model", "models:/cs@champion", *[str(s) for s in source]]
        argv += ["--briefs", str(briefs), "--out", str(outs[name])]
        argv += ["--drift-report", str(tmp_path / f"{name}-drift.csv")]
        assert serving_main([*argv, "--tracking-uri", serving_world.tracking_uri]) == 0
    expected, got = pd.read_parquet(outs["data"]), pd.read_parquet(outs["store"])
    assert expected["brief_id"].nunique() == 5
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    drift = [pd.read_csv(tmp_path / f"{name}-drift.csv") for name in ("store", "data")]
    pd.testing.assert_frame_equal(*drift)


def test_the_explorer_reads_the_scores_and_pages_match(serving_world, scored):
    ex = explorer_on_store(scored, serving_world.scorer, "models:/cs/1")
    assert ex.scores is not None
    day = ex.last_day
    brief = serving_world.briefs.iloc[[0]].assign(as_of=day, min_followers=0, top_k=20)
    checked = checked_brief(ex, brief.iloc[0].to_dict() | {"commission_rate": None})
    rows, n = partner_list(ex, checked)
    b = checked.iloc[0]
    tables, history = serving_world.tables, serving_world.history
    want = partner_lists(tables, checked, serving_world.scorer, "models:/cs/1", history)
    pd.testing.assert_frame_equal(rows, want, check_exact=True)
    assert n == len(
        pool_of(ex, day.strftime("%Y-%m-%d"), b["market"], b["category"], b["commission_rate"]).raw
    )
    first = rows["creator_id"].iloc[3]
    profile = creator_profile(ex, first, category=b["category"], as_of=day)
    assert profile["rank"] == 4 and profile["raw_score"] == rows["raw_score"].iloc[3]


def test_scores_of_a_day_built_again_are_stale_and_dropped_days_go(serving_world, tmp_path, capsys):
    store = tmp_path / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    earlier = (serving_world.as_of - 30 * DAY).strftime("%Y-%m-%d")
    for d in (earlier, day):
        assert (
            store_main(["build", str(serving_world.data), "--out", str(store), "--as-of", d]) == 0
        )
    assert score(store, serving_world) == 0
    assert score(store, serving_world) == 0  # nothing left to score
    assert "already scored by this model" in capsys.readouterr().err
    digest = score_set(open_store(store), serving_world.scorer).digest
    manifest = json.loads((store / layout.MANIFEST).read_text())
    manifest["days"][day]["built_at"] = "2099-01-01T00:00:00+00:00"  # as if built again
    (store / layout.MANIFEST).write_text(json.dumps(manifest))
    assert score_set(open_store(store), serving_world.scorer).days == frozenset({earlier})
    assert store_main(["info", str(store)]) == 0
    assert "1 stale" in capsys.readouterr().out
    assert score(store, serving_world, "--days", day) == 0
    assert score_set(open_store(store), serving_world.scorer).days == frozenset({earlier, day})
    assert (
        store_main(
            ["build", str(serving_world.data), "--out", str(store), "--as-of", day, "--keep", "1"]
        )
        == 0
    )
    assert not layout.day_folder(layout.scores_folder(store, digest), earlier).exists()
    assert (
        earlier not in json.loads((store / layout.MANIFEST).read_text())["scores"][digest]["days"]
    )


def test_a_damaged_score_file_or_bad_flag_is_one_line(serving_world, scored, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(scored, copy)
    assert score(copy, serving_world, "--days", "1999-01-01") == 1
    assert "day 1999-01-01 is not stored" in capsys.readouterr().err.strip().splitlines()[-1]
    assert score(copy, serving_world, "--commission-rate", "0") == 1
    assert "--commission-rate must be above 0" in capsys.readouterr().err
    digest = score_set(open_store(copy), serving_world.scorer).digest
    day = open_store(copy).days[-1]
    path = layout.scores_file(copy, digest, day, "ID")
    path.write_bytes(path.read_bytes()[:100])
    assert store_main(["info", str(copy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "raw.parquet: unreadable" in err[0]


def test_ranking_a_pool_by_raw_alone_is_ranking_by_raw_then_creator_id():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 40, 500).astype(float) / 8  # many ties
    ids = np.array(sorted(f"c{i:05d}" for i in rng.choice(99_999, 500, replace=False)), object)
    want = rank_candidates(np.zeros(500, np.int64), raw, pd.Series(ids))
    np.testing.assert_array_equal(rank_by_raw(raw, ids), want)
    shuffled = rng.permutation(500)  # not ordered by creator_id: still the same ranks
    np.testing.assert_array_equal(rank_by_raw(raw[shuffled], ids[shuffled]), want[shuffled])


def test_indices_of_some_rows_are_the_family_indices_of_all(serving_world, scored):
    store = open_store(scored)
    inputs = index_inputs(store, store.days[-1], "ID", "beauty", 2000)
    full = family_indices(inputs, peers=np.zeros(len(inputs), np.int64))
    rows = np.random.default_rng(4).choice(len(inputs), 40, replace=False)
    got = indices_of_rows(inputs, rows)
    assert full.isna().any().any()  # rows without the history for some index
    pd.testing.assert_frame_equal(got, full.iloc[rows].reset_index(drop=True), check_exact=True)


def test_index_inputs_are_the_candidates_columns_nulls_included(serving_world, scored):
    store = open_store(scored)
    for day in store.days:
        for least in (0, 3000):
            inputs = index_inputs(store, day, "VN", "food", least)
            _, features, _ = candidates(store, day, "VN", "food", least)
            assert inputs.isna().any().any()  # missing values read as NaN
            want = features[list(INDEX_INPUTS)].reset_index(drop=True)
            pd.testing.assert_frame_equal(inputs, want, check_exact=True)
