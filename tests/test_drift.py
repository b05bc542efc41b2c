"""Drift: reference bins stored with the model (of the population serving scores), PSI per
feature and family, the serving warning and ``--drift-report``: none for the training
marketplace on its last day, one for a broken feed."""

from __future__ import annotations

import dataclasses
import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from commands.serving import main as serving_main
from features.build import build_features, index_history
from features.candidates import find_candidates
from features.registry import FAMILIES, FEATURE_NAMES, OTHER, features_of
from marketplace.contract import TIMESTAMP_DTYPE
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from serving.drift import (
    NOT_COMPARED,
    THRESHOLD,
    add_counts,
    data_reference,
    drift_report,
    drift_warning,
    psi,
)
from training.config import load_config
from training.parts import sample_tables
from training.pyfunc import ENTRY_FILE
from training.reference import bin_counts, bin_counts_of, population_features, reference_bins
from training.run import train
from training.tracking import load_scorer, log_training, using_tracking_uri


def test_psi_hand_worked():
    assert psi([0.5, 0.5], np.array([50.0, 50.0])) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi([0.5, 0.5], np.array([80.0, 20.0])) == pytest.approx(expected)
    # An empty bin counts (floored), it never divides by zero.
    assert math.isfinite(psi([0.5, 0.5, 0.0], np.array([0.0, 10.0, 10.0])))


def test_bins_are_right_closed_with_a_null_bin():
    counts = bin_counts_of(np.array([0.0, 1.0, 1.5, 2.0, 9.0, np.nan]), np.array([1.0, 2.0]))
    assert counts.tolist() == [2.0, 2.0, 1.0, 1.0]


def random_features(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    frame.iloc[: rows // 10, 0] = np.nan
    return frame


def test_reference_reproduces_its_own_data():
    frame = random_features(2000, 0)
    reference = reference_bins(frame, list(FEATURE_NAMES))
    for bins in reference.values():
        assert sum(bins["shares"]) == pytest.approx(1.0)
        assert len(bins["shares"]) == len(bins["edges"]) + 2
    report = drift_report(bin_counts(frame, reference), reference)
    assert report["psi"].abs().max() < 1e-9 and not report["drifted"].any()
    assert drift_warning(report) is None
    # Another sample of the same population: stable.
    again = drift_report(bin_counts(random_features(2000, 1), reference), reference)
    assert again["psi"].max() < 0.1


def test_a_shifted_family_is_named_worst():
    frame = random_features(3000, 2)
    reference = reference_bins(frame, list(FEATURE_NAMES))
    family = FAMILIES[-1]
    names = [f.name for f in features_of(family)]
    shifted = frame.assign(**{n: frame[n] + 2.0 for n in names})
    counts = add_counts(
        add_counts(None, shifted.iloc[:1000], reference), shifted.iloc[1000:], reference
    )
    assert all((counts[n] == bin_counts(shifted, reference)[n]).all() for n in names)
    report = drift_report(counts, reference)
    families = report[report["kind"] == "family"]
    assert families.iloc[0]["name"] == family and families.iloc[0]["psi"] > THRESHOLD
    assert set(families["name"]) == {*FAMILIES, OTHER}
    assert set(report.loc[report["kind"] == "feature", "name"]) == set(FEATURE_NAMES)
    assert families[families["name"] == family]["psi"].iloc[0] == pytest.approx(
        report[(report["kind"] == "feature") & (report["family"] == family)]["psi"].mean()
    )
    warning = drift_warning(report)
    assert warning.startswith("drift:") and f"{family} " in warning and "\n" not in warning
    assert set(data_reference(reference)) == set(FEATURE_NAMES) - NOT_COMPARED


# ----------------------------------------------------------------------------- serving


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    tables, _ = simulate(SimConfig(creators=500, days=240, seed=3))
    write_tables(tables, root / "data")
    # Broken feeds: views in another unit (x 50), and follower counts lost (all 0).
    posts, snapshots = tables["posts"], tables["follower_snapshots"]
    write_tables(dict(tables, posts=posts.assign(views=posts["views"] * 50)), root / "inflated")
    write_tables(
        dict(tables, follower_snapshots=snapshots.assign(followers=0)), root / "no-followers"
    )
    cfg = dataclasses.replace(
        load_config(), max_rounds=30, objectives=("lambdarank",), num_threads=1, backtest_folds=1
    )
    uri = f"sqlite:///{root}/mlflow.db"
    with using_tracking_uri(uri):
        mlflow.create_experiment("drift", artifact_location=(root / "artifacts").as_uri())
    log_training(train(tables, cfg), uri, "drift", register="cs")
    # A brief per market as of the data's last day (midnight after the last post), each in
    # its market's most asked-for category.
    as_of = posts["posted_at"].max().normalize() + pd.Timedelta(days=1)
    campaigns = tables["campaigns"]
    asked = campaigns.groupby("market")["category"].agg(lambda c: c.value_counts().index[0])
    pd.DataFrame(
        {
            "brief_id": [f"b-{m}" for m in asked.index],
            "market": asked.index,
            "category": asked.to_numpy(),
            "as_of": as_of.isoformat(),
        }
    ).to_csv(root / "briefs.csv", index=False)
    return root, uri


def serve(root, uri, data: str, report_name: str, capsys):
    args = [
        "--model",
        "models:/cs@champion",
        "--data",
        str(root / data),
        "--briefs",
        str(root / "briefs.csv"),
        "--out",
        str(root / f"{report_name}-out.csv"),
        "--tracking-uri",
        uri,
        "--drift-report",
        str(root / f"{report_name}.csv"),
    ]
    assert serving_main(args) == 0
    return pd.read_csv(root / f"{report_name}.csv"), capsys.readouterr().err


@pytest.mark.slow
def test_serving_reports_drift_and_warns_in_one_line(served, capsys):
    root, uri = served
    same, err_same = serve(root, uri, "data", "same", capsys)
    moved, err_moved = serve(root, uri, "inflated", "moved", capsys)
    # The training marketplace scored on its own last day: like with like, no warning.
    assert "warning: drift" not in err_same
    assert same.loc[same["kind"] == "family", "psi"].max() < THRESHOLD
    for report in (same, moved):
        assert set(report.loc[report["kind"] == "family", "name"]) == {*FAMILIES, OTHER}
        assert (
            set(report.loc[report["kind"] == "feature", "name"])
            == set(FEATURE_NAMES) - NOT_COMPARED
        )
    by_feature = {
        name: frame.set_index("name")["psi"] for name, frame in (("same", same), ("moved", moved))
    }
    assert by_feature["moved"].max() > by_feature["same"].max()
    families = moved[moved["kind"] == "family"]
    warnings = [line for line in err_moved.splitlines() if line.startswith("warning: drift:")]
    assert len(warnings) == 1 and families.iloc[0]["name"] in warnings[0]
    assert families.iloc[0]["psi"] > THRESHOLD


@pytest.mark.slow
def test_a_feed_without_followers_warns(served, capsys):
    root, uri = served
    report, err = serve(root, uri, "no-followers", "no-followers", capsys)
    warnings = [line for line in err.splitlines() if line.startswith("warning: drift:")]
    assert len(warnings) == 1
    assert report.set_index("name").loc["log_followers", "psi"] > THRESHOLD


@pytest.mark.slow
def test_drift_report_needs_a_model_with_reference_bins(served, tmp_path, capsys):
    root, uri = served
    # A model saved before reference bins existed: scoring.json without them.
    with using_tracking_uri(uri):
        scorer = dataclasses.replace(load_scorer("models:/cs/1"), reference=None)
        paths = scorer.save(tmp_path / "old")
        with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("drift").experiment_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(ENTRY_FILE),
                artifacts={k: str(v) for k, v in paths.items()},
            )
    capsys.readouterr()
    args = [
        "--model",
        info.model_uri,
        "--data",
        str(root / "data"),
        "--briefs",
        str(root / "briefs.csv"),
        "--out",
        str(tmp_path / "out.csv"),
        "--tracking-uri",
        uri,
    ]
    assert serving_main([*args, "--drift-report", str(tmp_path / "d.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reference bins" in err[0] and not (tmp_path / "out.csv").exists()
    assert serving_main(args) == 0
    assert "drift not checked" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the reference


def test_the_reference_population_is_every_candidate_serving_would_score(small_market, tmp_path):
    """Every candidate of every market as of the day after the last post, by serving's own
    rule; read back for a sample of creators (training from pair parts), each sampled
    creator's features are those the whole data gives it."""
    tables = small_market[0]
    history = index_history(tables)
    as_of = tables["posts"]["posted_at"].max().normalize() + pd.Timedelta(days=1)
    population = population_features(tables, history, as_of)
    markets = sorted(tables["creators"]["market"].unique())
    briefs = pd.DataFrame({"market": markets, "as_of": as_of, "min_followers": 0}).astype(
        {"as_of": TIMESTAMP_DTYPE}
    )
    assert len(population) == len(find_candidates(tables, briefs, history)) > 100
    assert list(population.columns) == list(FEATURE_NAMES)

    write_tables(tables, tmp_path / "data")
    sample = sample_tables(tmp_path / "data", tables["campaigns"], limit=60)
    assert len(sample["creators"]) == 60
    requests = pd.DataFrame(
        {
            "creator_id": sample["creators"]["creator_id"],
            "as_of": as_of,
            "category": tables["campaigns"]["category"].iloc[0],
        }
    ).astype({"as_of": TIMESTAMP_DTYPE})
    pd.testing.assert_frame_equal(
        build_features(sample, requests), build_features(tables, requests, history)
    )
