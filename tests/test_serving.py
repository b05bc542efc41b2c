"""Serving: briefs, the candidate rule, partner lists, reasons, model URIs, the command
and the MLflow pyfunc behind ``mlflow models serve``.

One small simulated marketplace and one quickly trained, logged and registered model
(module scope) serve every test; the candidate rule is checked on hand-made tables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from commands.serving import main as serving_main
from features.build import build_features
from features.registry import FEATURE_NAMES
from serving.model import ModelError, check_features, load_model
from tests.conftest import CONTRACT_COLUMNS, CONTRIB_COLUMNS, write_briefs
from tests.worlds import tiny_scorer


def run_cli(capsys, *args) -> tuple[int, str]:
    code = serving_main([str(a) for a in args])
    return code, capsys.readouterr().err


def cli_args(serving_world, briefs, out, model="models:/cs@champion"):
    return [
        "--model",
        model,
        "--data",
        serving_world.data,
        "--briefs",
        briefs,
        "--out",
        out,
        "--tracking-uri",
        serving_world.tracking_uri,
    ]


# ------------------------------------------------------------------ models


def test_model_uris_by_alias_version_and_run(serving_world):
    scorer, version = load_model("models:/cs@champion", serving_world.tracking_uri)
    assert version == "models:/cs/1"
    _, version = load_model("models:/cs@challenger", serving_world.tracking_uri)
    assert version == "models:/cs/2"
    _, version = load_model("models:/cs/2", serving_world.tracking_uri)
    assert version == "models:/cs/2"
    run_id = MlflowClient(serving_world.tracking_uri).get_model_version("cs", "1").run_id
    _, version = load_model(f"runs:/{run_id}/model", serving_world.tracking_uri)
    assert version == f"runs:/{run_id}/model"
    assert scorer.features == list(FEATURE_NAMES)


def test_model_with_other_features_is_rejected(serving_world):
    with pytest.raises(ModelError, match="features do not match.*bogus_feature"):
        load_model("models:/cs_wrong/1", serving_world.tracking_uri)
    check_features(serving_world.scorer)
    with pytest.raises(ModelError, match="another order"):
        check_features(tiny_scorer(list(reversed(FEATURE_NAMES))))
    with pytest.raises(ModelError, match=f"not in the model: {FEATURE_NAMES[-1]}"):
        check_features(tiny_scorer(list(FEATURE_NAMES[:-1])))


def test_tracking_uri_from_the_environment(serving_world, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", serving_world.tracking_uri)
    assert load_model("models:/cs@champion")[1] == "models:/cs/1"


# ------------------------------------------------------------------ the command


def test_command_writes_the_partner_list(serving_world, scored_briefs, tmp_path, capsys):
    out = tmp_path / "list.parquet"
    code, err = run_cli(capsys, *cli_args(serving_world, serving_world.briefs_csv, out))
    assert code == 0, err
    written = pd.read_parquet(out)
    assert list(written.columns) == CONTRACT_COLUMNS
    expected = scored_briefs.assign(model_version="models:/cs/1")
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert "warning: brief xx-none: no candidates" in err
    assert "scored 5/5 briefs" in err


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_command_output_is_deterministic(serving_world, tmp_path, capsys, suffix):
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    assert run_cli(capsys, *cli_args(serving_world, serving_world.briefs_csv, first))[0] == 0
    assert run_cli(capsys, *cli_args(serving_world, serving_world.briefs_csv, second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_command_accepts_a_version_uri(serving_world, tmp_path, capsys):
    out = tmp_path / "v2.csv"
    briefs = write_briefs(
        tmp_path,
        f"brief_id,market,category,as_of,top_k\none,PH,food,{serving_world.as_of.isoformat()},3\n",
    )
    code, err = run_cli(capsys, *cli_args(serving_world, briefs, out, model="models:/cs/2"))
    assert code == 0, err
    written = pd.read_csv(out)
    assert written["model_version"].tolist() == ["models:/cs/2"] * 3
    assert written["rank"].tolist() == [1, 2, 3]


BAD_BRIEFS = {
    "duplicate id": ("b1,GB,home,2025-01-01\nb1,GB,home,2025-01-02\n", "brief_id: must be unique"),
    "missing id": (",GB,home,2025-01-01\n", "brief_id: must not be empty"),
    "bad as_of": ("b1,GB,home,31/12/2024\n", "as_of: must be a timestamp"),
}


@pytest.mark.parametrize(
    "case",
    [
        "duplicate id",
        "missing id",
        "missing column",
        "bad as_of",
        "negative top_k",
        "commission above 1",
        "unknown alias",
        "unknown version",
        "unknown model",
        "other features",
        "missing briefs file",
        "missing data",
        "no tracking database",
    ],
)
def test_command_bad_input_is_one_line_and_writes_nothing(serving_world, tmp_path, capsys, case):
    header = "brief_id,market,category,as_of"
    good = write_briefs(
        tmp_path, f"{header}\nb1,GB,home,{serving_world.as_of.isoformat()}\n", "good.csv"
    )
    briefs, model, data, uri = (
        good,
        "models:/cs@champion",
        serving_world.data,
        serving_world.tracking_uri,
    )
    if case in BAD_BRIEFS:
        body, message = BAD_BRIEFS[case]
        briefs = write_briefs(tmp_path, f"{header}\n{body}")
    elif case == "missing column":
        briefs, message = (
            write_briefs(tmp_path, "brief_id,market,as_of\nb1,GB,2025-01-01\n"),
            "missing column(s) category",
        )
    elif case == "negative top_k":
        briefs, message = (
            write_briefs(tmp_path, f"{header},top_k\nb1,GB,home,2025-01-01,-1\n"),
            "top_k: must be >= 1",
        )
    elif case == "commission above 1":
        briefs, message = (
            write_briefs(tmp_path, f"{header},commission_rate\nb1,GB,home,2025-01-01,1.5\n"),
            "commission_rate: must be in [0, 1]",
        )
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
    args = [
        "--model",
        model,
        "--data",
        data,
        "--briefs",
        briefs,
        "--out",
        out,
        "--tracking-uri",
        uri,
    ]
    code, err = run_cli(capsys, *args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []
    if case == "no tracking database":
        assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_python_dash_m_serving_runs_end_to_end(serving_world, tmp_path):
    out = tmp_path / "list.csv"
    env = {**os.environ, "MLFLOW_TRACKING_URI": serving_world.tracking_uri}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving",
            "--model",
            "models:/cs@champion",
            "--data",
            str(serving_world.data),
            "--briefs",
            str(serving_world.briefs_csv),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert pd.read_csv(out)["model_version"].eq("models:/cs/1").all()


# ------------------------------------------------------------------ mlflow models serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_like_the_scorer(serving_world, scored_briefs, tmp_path):
    """The registered pyfunc behind the real ``mlflow models serve`` returns raw_score,
    score and contributions equal to ``Scorer.explain`` of the posted feature rows."""
    requests = scored_briefs[["creator_id"]].assign(
        as_of=serving_world.as_of, category="beauty", commission_rate=0.12
    )
    features = build_features(serving_world.tables, requests, serving_world.history).reset_index(
        drop=True
    )
    with_null = features.isna().any(axis=1).to_numpy()
    features = pd.concat(
        [features[with_null].head(3), features[~with_null].head(3)], ignore_index=True
    )
    assert features.isna().any().any()  # missing values travel as JSON null
    expected = serving_world.scorer.explain(features).reset_index(drop=True)
    payload = {
        "dataframe_split": {
            "columns": list(features.columns),
            "data": [
                [None if np.isnan(v) else float(v) for v in row]
                for row in features.to_numpy(dtype=float)
            ],
        }
    }

    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # the server is started by name from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": serving_world.tracking_uri,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/cs@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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
    np.testing.assert_allclose(answer.to_numpy(dtype=float), expected.to_numpy(), rtol=0, atol=1e-9)
    assert np.abs(answer[CONTRIB_COLUMNS].sum(axis=1) - answer["raw_score"]).max() < 1e-6


def test_a_model_from_before_the_index_split_is_refused():
    # The registry before issue 12: cadence-era and authenticity features since replaced.
    before_split = [
        name
        for name in FEATURE_NAMES
        if name
        not in (
            "active_week_ratio_180d",
            "orders_per_1k_views_90d",
            "orders_per_1k_views_all",
            "organic_follower_growth_90d",
            "follower_jump_180d",
            "follower_jump_all",
            "followers_without_views_90d",
        )
    ] + ["followers_gained_per_1k_views_90d"]
    with pytest.raises(
        ModelError,
        match=r"features do not match.*unknown to the builder: "
        r"followers_gained_per_1k_views_90d.*not in the model: "
        r"active_week_ratio_180d",
    ) as err:
        check_features(tiny_scorer(before_split), "models:/old/1")
    assert "\n" not in str(err.value)
