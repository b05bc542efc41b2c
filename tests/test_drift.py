"""Drift: reference bins stored with the model, PSI per feature and family, the serving
warning and ``--drift-report``."""

from __future__ import annotations

import dataclasses
import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.registry import FAMILIES, FEATURE_NAMES, OTHER, features_of
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from serving.__main__ import main as serving_main
from serving.drift import (
    SET_BY_REQUEST,
    THRESHOLD,
    add_counts,
    data_reference,
    drift_report,
    drift_warning,
    psi,
)
from training.config import load_config
from training.pyfunc import ENTRY_FILE
from training.reference import bin_counts, bin_counts_of, reference_bins
from training.run import train
from training.tracking import load_scorer, log_training


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
    assert set(data_reference(reference)) == set(FEATURE_NAMES) - SET_BY_REQUEST


# ----------------------------------------------------------------------------- serving


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    tables, _ = simulate(SimConfig(creators=500, days=240, seed=3))
    write_tables(tables, root / "data")
    # The same creators with inflated views: every view-based feature moves.
    inflated = dict(tables, posts=tables["posts"].assign(views=tables["posts"]["views"] * 50))
    write_tables(inflated, root / "inflated")
    cfg = dataclasses.replace(
        load_config(), max_rounds=30, objectives=("lambdarank",), num_threads=1, backtest_folds=1
    )
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("drift", artifact_location=(root / "artifacts").as_uri())
    log_training(train(tables, cfg), uri, "drift", register="cs")
    as_of = tables["campaigns"]["created_at"].max()
    pd.DataFrame(
        {
            "brief_id": ["a", "b"],
            "market": ["ID", "VN"],
            "category": ["beauty", "fashion"],
            "as_of": [as_of.isoformat()] * 2,
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
    for report in (same, moved):
        assert set(report.loc[report["kind"] == "family", "name"]) == {*FAMILIES, OTHER}
        assert (
            set(report.loc[report["kind"] == "feature", "name"])
            == set(FEATURE_NAMES) - SET_BY_REQUEST
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
def test_drift_report_needs_a_model_with_reference_bins(served, tmp_path, capsys):
    root, uri = served
    # A model saved before reference bins existed: scoring.json without them.
    mlflow.set_tracking_uri(uri)
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
