"""training.gate: the champion gate promotes a challenger only when it is better beyond
noise, on campaigns the champion never saw; it fails closed: only a champion that cannot
score the current features gives way, any other failure keeps it; a champion without
expected sales gives way to a challenger that ranks no worse and gives them."""

from __future__ import annotations

import shutil
from dataclasses import replace
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tests.worlds import register_wrong_features_model, store_with_experiment
from training.__main__ import main as training_main
from training.gate import fair_campaigns, gate_decision
from training.tracking import log_training


def paired(challenger, champion) -> pd.DataFrame:
    return pd.DataFrame({"challenger": challenger, "champion": champion})


def test_gate_promotes_a_clearly_better_challenger():
    rng = np.random.default_rng(4)
    champion = rng.uniform(0.3, 0.9, 300)
    decision = gate_decision(paired(champion + rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert decision.promote and decision.verdict == "better"
    assert 0 < decision.lo < decision.diff < decision.hi and decision.campaigns == 300


def test_gate_refuses_a_worse_or_a_noisy_challenger():
    rng = np.random.default_rng(5)
    champion = rng.uniform(0.3, 0.9, 300)
    worse = gate_decision(paired(champion - rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert not worse.promote and worse.verdict == "worse" and worse.hi < 0
    # Better on average, but by less than the noise: the interval holds 0.
    noise = rng.normal(0.0, 0.1, 300)
    noisy = gate_decision(paired(champion + noise - noise.mean() + 0.002, champion), 0.9, 1000, 1)
    assert noisy.diff > 0 and noisy.lo < 0 < noisy.hi
    assert not noisy.promote and noisy.verdict == "not significant"


def test_gate_keeps_the_champion_on_a_tie():
    scores = np.random.default_rng(6).uniform(0.3, 0.9, 50)
    decision = gate_decision(paired(scores, scores.copy()), 0.9, 1000, 1)
    assert not decision.promote and decision.verdict == "tie"
    assert decision.diff == decision.lo == decision.hi == 0.0


def test_gate_compares_only_campaigns_the_champion_never_saw(trained):
    cutoff = trained.test["created_at"].sort_values().iloc[len(trained.test) // 2]
    fair = fair_campaigns(trained.test, cutoff.isoformat())
    assert (fair["created_at"] > cutoff).all()
    assert len(fair) == (trained.test["created_at"] > cutoff).sum() > 0


# ----------------------------------------------------------------------------- fails closed


def test_a_champion_of_other_features_gives_way(trained, tmp_path):
    uri = store_with_experiment(tmp_path, "test")
    register_wrong_features_model(tmp_path, uri, "g")  # version 1, made champion below
    client = MlflowClient(uri)
    client.set_registered_model_alias("g", "champion", "1")
    logged = log_training(trained, uri, "test", register="g")
    assert logged.champion and "cannot score these features" in logged.champion_note
    assert "bogus_feature" in logged.champion_note
    assert str(client.get_model_version_by_alias("g", "champion").version) == "2"


def test_a_champion_without_expected_sales_gives_way_to_one_that_ranks_as_well(trained, tmp_path):
    """The same ranker without the sales model (an older format) is champion; the same
    ranker with it ties, and replaces it; a third tie keeps the second."""
    uri = store_with_experiment(tmp_path, "test")
    assert trained.evaluated is not None and trained.scorer.sales is not None
    older = replace(
        trained,
        scorer=replace(trained.scorer, sales=None),
        evaluated=replace(trained.evaluated, sales=None),
    )
    assert log_training(older, uri, "test", register="s").champion  # first version
    logged = log_training(trained, uri, "test", register="s")
    assert logged.champion and logged.gate is not None and logged.gate.verdict == "tie"
    assert "v1 gives no expected sales (an older format)" in logged.champion_note
    again = log_training(trained, uri, "test", register="s")
    assert not again.champion and again.champion_note.endswith("v2 stays champion")
    client = MlflowClient(uri)
    assert str(client.get_model_version_by_alias("s", "champion").version) == "2"


def test_a_champion_that_cannot_be_loaded_keeps_the_alias(logged_store, tmp_path, capsys):
    """The champion's artifacts are gone (a storage failure): the gate cannot decide, so
    the champion stays, the command says why in one line and exits 1."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = tmp_path / "quick.toml"
    config.write_text(
        "max_rounds = 40\nobjectives = ['lambdarank']\nnum_threads = 1\nbacktest_folds = 1\n"
    )
    args = [str(logged_store.data), "--config", str(config), "--tracking-uri", uri]
    assert training_main([*args, "--register", "g"]) == 0
    client = MlflowClient(uri)
    source = client.get_model_version("g", "1").source
    model_id = source.removeprefix("models:/")
    shutil.rmtree(urlparse(client.get_logged_model(model_id).artifact_location).path)
    capsys.readouterr()
    assert training_main([*args, "--register", "g"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: gate: champion v1 could not be loaded (")
    assert "v1 stays champion, v2 is registered without the alias" in err[-1]
    assert str(client.get_model_version_by_alias("g", "champion").version) == "1"
    assert client.get_model_version("g", "2").tags["gate"].startswith("undecided: ")
