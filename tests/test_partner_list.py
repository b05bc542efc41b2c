"""serving.partner_list: partner lists on the shared small marketplace and its model (columns,
contributions, scores, ranks, chunks, indices, markets, commission, the point-in-time
rule) and the reasons, by hand."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.candidates import find_candidates
from features.registry import FAMILIES
from marketplace.contract import STRING_DTYPE
from serving.briefs import check_briefs
from serving.partner_list import (
    NOTHING_STANDS_OUT,
    PARTNER_COLUMNS,
    PHRASES,
    partner_lists,
    rank_candidates,
    reasons_text,
    with_model_defaults,
)
from tests.conftest import CONTRACT_COLUMNS, CONTRIB_COLUMNS, DAY, INDEX_COLUMNS


def test_columns_and_dtypes_follow_the_contract(scored_briefs):
    assert list(scored_briefs.columns) == CONTRACT_COLUMNS == list(PARTNER_COLUMNS)
    assert scored_briefs["rank"].dtype == np.int64
    for column in ("score", "raw_score", *INDEX_COLUMNS, *CONTRIB_COLUMNS):
        assert scored_briefs[column].dtype == np.float64, column
    assert (
        scored_briefs["brief_id"].dtype == STRING_DTYPE
        and scored_briefs["creator_id"].dtype == STRING_DTYPE
    )
    assert set(scored_briefs["model_version"]) == {"models:/cs/1"}
    assert scored_briefs["reasons"].str.len().min() > 0


def test_contributions_add_up_to_raw_score(scored_briefs):
    total = scored_briefs[CONTRIB_COLUMNS].sum(axis=1)
    assert np.abs(total - scored_briefs["raw_score"]).max() < 1e-6


def test_score_is_the_models_monotone_map(serving_world, scored_briefs):
    by_raw = scored_briefs.sort_values("raw_score")
    assert (np.diff(by_raw["score"].to_numpy()) >= 0).all()
    assert scored_briefs["score"].between(0, 100).all()
    np.testing.assert_array_equal(
        scored_briefs["score"], serving_world.scorer.score(scored_briefs["raw_score"].to_numpy())
    )


def test_ranks_run_from_one_to_k_ordered_by_brief_then_rank(serving_world, scored_briefs):
    # Briefs keep the file's order; the one without candidates has no rows.
    assert list(dict.fromkeys(scored_briefs["brief_id"])) == [
        "id-beauty",
        "th-fashion",
        "vn-food",
        "gb-home",
    ]
    top_k = {"id-beauty": 50, "th-fashion": 10, "vn-food": 5, "gb-home": 20}
    for brief_id, rows in scored_briefs.groupby("brief_id", sort=False):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert len(rows) == top_k[brief_id]
        assert (np.diff(rows["raw_score"].to_numpy()) <= 0).all()
        assert not rows["creator_id"].duplicated().any()


def test_chunks_do_not_change_the_result_and_report_progress(serving_world, scored_briefs):
    lines: list[str] = []
    chunked = partner_lists(
        serving_world.tables,
        serving_world.briefs,
        serving_world.scorer,
        "models:/cs/1",
        serving_world.history,
        progress=lines.append,
        warn=lambda m: None,
        chunk_pairs=1,
    )
    pd.testing.assert_frame_equal(chunked, scored_briefs)
    assert len(lines) == 5 and lines[-1].startswith("scored 5/5 briefs")


def test_ties_in_raw_score_go_to_the_smaller_creator_id():
    rank = rank_candidates(
        np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 2.0, 0.0]), pd.Series(["b", "c", "a", "z"])
    )
    assert rank.tolist() == [3, 2, 1, 1]


def test_default_top_k_is_50(serving_world, scored_briefs):
    candidates = find_candidates(
        serving_world.tables, check_briefs(serving_world.briefs.iloc[:1]), serving_world.history
    )
    assert len(candidates) > 50
    assert (scored_briefs["brief_id"] == "id-beauty").sum() == 50


def test_indices_are_percentiles_among_all_candidates(serving_world, scored_briefs):
    values = scored_briefs[INDEX_COLUMNS].to_numpy()
    known = values[~np.isnan(values)]
    assert len(known) > 0.5 * values.size and ((known >= 0) & (known <= 100)).all()
    # Whatever top_k is, a creator's indices (and scores) are the same: they are ranked
    # among all the brief's candidates, not among the selected ones.
    wide = serving_world.briefs.iloc[[2]].assign(top_k=1000)
    everyone = partner_lists(
        serving_world.tables, wide, serving_world.scorer, "models:/cs/1", serving_world.history
    )
    assert len(everyone) > 5
    narrow = scored_briefs[scored_briefs["brief_id"] == "vn-food"].reset_index(drop=True)
    pd.testing.assert_frame_equal(narrow, everyone.iloc[:5].reset_index(drop=True))
    # Percentiles among all candidates reach both ends of the scale.
    assert np.nanmin(everyone[INDEX_COLUMNS]) < 10 and np.nanmax(everyone[INDEX_COLUMNS]) > 90


def test_briefs_across_markets_select_only_their_market(serving_world, scored_briefs):
    markets = serving_world.tables["creators"].set_index("creator_id")["market"]
    expected = serving_world.briefs.set_index("brief_id")["market"]
    assert (
        markets.reindex(scored_briefs["creator_id"]).to_numpy()
        == expected.reindex(scored_briefs["brief_id"]).to_numpy()
    ).all()
    # min_followers is respected: the TH brief asked for at least 1,000.
    th = scored_briefs[scored_briefs["brief_id"] == "th-fashion"]
    followers = find_candidates(
        serving_world.tables, check_briefs(serving_world.briefs.iloc[[1]]), serving_world.history
    )
    assert (followers.set_index("creator_id").loc[th["creator_id"], "followers"] >= 1000).all()


def test_brief_without_candidates_gives_no_rows_and_a_warning(serving_world, scored_briefs):
    assert "xx-none" not in set(scored_briefs["brief_id"])
    assert (
        len(scored_briefs.attrs["warnings"]) == 1
        and "xx-none" in scored_briefs.attrs["warnings"][0]
    )
    with pytest.warns(UserWarning, match="xx-none"):
        out = partner_lists(
            serving_world.tables,
            serving_world.briefs.iloc[[4]],
            serving_world.scorer,
            "v",
            serving_world.history,
        )
    assert out.empty and list(out.columns) == CONTRACT_COLUMNS


def test_commission_defaults_to_the_models_median(serving_world):
    median = serving_world.scorer.commission_rate_median
    assert 0 < median < 1
    filled = with_model_defaults(check_briefs(serving_world.briefs), serving_world.scorer)
    assert filled["commission_rate"].tolist() == [median, 0.1, 0.2, median, median]
    implicit = serving_world.briefs.iloc[[0]].assign(top_k=8)

    def run(b):
        return partner_lists(
            serving_world.tables, b, serving_world.scorer, "v", serving_world.history
        )

    out = run(implicit)
    pd.testing.assert_frame_equal(out, run(implicit.assign(commission_rate=median)))
    # The median reaches the model as the commission_rate feature of every candidate.
    requests = out[["creator_id"]].assign(
        as_of=serving_world.as_of, category="beauty", commission_rate=median
    )
    features = build_features(serving_world.tables, requests, serving_world.history)
    np.testing.assert_array_equal(out["raw_score"], serving_world.scorer.raw(features))


def test_future_facts_do_not_change_the_partner_list(serving_world):
    """Posts, snapshots and campaigns after as_of, and metrics not yet measured at as_of,
    can change or vanish without changing the list."""
    as_of = serving_world.tables["campaigns"]["created_at"].median().normalize()
    briefs = serving_world.briefs.iloc[[0, 1, 2]].assign(as_of=as_of, top_k=30)
    before = partner_lists(
        serving_world.tables, briefs, serving_world.scorer, "v", serving_world.history
    )
    cut = dict(serving_world.tables)
    posts = cut["posts"][cut["posts"]["posted_at"] < as_of]
    unmeasured = posts["posted_at"] + 7 * DAY > as_of
    assert unmeasured.sum() > 10
    cut["posts"] = posts.assign(
        views=posts["views"].where(~unmeasured, posts["views"] * 3 + 1),
        gmv=posts["gmv"].where(~unmeasured, posts["gmv"] + 5.0),
    )
    snapshots = cut["follower_snapshots"]
    cut["follower_snapshots"] = snapshots[snapshots["snapshot_date"] + DAY <= as_of]
    later = cut["campaigns"]["created_at"] > as_of
    assert later.any()
    cut["campaigns"] = cut["campaigns"][~later]
    for name in ("invitations", "campaign_results"):
        cut[name] = cut[name][cut[name]["campaign_id"].isin(cut["campaigns"]["campaign_id"])]
    after = partner_lists(cut, briefs, serving_world.scorer, "v")
    assert len(before) == 90
    pd.testing.assert_frame_equal(before, after)


def test_reasons_are_short_sentences_from_the_largest_families(scored_briefs):
    families = "|".join(FAMILIES)
    categories = dict(
        zip(scored_briefs["brief_id"], scored_briefs["brief_id"].str.split("-").str[1], strict=True)
    )
    for brief_id, text in zip(scored_briefs["brief_id"], scored_briefs["reasons"], strict=True):
        parts = text.split("; ")
        assert 1 <= len(parts) <= 3 and text[0].isupper()
        without_history = {p[2].format(category=categories[brief_id]) for p in PHRASES.values()}
        for part in parts:  # "<phrase> (<family> <index>)", or a known lack of history
            assert (
                re.search(rf" \((?:{families}) \d+\)$", part)
                or part[:1].lower() + part[1:] in without_history
            ), part
    # The category family names the brief's own category.
    for brief_id, category in (("id-beauty", "beauty"), ("th-fashion", "fashion")):
        texts = scored_briefs.loc[scored_briefs["brief_id"] == brief_id, "reasons"]
        mentions = texts[texts.str.contains(r"\(category \d+\)|in \w+$|in \w+;", regex=True)]
        assert all(category in t for t in mentions)
    assert (
        scored_briefs["reasons"].str.contains(rf"\((?:{families}) \d+\)", regex=True).mean() > 0.9
    )


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
        "posts in irregular bursts (consistency 22)"
    )
    # Only lifts: the third slot goes to the next largest; the category is named; a null
    # index means too little history for the family.
    contrib[:] = 0
    contrib[at("category", "engagement", "diligence")] = [0.5, 0.2, 0.1]
    index[position["engagement"]] = np.nan
    assert reasons_text(contrib, index, "home") == (
        "Strong in home (category 50); too few measured posts to judge engagement; "
        "commits to shoppable posts and LIVEs (diligence 50)"
    )
    # An index that disagrees with the contribution's sign gets a neutral phrase.
    contrib[at("category", "diligence")] = [-0.5, 0.1]
    index[at("category", "diligence")] = [75.0, 30.0]
    assert reasons_text(contrib, index, "food") == (
        "Too few measured posts to judge engagement; diligence lifts the score (diligence 30); "
        "fit with food holds the score back (category 75)"
    )
