"""The simulator: determinism, contract, and the statistical properties it promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketplace import reference
from marketplace.__main__ import main
from marketplace.simulate import SimConfig, simulate
from marketplace.validate import load_valid_tables, validate_tables


@pytest.fixture(scope="module")
def market():
    return simulate(SimConfig(creators=3000, days=360, seed=11))


def files_bytes(directory):
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", [[], ["--csv"]], ids=["parquet", "csv"])
def test_same_seed_writes_the_same_bytes(tmp_path, fmt):
    args = ["simulate", "--creators", "200", "--days", "150", "--seed", "3", *fmt]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    first, second = files_bytes(tmp_path / "a"), files_bytes(tmp_path / "b")
    assert (
        "truth/expected_gmv.parquet" in first and "posts." + ("csv" if fmt else "parquet") in first
    )
    assert first == second


def test_another_seed_gives_another_marketplace():
    a, _ = simulate(SimConfig(creators=200, days=150, seed=1))
    b, _ = simulate(SimConfig(creators=200, days=150, seed=2))
    assert not a["posts"]["views"].equals(b["posts"]["views"])


def test_simulated_tables_meet_the_contract(market):
    tables, _ = market
    assert validate_tables(tables) == []


def test_csv_and_parquet_outputs_read_back_equal(tmp_path):
    args = ["simulate", "--creators", "150", "--days", "150", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "p")]) == 0
    assert main([*args, "--csv", "--out", str(tmp_path / "c")]) == 0
    parquet, csv = load_valid_tables(tmp_path / "p"), load_valid_tables(tmp_path / "c")
    for name in parquet:
        pd.testing.assert_frame_equal(parquet[name], csv[name], check_exact=False, rtol=1e-12)


def test_refuses_to_overwrite_without_flag(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["simulate", "--creators", "50", "--days", "150", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_bad_scale_is_a_one_line_error(tmp_path, capsys):
    assert main(["simulate", "--creators", "3", "--out", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --creators")
    assert not (tmp_path / "x").exists()


def test_truth_covers_every_invitation(market):
    tables, truth = market
    keys = ["campaign_id", "creator_id"]
    pd.testing.assert_frame_equal(truth["expected_gmv"][keys], tables["invitations"][keys])
    assert (truth["expected_gmv"]["expected_gmv"] >= 0).all()
    assert set(truth["creator_traits"]["creator_id"]) == set(tables["creators"]["creator_id"])


def test_follower_tiers_are_heavy_tailed(market):
    tables, _ = market
    latest = tables["follower_snapshots"].groupby("creator_id")["followers"].last()
    assert 0.35 < (latest < 10_000).mean() < 0.65
    assert (latest > 1_000_000).mean() > 0.003
    assert set(tables["creators"]["market"]) == {"ID", "MY", "PH", "SG", "TH", "VN", "GB"}


def test_views_per_follower_fall_with_tier(market):
    tables, _ = market
    medians = reference.tier_medians(reference.simulated_videos(tables))
    vpf = medians["views_per_follower"].to_numpy()
    assert vpf[1] > vpf[2] > vpf[3]
    assert vpf[0] > vpf[3] * 2


def test_fake_engagement_shows_in_comments_per_like_and_sales_per_view(market):
    tables, truth = market
    fake = truth["creator_traits"].set_index("creator_id")["fake"]
    posts = tables["posts"].assign(fake=tables["posts"]["creator_id"].map(fake))
    by = posts.groupby(["creator_id", "fake"])[["views", "likes", "comments", "gmv"]].sum()
    by = by.reset_index()
    by["comments_per_like"] = by["comments"] / by["likes"]
    by["gmv_per_view"] = by["gmv"] / by["views"]
    med = by.groupby("fake")[["comments_per_like", "gmv_per_view"]].median()
    assert med.loc[True, "comments_per_like"] < 0.5 * med.loc[False, "comments_per_like"]
    assert med.loc[True, "gmv_per_view"] < 0.5 * med.loc[False, "gmv_per_view"]


def test_expected_gmv_tracks_realised_gmv(market):
    tables, truth = market
    realised = (
        truth["expected_gmv"]
        .merge(tables["campaign_results"], on=["campaign_id", "creator_id"], how="left")
        .fillna({"gmv": 0.0})
    )
    rank_corr = realised["expected_gmv"].rank().corr(realised["gmv"].rank())
    assert rank_corr > 0.3
    # An unbiased expectation: totals agree within sampling noise of a heavy tail.
    assert 0.6 < realised["gmv"].sum() / realised["expected_gmv"].sum() < 1.6


def mean_ndcg_at_10(pairs: pd.DataFrame, score: str) -> float:
    """Mean NDCG@10 over campaigns with linear gain = realised gmv (skipping zero-gmv ones)."""
    discount = 1.0 / np.log2(np.arange(2, 12))
    values = []
    for _, group in pairs.groupby("campaign_id"):
        gains = group["gmv"].to_numpy()
        top = gains[np.argsort(-group[score].to_numpy(), kind="stable")[:10]]
        ideal = np.sort(gains)[::-1][:10]
        if ideal.sum() > 0:
            values.append(
                (top * discount[: len(top)]).sum() / (ideal * discount[: len(ideal)]).sum()
            )
    return float(np.mean(values))


def test_followers_alone_and_engagement_alone_rank_gmv_poorly(market):
    tables, truth = market
    pairs = (
        truth["expected_gmv"]
        .merge(tables["campaign_results"], how="left", on=["campaign_id", "creator_id"])
        .fillna({"gmv": 0.0})
    )
    latest = tables["follower_snapshots"].groupby("creator_id")["followers"].last()
    posts = tables["posts"].groupby("creator_id")[["likes", "comments", "shares", "views"]].sum()
    engagement = (posts["likes"] + posts["comments"] + posts["shares"]) / posts["views"]
    pairs["followers"] = pairs["creator_id"].map(latest)
    pairs["engagement"] = pairs["creator_id"].map(engagement)
    pairs["random"] = np.random.default_rng(0).random(len(pairs))

    oracle = mean_ndcg_at_10(pairs, "expected_gmv")
    assert oracle > 1.5 * mean_ndcg_at_10(pairs, "random")
    assert mean_ndcg_at_10(pairs, "followers") < 0.6 * oracle
    assert mean_ndcg_at_10(pairs, "engagement") < 0.6 * oracle


def test_brands_invite_big_creators_more_often(market):
    tables, _ = market
    latest = tables["follower_snapshots"].groupby("creator_id")["followers"].last()
    invited = tables["invitations"]["creator_id"].value_counts().reindex(latest.index, fill_value=0)
    big, small = invited[latest > 100_000].mean(), invited[latest < 10_000].mean()
    assert big > 2 * small


@pytest.mark.skipif(
    reference.sample_file() is None, reason="no real sample ($CREATOR_SCORES_SAMPLE unset)"
)
def test_matches_the_real_sample_within_a_factor_of_two():
    tables, _ = simulate(SimConfig(creators=4000, days=360, seed=0))
    simulated = reference.tier_medians(reference.simulated_videos(tables))
    sample = reference.tier_medians(reference.load_sample())
    ratios = reference.compare_with_sample(simulated, sample)
    assert np.all((ratios.to_numpy() > 0.5) & (ratios.to_numpy() < 2.0)), ratios


def pieces_joined(cfg, chunk):
    from marketplace.simulate import simulate_parts

    joined = {}
    for name, piece in simulate_parts(cfg, chunk):
        joined.setdefault(name, []).append(piece)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in joined.items()}


def test_chunking_never_changes_the_data():
    cfg = SimConfig(creators=1200, days=150, seed=3, block=250)
    tables, truth = simulate(cfg)
    whole = {**tables, **{f"truth/{name}": frame for name, frame in truth.items()}}
    for chunk in (250, 700):
        chunked = pieces_joined(cfg, chunk)
        assert set(chunked) == set(whole)
        for name, frame in whole.items():
            pd.testing.assert_frame_equal(chunked[name], frame, check_exact=True, obj=name)
    # Ids stay unique across blocks, and blocks draw from streams of their own.
    assert tables["posts"]["post_id"].is_unique and tables["creators"]["creator_id"].is_unique
    traits = truth["creator_traits"]
    assert not np.allclose(
        traits["quality"].to_numpy()[:250], traits["quality"].to_numpy()[250:500]
    )


def test_chunked_command_writes_parts_with_the_same_data(tmp_path, capsys):
    args = ["simulate", "--creators", "300", "--days", "150", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--chunk-creators", "100", "--out", str(tmp_path / "parts")]) == 0
    for name in ("creators", "posts", "invitations", "truth/expected_gmv"):
        parts = sorted((tmp_path / "parts" / name).glob("part-*.parquet"))
        assert parts, name
        read = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(
            read,
            pd.read_parquet(tmp_path / "whole" / f"{name}.parquet"),
            check_exact=True,
            obj=name,
        )
    assert main([*args, "--chunk-creators", "100", "--csv", "--out", str(tmp_path / "c")]) == 1
    assert "does not go with --chunk-creators" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
