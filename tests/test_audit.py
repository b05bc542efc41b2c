"""The index audit: each index against the hidden trait it names, on simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from commands.features import main as features_main
from features.audit import (
    MAX_FAST_GROWER_GAP,
    MAX_SIZE_SPEARMAN,
    MIN_AUC,
    MIN_SPEARMAN,
    TRAITS,
    audit_frame,
    audit_table,
    format_audit,
)
from features.indices import index_name
from features.registry import FAMILIES
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate


@pytest.fixture(scope="module")
def market():
    return simulate(SimConfig(creators=3000, days=540, seed=3))


@pytest.fixture(scope="module")
def frame(market):
    tables, truth = market
    return audit_frame(tables, truth["creator_traits"])


@pytest.mark.slow
def test_every_index_measures_its_trait(frame):
    table = audit_table(frame).set_index(["index", "measure"])
    for family in FAMILIES:
        if family in TRAITS:
            assert table.loc[(family, "spearman"), "value"] >= MIN_SPEARMAN, family
    assert table.loc[("authenticity", "auc"), "value"] >= MIN_AUC
    assert abs(table.loc[("authenticity", "gap"), "value"]) <= MAX_FAST_GROWER_GAP
    assert abs(table.loc[("authenticity", "size"), "value"]) <= MAX_SIZE_SPEARMAN
    assert table["ok"].all()
    # The claims were measured on real populations, not a handful of rows.
    assert table.loc[("volume", "spearman"), "creators"] > 1500
    assert table.loc[("authenticity", "gap"), "creators"] > 100
    assert "every claim holds" in format_audit(audit_table(frame))


@pytest.mark.slow
def test_audit_fails_indices_that_measure_nothing(frame):
    rng = np.random.default_rng(0)
    shuffled = frame.copy()
    for family in ("volume", "authenticity"):
        column = index_name(family)
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    table = audit_table(shuffled).set_index(["index", "measure"])
    assert abs(table.loc[("volume", "spearman"), "value"]) < 0.2
    assert not table.loc[("volume", "spearman"), "ok"]
    assert table.loc[("authenticity", "auc"), "value"] < 0.7
    assert table.loc[("engagement", "spearman"), "ok"]  # untouched


def test_genuine_fast_growers_exist_and_viral_creators_are_never_fake(market):
    traits = market[1]["creator_traits"]
    assert not (traits["viral"] & traits["fake"]).any()
    # Creators whose viral burst falls in the last 90 days grow faster than 9 in 10 others.
    bursting = (
        traits["viral"]
        & traits["viral_day"].between(540 - 90, 540 - 20)
        & ~np.isfinite(traits["churn_day"])
    )
    others = traits.loc[~traits["viral"], "real_growth_90d"]
    assert bursting.sum() >= 10
    assert traits.loc[bursting, "real_growth_90d"].median() > others.quantile(0.9)
    fast = traits["real_growth_90d"] >= traits["real_growth_90d"].quantile(0.95)
    assert traits.loc[fast, "viral"].mean() > 2 * traits["viral"].mean()


@pytest.mark.slow
def test_audit_command(tmp_path, market, capsys):
    tables, truth = market
    data = tmp_path / "data"
    write_tables(tables, data)
    (data / "truth").mkdir()
    truth["creator_traits"].to_parquet(data / "truth" / "creator_traits.parquet")
    out = tmp_path / "audit.csv"
    assert features_main(["audit", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "consistency" in printed and "every claim holds" in printed
    written = pd.read_csv(out)
    assert written["ok"].all() and len(written) == len(TRAITS) + 5


def test_audit_command_needs_the_truth(tmp_path, capsys):
    tables = simulate(SimConfig(creators=50, days=150, seed=1))[0]
    write_tables(tables, tmp_path / "data")
    out = tmp_path / "audit.csv"
    assert features_main(["audit", str(tmp_path / "data"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "creator_traits.parquet: truth file not found" in err[0]
    assert not out.exists()
