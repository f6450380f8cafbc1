"""Pure logic of the benchmarks (no models, no Ray): savings, medians, the tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.common import median, saving
from benchmarks.report import fmt_value, markdown


def test_saving_and_median() -> None:
    assert saving(6, 10) == pytest.approx(0.4)
    assert saving(3, 0) == 0.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert math.isnan(median([]))


def test_markdown_table() -> None:
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "torch": "2.13.0", "transformers": "5.23"},
        "wall_s": 600,
        "benchmarks": [
            {
                "name": "x",
                "setup": "s",
                "figures": [
                    {"figure": "f1", "value": 1.5, "unit": "x", "goal": ">= 1.3", "passed": True},
                    {"figure": "f2", "value": None, "unit": "x", "goal": "<= 0.5",
                     "passed": False, "note": "n"},
                    {"figure": "f3", "value": 1.02, "unit": "x", "goal": "(a reference)",
                     "passed": None},
                ],
            }
        ],
    }  # fmt: skip
    text = markdown(results)
    assert "| f1 | 1.50x | >= 1.3 | yes |" in text
    assert "| f2 | not reached | <= 0.5 | **no** |" in text
    assert "| f3 | 1.02x | (a reference) | - |" in text  # no goal: neither met nor missed
    assert "10.0 min" in text
    assert fmt_value(-0.25, "points") == "-0.2 points"
    assert fmt_value(41.6, "%") == "42 %"


def test_repeated_overhead_table_compares_medians_with_bare_tune() -> None:
    from benchmarks.overhead import repeated_markdown

    walls = {"ours": [106.0, 105.0, 108.0], "ours_without_mlflow": [104.0, 104.5, 103.0],
             "bare_ray_tune": [104.0, 103.0, 103.5]}  # fmt: skip
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "versions": {"ray": "2.60", "mlflow": "3"}},
        "git_commit": "abcdef0123",
        "wall_s": 960,
        "dummy": {"trials": 200, "concurrency": 2, "ideal_s": 100.0, "rounds": 3,
                  "wall_s": walls, "median_s": {k: sorted(v)[1] for k, v in walls.items()}},
    }  # fmt: skip
    text = repeated_markdown(results)
    assert "| ours | 106.0, 105.0, 108.0 | 106.0 | 1.060x | +2.5 s |" in text
    assert "| bare_ray_tune | 104.0, 103.0, 103.5 | 103.5 | 1.035x | +0.0 s |" in text
    assert "at abcdef0" in text and "16.0 min" in text
    # `--only ours --tracking-uri ...`: no bare Tune to subtract, the store named
    only = {"ours": walls["ours"]}
    results["dummy"].update(wall_s=only, median_s={"ours": 106.0}, tracking_uri="http://h:5000")
    text = repeated_markdown(results)
    assert "| ours | 106.0, 105.0, 108.0 | 106.0 | 1.060x | - |" in text
    assert "our MLflow store: http://h:5000" in text


def test_overhead_refuses_an_unusable_tracking_store_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.overhead import main

    out = tmp_path / "results"
    assert main(["--tracking-uri", "ftp://nowhere", "--out", str(out)]) == 2
    printed = capsys.readouterr().err.strip()
    assert printed.startswith("error: --tracking-uri: unsupported scheme 'ftp'")
    assert "\n" not in printed
    assert not out.exists()  # nothing measured, nothing written


def test_overhead_times_steps_the_sweep_still_has() -> None:
    """The overhead benchmark wraps `run_sweep`'s steps by name: a renamed step would break
    it only at benchmark time (as `prepare_data` once did), so check the names here."""
    import automl.search.sweep as sweep_module
    from benchmarks.common import Timers
    from benchmarks.overhead import SWEEP_STEPS

    missing = [name for name in SWEEP_STEPS if not callable(getattr(sweep_module, name, None))]
    assert not missing, f"run_sweep has no step(s) {missing}"
    with Timers().wrap(sweep_module, *SWEEP_STEPS):
        wrapped = {name: getattr(sweep_module, name) for name in SWEEP_STEPS}
    assert all(getattr(sweep_module, n) is not wrapped[n] for n in SWEEP_STEPS)  # put back


def _epochs(*rows: tuple[float, float]) -> dict:
    """A trial's history from (epoch seconds, test accuracy) pairs."""
    return {"history": [{"epoch_s": s, "test_accuracy": a} for s, a in rows]}


def test_accuracy_at_holds_the_last_finished_epoch() -> None:
    from benchmarks.epochs import accuracy_at

    run = _epochs((10.0, 0.5), (10.0, 0.7), (10.0, 0.6))
    assert accuracy_at(run, 9.9) is None  # nothing finished yet
    assert accuracy_at(run, 10.0) == 0.5
    assert accuracy_at(run, 25.0) == 0.7
    assert accuracy_at(run, 30.0) == 0.6  # the last epoch, not the best: what is held then
    assert accuracy_at(run, 1e6) == 0.6


@pytest.mark.parametrize("train_examples", [700, 3080])
def test_the_batching_benchmarks_default_rule_is_the_configs_default(train_examples: int) -> None:
    from automl.config.schema import TrainConfig
    from automl.train.loop import settle_batching
    from benchmarks.batching import RULES, default_rule

    t = TrainConfig()
    settle_batching(t, train_examples)
    assert RULES[default_rule(train_examples)] == [
        f"train.batching={t.batching}",
        f"train.bucket_edges={t.bucket_edges}",
    ]


def test_batching_compares_rules_at_every_rules_epoch_ends() -> None:
    """A fast rule that learns less per epoch against a slow one that learns more: per epoch
    the default trails random batches; at equal time it leads until random's last epoch."""
    from benchmarks.batching import default_rule, markdown, summarize
    from benchmarks.common import machine

    default = default_rule(100)  # the trials below train on 100 examples
    assert default in ("buckets", "stratified")

    def trials(rule: str, seconds: float, accs: list[float]) -> list[dict]:
        return [
            {"task": "full", "rule": rule, "seed": seed, "train_examples": 100, "batch_size": 8,
             "history": [{"epoch": e + 1, "epoch_s": seconds, "train_samples_per_s": 100 / seconds,
                          "val_accuracy": a, "test_accuracy": a + seed / 100}
                         for e, a in enumerate(accs)]}
            for seed in (0, 1, 2)
        ]  # fmt: skip

    table = summarize(trials(default, 10.0, [0.6, 0.7]) + trials("random", 25.0, [0.7, 0.75]))
    full = table["full"]
    assert [round(g["test"], 4) for g in full["default_minus_random"]] == [-0.1, -0.05]
    rows = full["anytime"]
    moments = [(row["rule"], row["epoch"], row["seconds"]) for row in rows]
    assert moments == [(default, 1, 10.0), (default, 2, 20.0), ("random", 1, 25.0),
                       ("random", 2, 50.0)]  # fmt: skip
    assert rows[0][default] == pytest.approx(0.61) and rows[0]["random"] == 0.0
    assert rows[2][default] == pytest.approx(0.71) and rows[2]["random"] == pytest.approx(0.71)
    assert rows[3]["random"] == pytest.approx(0.76)  # random's last epoch beats the default
    assert full["default_at_least"] == {"random": [3, 4]}
    assert full["per_epoch"]["random"][1]["seconds"] == 50.0
    assert "subsample_1000" not in table  # no trials, no table
    # seed by seed: a default seed slower than the median still holds its own epoch
    slow = trials(default, 10.0, [0.6, 0.7])
    slow[2]["history"][0]["epoch_s"] = 14.0
    rows = summarize(slow + trials("random", 12.0, [0.7, 0.75]))["full"]["anytime"]
    assert rows[0][default] == pytest.approx(0.61)
    assert rows[0]["random"] == 0.0  # seeds 0, 1: none yet at 10 s; seed 2: 0.72 at 14 s
    # trials that stopped short (none, or fewer epochs) are left out of the medians and named
    failed, short = trials("random", 25.0, [])[:1], trials(default, 10.0, [0.1])[:1]
    failed[0].update(seed=3, batch_size=None)
    short[0].update(seed=4)
    everything = (trials(default, 10.0, [0.6, 0.7]) + trials("random", 25.0, [0.7, 0.75])
                  + failed + short)  # fmt: skip
    table = summarize(everything)
    assert table["full"]["incomplete"] == [("random", 3, 0), (default, 4, 1)]
    assert table["full"]["default_at_least"] == {"random": [3, 4]}
    assert len(table["full"]["per_epoch"][default]) == 2  # not cut to the short trial's 1
    text = markdown({"machine": machine(), "trials": everything, "table": table})
    assert f"Stopped short (left out above): random seed 3 (0 epochs), {default} seed 4" in text


def test_batching_keeps_regimes_in_separate_folders(tmp_path: Path) -> None:
    """A results folder of LoRA trials refuses full fine-tuning trials (its tables would mix
    them), in one line and before any training; the folder is left as it was."""
    from benchmarks.batching import main

    held = {"trials": [{"task": "full", "rule": "random", "seed": 0, "history": []}]}
    (tmp_path / "results.json").write_text(json.dumps(held))
    with pytest.raises(SystemExit) as stop:
        main(["--regime", "full_ft", "--tasks", "full", "--seeds", "0", "--out", str(tmp_path)])
    assert str(stop.value) == (
        f"--out {tmp_path}: holds --regime lora trials; give --regime full_ft its own folder"
    )
    assert json.loads((tmp_path / "results.json").read_text()) == held


def test_every_results_page_names_the_commit_and_the_search_stack() -> None:
    """Results pages said only torch and transformers: a Ray or Optuna upgrade, or the code
    they ran, could not be told apart afterwards."""
    from benchmarks.common import machine, measured_on

    line = measured_on(machine())
    assert "ray " in line and "optuna " in line and "; commit " in line
    old = {k: v for k, v in machine().items() if k not in ("versions", "git_commit")}
    assert "commit" not in measured_on(old)  # a page written before they were recorded
    from benchmarks.common import short_commit

    # code changed since the commit: said on the page, not cut away with the hash's tail
    assert short_commit("751ea9efaca2fb8361ef385bbb398c9c555a3825-dirty") == "751ea9e-dirty"
    assert short_commit("751ea9efaca2fb8361ef385bbb398c9c555a3825") == "751ea9e"
    assert short_commit(None) == "?"


def test_a_pruning_run_of_one_kind_of_sweep_needs_a_folder_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--pruners none` alone rewrote the committed pruning.json (no summary) beside a
    pruning.md that no longer matched it."""
    from benchmarks.pruning import main
    from benchmarks.report import RESULTS

    before = (RESULTS / "pruning.json").read_bytes()
    with pytest.raises(SystemExit) as stop:
        main(["--pruners", "none"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--pruners none: one kind of sweep; name its own --out" in err
    assert (RESULTS / "pruning.json").read_bytes() == before


@pytest.mark.parametrize("only", ["c", "a,d"])
def test_the_retired_search_benchmarks_are_named_as_such(
    only: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """c and d judged each search on the validation accuracy it selected on."""
    from benchmarks.run import main

    with pytest.raises(SystemExit) as stop:
        main(["--only", only])
    assert stop.value.code == 2
    assert "c and d were retired" in capsys.readouterr().err.strip().splitlines()[-1]
