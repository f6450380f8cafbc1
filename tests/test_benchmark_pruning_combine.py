"""Pruned and unpruned sweeps run apart are judged together, only when they describe one setup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pruning_combine import combine, main

MACHINE = {"cpus": 2, "torch": "2.13.0+cpu", "transformers": "5.24.0", "date": "2026-12-03"}
SETUP = "MiniLM, 10 epochs as the upper budget; pruner overfit_asha = rule"


def _run(pruner: str, seed: int, epochs: int, test: float) -> dict[str, Any]:
    return {"pruner": pruner, "seed": seed, "trial_epochs": epochs, "wall_s": 10.0 * epochs,
            "test_accuracy": test}  # fmt: skip


def _result(*runs: dict[str, Any], setup: str = SETUP) -> dict[str, Any]:
    seeds = sorted({r["seed"] for r in runs})
    return {"machine": MACHINE, "wall_s": 100.0, "setup": f"{setup}; seeds {seeds}",
            "runs": list(runs)}  # fmt: skip


def test_sweeps_run_apart_are_summarized_per_seed() -> None:
    histories = _result(_run("none", 6, 40, 0.90), _run("none", 9, 40, 0.88))
    pruned = _result(_run("overfit_asha", 6, 10, 0.89), _run("overfit_asha", 9, 20, 0.88))
    out = combine([histories, pruned])
    assert out["setup"] == f"{SETUP}; seeds [6, 9]"
    assert out["wall_s"] == 200.0
    savings = [p["epoch_saving"] for p in out["summary"]["per_seed"]]
    assert savings == pytest.approx([0.75, 0.5])
    assert out["summary"]["median_test_pruned"] == pytest.approx(0.885)


def test_a_seed_with_one_sweep_is_left_out() -> None:
    out = combine([_result(_run("none", 1, 40, 0.9), _run("none", 2, 40, 0.9)),
                   _result(_run("overfit_asha", 2, 20, 0.9))])  # fmt: skip
    assert [p["seed"] for p in out["summary"]["per_seed"]] == [2]
    assert {r["seed"] for r in out["runs"]} == {2}


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        (_result(_run("overfit_asha", 1, 9, 0.9), setup="other"), "different setups"),
        (_result(_run("none", 1, 40, 0.9)), "two results hold the none sweep of seed 1"),
        (_result(_run("none", 2, 40, 0.9)), "no seed has both sweeps"),
    ],
)
def test_results_that_do_not_belong_together_are_refused(
    second: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        combine([_result(_run("none", 1, 40, 0.9)), second])


def test_cli_writes_the_table_and_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result(_run("none", 3, 40, 0.9))))
    b.write_text(json.dumps(_result(_run("overfit_asha", 3, 12, 0.9))))
    assert main([str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "pruning.md").read_text()
    assert "| 3 | 12 / 40 | 70 % |" in table
    written = json.loads((tmp_path / "out" / "pruning.json").read_text())
    assert written["sources"] == [str(a), str(b)]
    with pytest.raises(SystemExit):
        main([str(a), str(a), "--out", str(tmp_path / "again")])
    assert "two results hold the none sweep of seed 3" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()  # nothing written for a refused combination


def test_a_file_that_is_not_a_result_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "a.json", tmp_path / "notes.json"
    good.write_text(json.dumps(_result(_run("none", 3, 40, 0.9))))
    bad.write_text(json.dumps({"setup": "no runs"}))
    with pytest.raises(SystemExit) as stop:
        main([str(good), str(bad), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{bad}: not a benchmarks.pruning result" in err
    assert not (tmp_path / "out").exists()
