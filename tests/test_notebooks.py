"""The notebooks: committed without outputs, and each runs top to bottom without error.

Each notebook is executed in memory with nbclient (what nbmake runs on), in a temporary
working directory, and never written back: the repository keeps output-free notebooks.
Without ``CREATOR_SCORES_DATA`` and ``MLFLOW_TRACKING_URI`` a notebook simulates a tiny
marketplace and trains a tiny model in a temporary folder of its own; with them it reads
the given data and MLflow store (checked once for the notebooks that use MLflow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
ENV_VARS = (
    "CREATOR_SCORES_DATA",
    "MLFLOW_TRACKING_URI",
    "CREATOR_SCORES_EXPERIMENT",
    "CREATOR_SCORES_MODEL",
    "CREATOR_SCORES_BRIEFS",
)
CELL_TIMEOUT = 600


def test_there_are_four_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01-marketplace.ipynb",
        "02-experiment-review.ipynb",
        "03-partner-list.ipynb",
        "04-fairness.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing"
            )
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    assert "os.environ" in first_code.source


def execute(path: Path, workdir: Path, monkeypatch, env: dict[str, str] | None = None) -> None:
    """Run ``path`` in a fresh kernel of this interpreter, in ``workdir``, with only the
    notebook environment variables of ``env`` set; raises CellExecutionError on failure."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    # The kernel of this environment (not a "python3" kernel a user registered elsewhere).
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    before = path.read_bytes()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    assert Path(
        client.kernel_manager_class().kernel_spec_manager.get_kernel_spec("python3").resource_dir
    ).is_relative_to(sys.prefix)
    client.execute()
    assert path.read_bytes() == before  # never saved back
    assert not (workdir / "mlruns").exists() and not (workdir / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_its_own(path, tmp_path, monkeypatch):
    execute(path, tmp_path, monkeypatch)


@pytest.fixture
def store(logged_store) -> dict[str, str]:
    """Conftest's data directory and MLflow store, as a user would give them."""
    return {
        "CREATOR_SCORES_DATA": str(logged_store.data),
        "MLFLOW_TRACKING_URI": logged_store.uri,
        "CREATOR_SCORES_EXPERIMENT": logged_store.experiment,
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "01-marketplace"], ids=lambda p: p.stem
)
def test_notebook_runs_on_given_data_and_store(path, store, tmp_path, monkeypatch):
    execute(path, tmp_path, monkeypatch, env=store)
