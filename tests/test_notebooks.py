"""Notebooks run in CI so they never rot (outputs are stripped from git)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # a notebook kernel, and the quick-start runs a sweep

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(path: Path, workdir: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        f"{path.name}: strip outputs before committing"
    )
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()


def test_quickstart_runs_a_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKDIR", str(tmp_path))
    _execute(NOTEBOOKS / "01_quickstart_sweep.ipynb", tmp_path)


def test_sweep_from_mlflow_redraws_the_smoke_sweep(
    smoke_sweep: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, _, _ = smoke_sweep  # reads the session's smoke sweep from its MLflow store only
    monkeypatch.setenv("TRACKING_URI", conf.tracking.uri)
    monkeypatch.setenv("SWEEP", conf.sweep.name)
    _execute(NOTEBOOKS / "02_sweep_from_mlflow.ipynb", tmp_path)


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "01_quickstart_sweep.ipynb",
        "02_sweep_from_mlflow.ipynb",
    ]
