"""Serving: briefs, the candidate rule, partner lists, reasons, model URIs, the command
and the MLflow pyfunc behind ``mlflow models serve``.

One small simulated marketplace and one quickly trained, logged and registered model
(module scope) serve every test; the candidate rule is checked on hand-made tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.build import build_features, index_history
from features.registry import FAMILIES, FEATURE_NAMES
from marketplace.contract import STRING_DTYPE, TIMESTAMP_DTYPE
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from marketplace.validate import load_valid_tables
from serving.__main__ import main as serving_main
from serving.briefs import BriefError, check_briefs, read_briefs
from serving.candidates import find_candidates
from serving.model import ModelError, check_features, load_model
from serving.partner_list import (
    NOTHING_STANDS_OUT,
    PARTNER_COLUMNS,
    PHRASES,
    partner_lists,
    rank_candidates,
    reasons_text,
    with_model_defaults,
)
from training.config import load_config
from training.model import Scorer
from training.pyfunc import ENTRY_FILE
from training.run import train
from training.tracking import log_training

# The partner list's columns, in the data contract's order.
CONTRACT_COLUMNS = [
    "brief_id", "creator_id", "rank", "score",
    "engagement_index", "volume_index", "consistency_index", "diligence_index",
    "cooperation_index", "sales_index", "category_index", "growth_index", "authenticity_index",
    "raw_score", "contrib_base", "contrib_engagement", "contrib_volume", "contrib_consistency",
    "contrib_diligence",
    "contrib_cooperation", "contrib_sales", "contrib_category", "contrib_growth",
    "contrib_authenticity", "contrib_other", "reasons", "model_version",
]
INDEX_COLUMNS = [c for c in CONTRACT_COLUMNS if c.endswith("_index")]
CONTRIB_COLUMNS = [c for c in CONTRACT_COLUMNS if c.startswith("contrib_")]
DAY = pd.Timedelta(days=1)


# ------------------------------------------------------------------ shared world


@dataclasses.dataclass
class World:
    root: Path
    data: Path
    tables: dict
    history: object
    tracking_uri: str
    scorer: Scorer
    as_of: pd.Timestamp
    briefs: pd.DataFrame
    briefs_csv: Path


def _tiny_scorer(names: list[str]) -> Scorer:
    """A two-tree Scorer on random data that expects the feature ``names``."""
    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.random((60, len(names))), label=rng.random(60), feature_name=names)
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1,
                         "min_data_in_leaf": 5}, data, num_boost_round=2)
    return Scorer(booster, {"raw": [0.0, 1.0], "score": [0.0, 100.0]}, 0.1)


def _wrong_features_model(root: Path, name: str) -> None:
    """Register a creator-scores pyfunc whose booster knows other feature names."""
    paths = _tiny_scorer([*FEATURE_NAMES[:-1], "bogus_feature"]).save(root / "wrong")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=str(ENTRY_FILE),
                                       artifacts={k: str(v) for k, v in paths.items()})
    mlflow.register_model(info.model_uri, name)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("serving")
    simulated, _ = simulate(SimConfig(creators=600, days=240, seed=5))
    data = root / "data"
    write_tables(simulated, data)
    tables = load_valid_tables(data)
    cfg = dataclasses.replace(load_config(), max_rounds=30, objectives=("lambdarank",),
                              num_threads=1)
    result = train(tables, cfg)
    uri = f"sqlite:///{root}/mlflow.db"
    # Artifacts under the temporary folder too (MLflow's default is ./mlruns).
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("test", artifact_location=(root / "artifacts").as_uri())
    logged = log_training(result, uri, "test", register="cs")   # version 1, champion
    assert logged.version is not None
    client = MlflowClient(uri)
    source = client.get_model_version("cs", logged.version).source
    second = mlflow.register_model(source, "cs").version          # version 2, same model
    client.set_registered_model_alias("cs", "challenger", second)
    _wrong_features_model(root, "cs_wrong")
    scorer, _ = load_model("models:/cs/1", uri)
    as_of = tables["posts"]["posted_at"].max().normalize() - 14 * DAY
    briefs = pd.DataFrame({
        "brief_id": ["id-beauty", "th-fashion", "vn-food", "gb-home", "xx-none"],
        "market": ["ID", "TH", "VN", "GB", "XX"],
        "category": ["beauty", "fashion", "food", "home", "beauty"],
        "as_of": [as_of, as_of, as_of, as_of - 60 * DAY, as_of],
        "top_k": [np.nan, 10, 5, 20, 5],
        "min_followers": [np.nan, 1000, np.nan, 0, np.nan],
        "commission_rate": [np.nan, 0.1, 0.2, np.nan, np.nan],
    })
    briefs_csv = root / "briefs.csv"
    text = briefs.copy()
    text["as_of"] = text["as_of"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    text.astype({"top_k": "Int64", "min_followers": "Int64"}).to_csv(briefs_csv, index=False)
    return World(root=root, data=data, tables=tables, history=index_history(tables),
                 tracking_uri=uri, scorer=scorer, as_of=as_of, briefs=briefs,
                 briefs_csv=briefs_csv)


@pytest.fixture(scope="module")
def scored(world) -> pd.DataFrame:
    warnings_seen: list[str] = []
    out = partner_lists(world.tables, world.briefs, world.scorer, "models:/cs/1",
                        world.history, warn=warnings_seen.append)
    out.attrs["warnings"] = warnings_seen
    return out


def run_cli(capsys, *args) -> tuple[int, str]:
    code = serving_main([str(a) for a in args])
    return code, capsys.readouterr().err


def cli_args(world, briefs, out, model="models:/cs@champion"):
    return ["--model", model, "--data", world.data, "--briefs", briefs, "--out", out,
            "--tracking-uri", world.tracking_uri]


# ------------------------------------------------------------------ the partner list


def test_columns_and_dtypes_follow_the_contract(scored):
    assert list(scored.columns) == CONTRACT_COLUMNS == list(PARTNER_COLUMNS)
    assert scored["rank"].dtype == np.int64
    for column in ("score", "raw_score", *INDEX_COLUMNS, *CONTRIB_COLUMNS):
        assert scored[column].dtype == np.float64, column
    assert scored["brief_id"].dtype == STRING_DTYPE and scored["creator_id"].dtype == STRING_DTYPE
    assert set(scored["model_version"]) == {"models:/cs/1"}
    assert scored["reasons"].str.len().min() > 0


def test_contributions_add_up_to_raw_score(scored):
    total = scored[CONTRIB_COLUMNS].sum(axis=1)
    assert np.abs(total - scored["raw_score"]).max() < 1e-6


def test_score_is_the_models_monotone_map(world, scored):
    by_raw = scored.sort_values("raw_score")
    assert (np.diff(by_raw["score"].to_numpy()) >= 0).all()
    assert scored["score"].between(0, 100).all()
    np.testing.assert_array_equal(scored["score"],
                                  world.scorer.score(scored["raw_score"].to_numpy()))


def test_ranks_run_from_one_to_k_ordered_by_brief_then_rank(world, scored):
    # Briefs keep the file's order; the one without candidates has no rows.
    assert list(dict.fromkeys(scored["brief_id"])) == [
        "id-beauty", "th-fashion", "vn-food", "gb-home"]
    top_k = {"id-beauty": 50, "th-fashion": 10, "vn-food": 5, "gb-home": 20}
    for brief_id, rows in scored.groupby("brief_id", sort=False):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert len(rows) == top_k[brief_id]
        assert (np.diff(rows["raw_score"].to_numpy()) <= 0).all()
        assert not rows["creator_id"].duplicated().any()


def test_chunks_do_not_change_the_result_and_report_progress(world, scored):
    lines: list[str] = []
    chunked = partner_lists(world.tables, world.briefs, world.scorer, "models:/cs/1",
                            world.history, progress=lines.append, warn=lambda m: None,
                            chunk_pairs=1)
    pd.testing.assert_frame_equal(chunked, scored)
    assert len(lines) == 5 and lines[-1].startswith("scored 5/5 briefs")


def test_ties_in_raw_score_go_to_the_smaller_creator_id():
    rank = rank_candidates(np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 2.0, 0.0]),
                           pd.Series(["b", "c", "a", "z"]))
    assert rank.tolist() == [3, 2, 1, 1]


def test_default_top_k_is_50(world, scored):
    candidates = find_candidates(world.tables, check_briefs(world.briefs.iloc[:1]), world.history)
    assert len(candidates) > 50
    assert (scored["brief_id"] == "id-beauty").sum() == 50


def test_indices_are_percentiles_among_all_candidates(world, scored):
    values = scored[INDEX_COLUMNS].to_numpy()
    known = values[~np.isnan(values)]
    assert len(known) > 0.5 * values.size and ((known >= 0) & (known <= 100)).all()
    # Whatever top_k is, a creator's indices (and scores) are the same: they are ranked
    # among all the brief's candidates, not among the selected ones.
    wide = world.briefs.iloc[[2]].assign(top_k=1000)
    everyone = partner_lists(world.tables, wide, world.scorer, "models:/cs/1", world.history)
    assert len(everyone) > 5
    narrow = scored[scored["brief_id"] == "vn-food"].reset_index(drop=True)
    pd.testing.assert_frame_equal(narrow, everyone.iloc[:5].reset_index(drop=True))
    # Percentiles among all candidates reach both ends of the scale.
    assert np.nanmin(everyone[INDEX_COLUMNS]) < 10 and np.nanmax(everyone[INDEX_COLUMNS]) > 90


def test_briefs_across_markets_select_only_their_market(world, scored):
    markets = world.tables["creators"].set_index("creator_id")["market"]
    expected = world.briefs.set_index("brief_id")["market"]
    assert (markets.reindex(scored["creator_id"]).to_numpy()
            == expected.reindex(scored["brief_id"]).to_numpy()).all()
    # min_followers is respected: the TH brief asked for at least 1,000.
    th = scored[scored["brief_id"] == "th-fashion"]
    followers = find_candidates(world.tables, check_briefs(world.briefs.iloc[[1]]), world.history)
    assert (followers.set_index("creator_id").loc[th["creator_id"], "followers"] >= 1000).all()


def test_brief_without_candidates_gives_no_rows_and_a_warning(world, scored):
    assert "xx-none" not in set(scored["brief_id"])
    assert len(scored.attrs["warnings"]) == 1 and "xx-none" in scored.attrs["warnings"][0]
    with pytest.warns(UserWarning, match="xx-none"):
        out = partner_lists(world.tables, world.briefs.iloc[[4]], world.scorer, "v", world.history)
    assert out.empty and list(out.columns) == CONTRACT_COLUMNS


def test_commission_defaults_to_the_models_median(world):
    median = world.scorer.commission_rate_median
    assert 0 < median < 1
    filled = with_model_defaults(check_briefs(world.briefs), world.scorer)
    assert filled["commission_rate"].tolist() == [median, 0.1, 0.2, median, median]
    implicit = world.briefs.iloc[[0]].assign(top_k=8)
    run = lambda b: partner_lists(world.tables, b, world.scorer, "v", world.history)  # noqa: E731
    out = run(implicit)
    pd.testing.assert_frame_equal(out, run(implicit.assign(commission_rate=median)))
    # The median reaches the model as the commission_rate feature of every candidate.
    requests = out[["creator_id"]].assign(as_of=world.as_of, category="beauty",
                                          commission_rate=median)
    features = build_features(world.tables, requests, world.history)
    np.testing.assert_array_equal(out["raw_score"], world.scorer.raw(features))


def test_future_facts_do_not_change_the_partner_list(world):
    """Posts, snapshots and campaigns after as_of, and metrics not yet measured at as_of,
    can change or vanish without changing the list."""
    as_of = world.tables["campaigns"]["created_at"].median().normalize()
    briefs = world.briefs.iloc[[0, 1, 2]].assign(as_of=as_of, top_k=30)
    before = partner_lists(world.tables, briefs, world.scorer, "v", world.history)
    cut = dict(world.tables)
    posts = cut["posts"][cut["posts"]["posted_at"] < as_of]
    unmeasured = posts["posted_at"] + 7 * DAY > as_of
    assert unmeasured.sum() > 10
    cut["posts"] = posts.assign(
        views=posts["views"].where(~unmeasured, posts["views"] * 3 + 1),
        gmv=posts["gmv"].where(~unmeasured, posts["gmv"] + 5.0))
    snapshots = cut["follower_snapshots"]
    cut["follower_snapshots"] = snapshots[snapshots["snapshot_date"] + DAY <= as_of]
    later = cut["campaigns"]["created_at"] > as_of
    assert later.any()
    cut["campaigns"] = cut["campaigns"][~later]
    for name in ("invitations", "campaign_results"):
        cut[name] = cut[name][cut[name]["campaign_id"].isin(cut["campaigns"]["campaign_id"])]
    after = partner_lists(cut, briefs, world.scorer, "v")
    assert len(before) == 90
    pd.testing.assert_frame_equal(before, after)


def test_reasons_are_short_sentences_from_the_largest_families(scored):
    families = "|".join(FAMILIES)
    categories = dict(zip(scored["brief_id"], scored["brief_id"].str.split("-").str[1], strict=True))
    for brief_id, text in zip(scored["brief_id"], scored["reasons"], strict=True):
        parts = text.split("; ")
        assert 1 <= len(parts) <= 3 and text[0].isupper()
        without_history = {p[2].format(category=categories[brief_id]) for p in PHRASES.values()}
        for part in parts:   # "<phrase> (<family> <index>)", or a known lack of history
            assert (re.search(rf" \((?:{families}) \d+\)$", part)
                    or part[:1].lower() + part[1:] in without_history), part
    # The category family names the brief's own category.
    for brief_id, category in (("id-beauty", "beauty"), ("th-fashion", "fashion")):
        texts = scored.loc[scored["brief_id"] == brief_id, "reasons"]
        mentions = texts[texts.str.contains(r"\(category \d+\)|in \w+$|in \w+;", regex=True)]
        assert all(category in t for t in mentions)
    assert scored["reasons"].str.contains(rf"\((?:{families}) \d+\)", regex=True).mean() > 0.9


def test_reasons_recipe_by_hand():
    position = {family: i for i, family in enumerate(FAMILIES)}
    at = lambda *families: [position[f] for f in families]  # noqa: E731
    contrib = np.zeros(len(FAMILIES))
    index = np.full(len(FAMILIES), 50.0)
    assert reasons_text(contrib, index, "beauty") == NOTHING_STANDS_OUT
    # sales +0.4 (index 91), cooperation +0.3 (84), consistency -0.2 (22), growth +0.01 (tiny)
    contrib[at("sales", "cooperation", "consistency", "growth")] = [0.4, 0.3, -0.2, 0.01]
    index[at("sales", "cooperation", "consistency")] = [91.2, 83.6, 21.5]
    assert reasons_text(contrib, index, "beauty") == (
        "Sells well (sales 91); answers brands reliably (cooperation 84); "
        "posts in irregular bursts (consistency 22)")
    # Only lifts: the third slot goes to the next largest; the category is named; a null
    # index means too little history for the family.
    contrib[:] = 0
    contrib[at("category", "engagement", "diligence")] = [0.5, 0.2, 0.1]
    index[position["engagement"]] = np.nan
    assert reasons_text(contrib, index, "home") == (
        "Strong in home (category 50); too few measured posts to judge engagement; "
        "commits to shoppable posts and LIVEs (diligence 50)")
    # An index that disagrees with the contribution's sign gets a neutral phrase.
    contrib[at("category", "diligence")] = [-0.5, 0.1]
    index[at("category", "diligence")] = [75.0, 30.0]
    assert reasons_text(contrib, index, "food") == (
        "Too few measured posts to judge engagement; diligence lifts the score (diligence 30); "
        "fit with food holds the score back (category 75)")


# ------------------------------------------------------------------ the candidate rule


def _ids(*values):
    return pd.Series(values, dtype=STRING_DTYPE)


def _times(*values):
    return pd.Series(list(values)).astype(TIMESTAMP_DTYPE)


AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def hand_tables() -> dict[str, pd.DataFrame]:
    """GB creators a..f and MY creator d, each testing one edge of the candidate rule."""
    second = pd.Timedelta(seconds=1)
    post_times = {
        "a": AS_OF - 90 * DAY,              # exactly 90 days before: counts
        "b": AS_OF,                         # at as_of: does not count ...
        "b2": AS_OF - 90 * DAY - second,    # ... nor one second before the window
        "c": AS_OF - 10 * DAY,              # recent, but only 500 followers
        "d": AS_OF - DAY,                   # recent, but market MY
        "e": AS_OF - pd.Timedelta(microseconds=1),  # just before as_of: counts
        "f": AS_OF - 5 * DAY,               # recent; today's snapshot is not known yet
    }
    creators = ["a", "b", "c", "d", "e", "f"]
    posts = pd.DataFrame({
        "post_id": _ids(*[f"p_{k}" for k in post_times]),
        "creator_id": _ids(*[k[0] for k in post_times]),
        "posted_at": _times(*post_times.values()),
        "format": _ids(*["video"] * len(post_times)),
        "category": _ids(*["beauty"] * len(post_times)),
        "is_shoppable": np.ones(len(post_times), bool),
        **{c: np.full(len(post_times), 100, np.int64)
           for c in ("views", "likes", "comments", "shares", "orders")},
        "gmv": np.full(len(post_times), 50.0),
    })
    snapshots = pd.DataFrame({
        "creator_id": _ids("a", "b", "c", "d", "e", "f", "f"),
        "snapshot_date": _times(AS_OF - 10 * DAY, AS_OF - 10 * DAY, AS_OF - 10 * DAY,
                                AS_OF - 10 * DAY, AS_OF - DAY, AS_OF - 3 * DAY, AS_OF),
        "followers": np.array([5000, 5000, 500, 5000, 1500, 800, 5000], np.int64),
    })
    return {
        "creators": pd.DataFrame({
            "creator_id": _ids(*creators), "market": _ids("GB", "GB", "GB", "MY", "GB", "GB"),
            "joined_at": _times(*[AS_OF - 400 * DAY] * 6),
            "primary_category": _ids("beauty", None, "home", "beauty", "beauty", None),
        }),
        "follower_snapshots": snapshots,
        "posts": posts,
        "campaigns": pd.DataFrame({
            "campaign_id": _ids("k"), "brand_id": _ids("x"), "market": _ids("GB"),
            "category": _ids("beauty"), "created_at": _times(AS_OF - 60 * DAY),
            "start_at": _times(AS_OF - 55 * DAY), "end_at": _times(AS_OF - 30 * DAY),
            "commission_rate": np.array([0.1]),
        }),
        "invitations": pd.DataFrame({
            "campaign_id": _ids("k"), "creator_id": _ids("a"),
            "invited_at": _times(AS_OF - 60 * DAY), "response": _ids("accepted"),
            "responded_at": _times(AS_OF - 59 * DAY),
            "posts_promised": pd.array([1], dtype="Int64"),
            "posts_delivered": pd.array([1], dtype="Int64"),
        }),
        "campaign_results": pd.DataFrame({
            "campaign_id": _ids("k"), "creator_id": _ids("a"), "gmv": np.array([80.0]),
            "orders": np.array([2], np.int64),
        }),
    }


def test_candidate_rule_on_its_edges():
    tables = hand_tables()
    briefs = check_briefs(pd.DataFrame({
        "brief_id": ["gb-1000", "gb-any", "my", "gb-later"],
        "market": ["GB", "GB", "MY", "GB"],
        "category": ["beauty"] * 4,
        "as_of": [AS_OF, AS_OF, AS_OF, AS_OF + DAY],
        "min_followers": [1000, None, None, None],
    }))
    found = find_candidates(tables, briefs)
    by_brief = found.groupby("brief")["creator_id"].apply(list).to_dict()
    assert by_brief[0] == ["a", "e"]                 # c (500) and f (800 known) too few
    assert by_brief[1] == ["a", "c", "e", "f"]       # b: post at as_of, other 1 s too old
    assert by_brief[2] == ["d"]
    # A day later b's post at the old as_of counts and a's has left the window.
    assert by_brief[3] == ["b", "c", "e", "f"]
    followers = found[found["brief"] == 1].set_index("creator_id")["followers"].to_dict()
    assert followers == {"a": 5000, "c": 500, "e": 1500, "f": 800}
    # The candidates' followers are the feature builder's current followers.
    features = build_features(tables, pd.DataFrame({
        "creator_id": found["creator_id"], "as_of": briefs["as_of"].iloc[found["brief"]].to_numpy(),
        "category": "beauty"}).astype({"as_of": TIMESTAMP_DTYPE}))
    np.testing.assert_allclose(np.expm1(features["log_followers"]), found["followers"], rtol=1e-12)


def test_hand_tables_score_end_to_end(world):
    briefs = pd.DataFrame({"brief_id": ["gb", "nobody"], "market": ["GB", "SG"],
                           "category": ["beauty", "beauty"], "as_of": [AS_OF, AS_OF],
                           "top_k": [3, 3]})
    seen: list[str] = []
    out = partner_lists(hand_tables(), briefs, world.scorer, "v", warn=seen.append)
    assert out["rank"].tolist() == [1, 2, 3]
    assert (np.diff(out["raw_score"]) <= 0).all()
    assert set(out["creator_id"]) <= {"a", "c", "e", "f"} and len(out) == 3
    assert len(seen) == 1 and "nobody" in seen[0]


# ------------------------------------------------------------------ briefs


def write_briefs(tmp_path, text: str, name="briefs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_briefs_read_csv_and_parquet_alike(tmp_path, world):
    csv = read_briefs(world.briefs_csv)
    assert csv["brief_id"].tolist() == world.briefs["brief_id"].tolist()
    assert csv["top_k"].tolist() == [50, 10, 5, 20, 5]
    assert csv["min_followers"].tolist() == [0, 1000, 0, 0, 0]
    assert csv["as_of"].dtype == TIMESTAMP_DTYPE
    world.briefs.to_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(read_briefs(tmp_path / "b.parquet"), csv)
    assert check_briefs(csv).equals(csv)                       # idempotent
    # Zone-less as_of is UTC, other zones are converted; numeric-looking ids stay text.
    path = write_briefs(tmp_path, "brief_id,market,category,as_of\n007,GB,home,2025-01-02 03:04\n"
                                  "008,GB,home,2025-01-02T05:04:00+02:00\n")
    briefs = read_briefs(path)
    assert briefs["brief_id"].tolist() == ["007", "008"]
    assert (briefs["as_of"] == pd.Timestamp("2025-01-02T03:04:00Z")).all()
    assert briefs["commission_rate"].isna().all()


@pytest.mark.parametrize("text, message", [
    ("brief_id,market,category,as_of\nb1,GB,home,2025-01-01\nb1,GB,home,2025-01-02\n",
     "column brief_id: must be unique (duplicated: b1)"),
    ("brief_id,market,category,as_of\nb1,GB,home,2025-01-01\n,GB,home,2025-01-02\n",
     "column brief_id: must not be empty (row 2)"),
    ("brief_id,market,category\nb1,GB,home\n", "missing column(s) as_of"),
    ("brief_id,market,category,as_of\nb1,GB,home,yesterday\n",
     "column as_of: must be a timestamp"),
    ("brief_id,market,category,as_of,top_k\nb1,GB,home,2025-01-01,-3\n",
     "column top_k: must be >= 1 (brief b1: '-3')"),
    ("brief_id,market,category,as_of,top_k\nb1,GB,home,2025-01-01,2.5\n",
     "column top_k: must be an integer"),
    ("brief_id,market,category,as_of,commission_rate\nb1,GB,home,2025-01-01,1.5\n",
     "column commission_rate: must be in [0, 1]"),
    ("brief_id,market,category,as_of,min_followers\nb1,GB,home,2025-01-01,-1\n",
     "column min_followers: must be >= 0"),
    ("brief_id,market,category,as_of\nb1,gb,home,2025-01-01\n",
     "column market: must be an upper-case 2-letter country code"),
])
def test_bad_briefs_are_one_line_errors(tmp_path, text, message):
    path = write_briefs(tmp_path, text)
    with pytest.raises(BriefError) as err:
        read_briefs(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ models


def test_model_uris_by_alias_version_and_run(world):
    scorer, version = load_model("models:/cs@champion", world.tracking_uri)
    assert version == "models:/cs/1"
    _, version = load_model("models:/cs@challenger", world.tracking_uri)
    assert version == "models:/cs/2"
    _, version = load_model("models:/cs/2", world.tracking_uri)
    assert version == "models:/cs/2"
    run_id = MlflowClient(world.tracking_uri).get_model_version("cs", "1").run_id
    _, version = load_model(f"runs:/{run_id}/model", world.tracking_uri)
    assert version == f"runs:/{run_id}/model"
    assert scorer.features == list(FEATURE_NAMES)


def test_model_with_other_features_is_rejected(world):
    with pytest.raises(ModelError, match="features do not match.*bogus_feature"):
        load_model("models:/cs_wrong/1", world.tracking_uri)
    check_features(world.scorer)
    with pytest.raises(ModelError, match="another order"):
        check_features(_tiny_scorer(list(reversed(FEATURE_NAMES))))
    with pytest.raises(ModelError, match=f"not in the model: {FEATURE_NAMES[-1]}"):
        check_features(_tiny_scorer(list(FEATURE_NAMES[:-1])))


def test_tracking_uri_from_the_environment(world, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.tracking_uri)
    assert load_model("models:/cs@champion")[1] == "models:/cs/1"


# ------------------------------------------------------------------ the command


def test_command_writes_the_partner_list(world, scored, tmp_path, capsys):
    out = tmp_path / "list.parquet"
    code, err = run_cli(capsys, *cli_args(world, world.briefs_csv, out))
    assert code == 0, err
    written = pd.read_parquet(out)
    assert list(written.columns) == CONTRACT_COLUMNS
    expected = scored.assign(model_version="models:/cs/1")
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert "warning: brief xx-none: no candidates" in err
    assert "scored 5/5 briefs" in err


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_command_output_is_deterministic(world, tmp_path, capsys, suffix):
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    assert run_cli(capsys, *cli_args(world, world.briefs_csv, first))[0] == 0
    assert run_cli(capsys, *cli_args(world, world.briefs_csv, second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left


def test_command_accepts_a_version_uri(world, tmp_path, capsys):
    out = tmp_path / "v2.csv"
    briefs = write_briefs(tmp_path, f"brief_id,market,category,as_of,top_k\n"
                                    f"one,PH,food,{world.as_of.isoformat()},3\n")
    code, err = run_cli(capsys, *cli_args(world, briefs, out, model="models:/cs/2"))
    assert code == 0, err
    written = pd.read_csv(out)
    assert written["model_version"].tolist() == ["models:/cs/2"] * 3
    assert written["rank"].tolist() == [1, 2, 3]


BAD_BRIEFS = {
    "duplicate id": ("b1,GB,home,2025-01-01\nb1,GB,home,2025-01-02\n", "brief_id: must be unique"),
    "missing id": (",GB,home,2025-01-01\n", "brief_id: must not be empty"),
    "bad as_of": ("b1,GB,home,31/12/2024\n", "as_of: must be a timestamp"),
}


@pytest.mark.parametrize("case", [
    "duplicate id", "missing id", "missing column", "bad as_of", "negative top_k",
    "commission above 1", "unknown alias", "unknown version", "unknown model",
    "other features", "missing briefs file", "missing data", "no tracking database",
])
def test_command_bad_input_is_one_line_and_writes_nothing(world, tmp_path, capsys, case):
    header = "brief_id,market,category,as_of"
    good = write_briefs(tmp_path, f"{header}\nb1,GB,home,{world.as_of.isoformat()}\n", "good.csv")
    briefs, model, data, uri = good, "models:/cs@champion", world.data, world.tracking_uri
    if case in BAD_BRIEFS:
        body, message = BAD_BRIEFS[case]
        briefs = write_briefs(tmp_path, f"{header}\n{body}")
    elif case == "missing column":
        briefs, message = write_briefs(tmp_path, "brief_id,market,as_of\nb1,GB,2025-01-01\n"), \
            "missing column(s) category"
    elif case == "negative top_k":
        briefs, message = write_briefs(tmp_path, f"{header},top_k\nb1,GB,home,2025-01-01,-1\n"), \
            "top_k: must be >= 1"
    elif case == "commission above 1":
        briefs, message = write_briefs(
            tmp_path, f"{header},commission_rate\nb1,GB,home,2025-01-01,1.5\n"), \
            "commission_rate: must be in [0, 1]"
    elif case == "unknown alias":
        model, message = "models:/cs@nope", "models:/cs@nope: Registered model alias nope not found"
    elif case == "unknown version":
        model, message = "models:/cs/99", "models:/cs/99"
    elif case == "unknown model":
        model, message = "runs:/0123456789abcdef/model", "runs:/0123456789abcdef/model"
    elif case == "other features":
        model, message = "models:/cs_wrong/1", "features do not match"
    elif case == "missing briefs file":
        briefs, message = tmp_path / "nope.csv", "briefs file not found"
    elif case == "missing data":
        data, message = tmp_path / "no-data", "violation(s) of the data contract"
    elif case == "no tracking database":
        uri, message = f"sqlite:///{tmp_path}/none.db", "no tracking database"
    out = tmp_path / "out.parquet"
    args = ["--model", model, "--data", data, "--briefs", briefs, "--out", out,
            "--tracking-uri", uri]
    code, err = run_cli(capsys, *args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []
    if case == "no tracking database":
        assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_python_dash_m_serving_runs_end_to_end(world, tmp_path):
    out = tmp_path / "list.csv"
    env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking_uri}
    done = subprocess.run([sys.executable, "-m", "serving", "--model", "models:/cs@champion",
                           "--data", str(world.data), "--briefs", str(world.briefs_csv),
                           "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert pd.read_csv(out)["model_version"].eq("models:/cs/1").all()


# ------------------------------------------------------------------ mlflow models serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_like_the_scorer(world, scored, tmp_path):
    """The registered pyfunc behind the real ``mlflow models serve`` returns raw_score,
    score and contributions equal to ``Scorer.explain`` of the posted feature rows."""
    requests = scored[["creator_id"]].assign(
        as_of=world.as_of, category="beauty", commission_rate=0.12)
    features = build_features(world.tables, requests, world.history).reset_index(drop=True)
    with_null = features.isna().any(axis=1).to_numpy()
    features = pd.concat([features[with_null].head(3), features[~with_null].head(3)],
                         ignore_index=True)
    assert features.isna().any().any()          # missing values travel as JSON null
    expected = world.scorer.explain(features).reset_index(drop=True)
    payload = {"dataframe_split": {
        "columns": list(features.columns),
        "data": [[None if np.isnan(v) else float(v) for v in row]
                 for row in features.to_numpy(dtype=float)]}}

    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # the server is started by name from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking_uri,
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/cs@champion",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow models serve did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        answer = pd.DataFrame(_post_json(f"{base}/invocations", payload)["predictions"])
    finally:
        # The server runs uvicorn as a child: stop the whole session we started.
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
        except ProcessLookupError:
            pass
    assert list(answer.columns) == list(expected.columns)
    assert {"raw_score", "score", *CONTRIB_COLUMNS} <= set(answer.columns)
    np.testing.assert_allclose(answer.to_numpy(dtype=float), expected.to_numpy(), rtol=0,
                               atol=1e-9)
    assert np.abs(answer[CONTRIB_COLUMNS].sum(axis=1) - answer["raw_score"]).max() < 1e-6


def test_a_model_from_before_the_index_split_is_refused():
    # The registry before issue 12: cadence-era and authenticity features since replaced.
    before_split = [name for name in FEATURE_NAMES if name not in (
        "active_week_ratio_180d", "orders_per_1k_views_90d", "orders_per_1k_views_all",
        "organic_follower_growth_90d", "follower_jump_180d", "follower_jump_all",
        "followers_without_views_90d")] + ["followers_gained_per_1k_views_90d"]
    with pytest.raises(ModelError, match=r"features do not match.*unknown to the builder: "
                                         r"followers_gained_per_1k_views_90d.*not in the model: "
                                         r"active_week_ratio_180d") as err:
        check_features(_tiny_scorer(before_split), "models:/old/1")
    assert "\n" not in str(err.value)
