"""A resume or extension keeps the data, model, training values and search space the sweep
started with; otherwise its trials would not compare, and it is refused before any compute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config

from automl.config.schema import ConfigError
from automl.search.identity import DATA_KEY, check_same_data, data_identity
from automl.search.plan import SweepPlan, plan_sweep
from automl.search.state import SweepState, round_settings

FINGERPRINT = {"sha256": "a" * 64, "counts": {"train": 558, "val": 160, "test": 81}}


def _plan(tmp: Path, *overrides: str) -> SweepPlan:
    return plan_sweep(
        compose_sweep_config(tmp, "experiment=smoke", "tracking.enabled=false", *overrides)
    )


def test_a_resume_with_other_values_is_refused_and_one_with_other_resources_is_not(
    tmp_path: Path,
) -> None:
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    started = plan_sweep(conf).started_with
    assert started["train.batch_size"] == "16" and "train.num_threads" not in started
    assert "train.learning_rate" not in started  # the smoke space samples it: per trial
    assert json.loads(started["search space train.epochs"]) == {
        "type": "int", "low": 2, "high": 4, "log": False
    }  # fmt: skip
    assert not [k for k in started if k.startswith("data.")]  # the fingerprint judges the data
    out = tmp_path / "outputs" / "smoke"
    recorded = {**started, DATA_KEY: FINGERPRINT}
    recorded.pop("train.weight_decay")  # as if a newer version had added that key
    SweepState(phase="running", started_with=recorded).save(out)

    # where and how it runs, more trials, another sampler: the same sweep
    same = ("train.num_threads=2", "sweep.num_samples=6", "sampler=random",
            "resources.cpus_per_trial=2", "train.weight_decay=0.5")  # fmt: skip
    plan = _plan(tmp_path, "sweep.resume=true", *same)
    assert plan.continues and plan.resumes == recorded
    for changed, named in [
        ("train.batch_size=8", "train.batch_size: 16, now 8"),
        ("sweep.metric=val_f1", 'sweep.metric: "val_accuracy", now "val_f1"'),
        ("search_space=overfit", "search space"),
    ]:
        with pytest.raises(ConfigError, match="^config: sweep.resume: sweep 'smoke' was") as err:
            _plan(tmp_path, "sweep.resume=true", changed)
        assert named in str(err.value) and "\n" not in str(err.value)
    # a fresh sweep of that name: no resume, no check
    assert not _plan(tmp_path, "train.batch_size=8").continues
    SweepState(phase="new", started_with=recorded).save(out)  # killed before it began
    assert not _plan(tmp_path, "sweep.resume=true", "train.batch_size=8").continues


def test_a_state_from_before_the_check_resumes_as_it_did(tmp_path: Path) -> None:
    SweepState(phase="running").save(tmp_path / "outputs" / "smoke")
    plan = _plan(tmp_path, "sweep.resume=true", "data.max_examples=400")
    assert plan.continues and plan.resumes == {}  # nothing recorded to compare with


def test_other_rows_in_the_same_files_are_refused() -> None:
    before = {DATA_KEY: FINGERPRINT}
    check_same_data("s", before, dict(FINGERPRINT))
    check_same_data("s", {}, {"sha256": "b" * 64})  # nothing recorded
    grown = {"sha256": "b" * 64, "counts": {"train": 559, "val": 160, "test": 81}}
    with pytest.raises(ConfigError, match=r"started on other data \(counts differ"):
        check_same_data("s", before, grown)
    edited = {**FINGERPRINT, "sha256": "c" * 64}
    with pytest.raises(ConfigError, match=r"started on other data \(content differs"):
        check_same_data("s", before, edited)
    # the same rows, the classes numbered otherwise (a ClassLabel re-encoded): the earlier
    # trials' heads would export under the new names
    named = {DATA_KEY: data_identity(FINGERPRINT, ["neg", "pos"])}
    check_same_data("s", named, data_identity(FINGERPRINT, ["neg", "pos"]))
    check_same_data("s", before, data_identity(FINGERPRINT, ["pos", "neg"]))  # none recorded
    with pytest.raises(
        ConfigError,
        match=r"other data \(classes differ in order or number: class 0 was 'neg', now 'pos' "
        r"\(2 classes, now 2\)",
    ):
        check_same_data("s", named, data_identity(FINGERPRINT, ["pos", "neg"]))


def test_a_resume_with_nothing_to_resume_says_it_starts_afresh(tmp_path: Path) -> None:
    """A mistyped sweep.name (or a forgotten paths.output_dir) with sweep.resume=true re-ran
    every trial, its plan that of any fresh sweep."""
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "tracking.enabled=false", "sweep.resume=true"
    )
    out = tmp_path / "outputs" / "smoke"
    said = f"  resume: nothing to resume in {out}: starts afresh"
    assert said in plan_sweep(conf).describe().splitlines()
    SweepState(phase="finished", records=[{"trial_id": "a"}]).save(out)
    assert "resume:" not in plan_sweep(conf).describe()  # it resumes (here: nothing to add)


def test_a_fresh_sweep_over_an_earlier_one_says_what_it_replaces(tmp_path: Path) -> None:
    """Re-running a sweep's name without sweep.resume started over in silence, and its export
    was replaced when the new one exported."""
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    assert plan_sweep(conf).replaces == ""  # nothing there yet
    out = tmp_path / "outputs" / "smoke"
    SweepState(phase="finished", records=[{"trial_id": "a"}, {"trial_id": "b"}]).save(out)
    (out / "best").mkdir()
    plan = plan_sweep(conf)
    assert plan.replaces == (
        f"the earlier sweep of this name (2 trials, finished): its Optuna study and Ray results "
        f"now, its export {out / 'best'} when this sweep exports; sweep.resume=true would "
        "continue it instead"
    )
    assert f"  replaces: {plan.replaces}" in plan.describe().splitlines()
    SweepState(phase="running").save(out)  # killed midway
    assert plan_sweep(conf).replaces.startswith("the earlier sweep of this name (interrupted): ")
    SweepState(phase="running", round=1, records=[{"trial_id": "a"}]).save(out)  # an extension
    assert "(interrupted, 1 trial of earlier rounds)" in plan_sweep(conf).replaces
    SweepState(phase="exporting", records=[{"trial_id": "a"}]).save(out)
    assert "(1 trial, stopped while exporting): " in plan_sweep(conf).replaces
    SweepState(phase="new").save(out)  # a fresh re-run killed at once: the export is still there
    assert plan_sweep(conf).replaces == (
        f"the earlier sweep of this name (killed before its first trial): its export "
        f"{out / 'best'} when this sweep exports"
    )
    (out / "best").rmdir()
    assert plan_sweep(conf).replaces == ""
    resumed = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false",
                                   "sweep.resume=true")  # fmt: skip
    assert plan_sweep(resumed).replaces == ""


def test_only_a_resume_with_something_to_resume_continues(tmp_path: Path) -> None:
    """`sweep.resume=true` with nothing to resume (no folder, or killed before it began) starts
    afresh, and so gets an MLflow parent run of its own: it reopened the latest parent run of
    the sweep's name in the store (another output folder's), and ended it with its own results."""
    fresh = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    resumed = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false",
                                   "sweep.resume=true")  # fmt: skip
    out = tmp_path / "outputs" / "smoke"
    assert not out.exists() and not plan_sweep(resumed).continues
    SweepState(phase="new").save(out)
    assert not plan_sweep(resumed).continues
    SweepState(phase="running").save(out)
    assert plan_sweep(resumed).continues and not plan_sweep(fresh).continues


def test_a_resumed_round_names_the_settings_it_goes_on_with(tmp_path: Path) -> None:
    """Ray restores an interrupted round with the time budget, concurrency, sampler and ASHA it
    was started with: a resume that changes them says so (they apply to later rounds)."""
    started = compose_sweep_config(
        tmp_path, "experiment=smoke", "tracking.enabled=false", "sweep.time_budget_s=60"
    )
    out = tmp_path / "outputs" / "smoke"
    SweepState(phase="running", round_settings=round_settings(started)).save(out)
    changed = compose_sweep_config(
        tmp_path, "experiment=smoke", "tracking.enabled=false", "sweep.resume=true",
        "sweep.time_budget_s=120", "sampler=random", "pruner=overfit", "sweep.num_samples=9",
    )  # fmt: skip
    assert plan_sweep(changed).keeps == ""  # killed before Ray saved it: it starts afresh
    (out / "ray" / "smoke").mkdir(parents=True)
    (out / "ray" / "smoke" / "tuner.pkl").write_bytes(b"")  # what Tuner.restore reads
    plan = plan_sweep(changed)
    assert plan.keeps == (  # the trial count too: it ran its 3 and ended, unsaid
        "sweep.num_samples 3 (not 9), sweep.time_budget_s 60 (not 120), sampler.name tpe "
        "(not random), ASHA grace 1, reduction 2 (not off)"
    )
    assert f"  keeps: {plan.keeps}" in plan.describe().splitlines()
    same = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false",
                                "sweep.resume=true", "sweep.time_budget_s=60")  # fmt: skip
    assert plan_sweep(same).keeps == ""
    SweepState(phase="finished", round_settings=round_settings(started)).save(out)
    assert plan_sweep(changed).keeps == ""  # a finished sweep adds a round: the new values apply


def test_a_setting_the_model_does_not_read_is_no_part_of_the_start(tmp_path: Path) -> None:
    """A multirun's minilm job carried the hf job's `model.name_or_path` into its recorded
    start values: resumed alone, it was refused with the setting (not read) and without it
    (other start values)."""
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    started = plan_sweep(conf).started_with
    assert "model.name_or_path" not in started and "model.source" in started  # tiny: not read
    out = tmp_path / "outputs" / "smoke"
    carried = {**started, "model.name_or_path": '"org/other"', DATA_KEY: FINGERPRINT}
    SweepState(phase="running", started_with=carried).save(out)
    resumed = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false",
                                   "sweep.resume=true")  # fmt: skip
    assert plan_sweep(resumed).resumes == carried  # resumes, the old key only on one side


def test_a_resume_on_other_data_is_refused_before_any_tokenizing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint needs only the loaded rows: the refusal came after every model choice's
    tokenizer had run over every split and the quality report was built."""
    import automl.data.prepare
    from automl.data.prepare import prepare_data_for_models

    def tokenized(*args: object, **kwargs: object) -> None:
        raise AssertionError("tokenized before the data was checked")

    monkeypatch.setattr(automl.data.prepare, "tokenize", tokenized)
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    before = {DATA_KEY: {**FINGERPRINT, "sha256": "c" * 64}}
    with pytest.raises(ConfigError, match=r"started on other data"):
        prepare_data_for_models(
            conf, {}, lambda task, fingerprint: check_same_data("smoke", before, fingerprint)
        )


def test_a_space_choosing_the_model_is_judged_by_its_choices_not_the_configs_model(
    tmp_path: Path,
) -> None:
    """Where the space chooses the model no trial reads the config's own `model` section: a
    resume with `model=minilm` was refused for it, and an edit of a choice's file
    (conf/model/tiny_bert.yaml) between start and resume went unnoticed."""
    space = ("search_space=models",)
    started = _plan(tmp_path, *space).started_with
    assert not [k for k in started if k.startswith("model.")]
    assert started["model=tiny_bert.tiny_layers"] == "2"
    assert "model=minilm.package" in started
    out = tmp_path / "outputs" / "smoke"
    SweepState(phase="running", started_with={**started, DATA_KEY: FINGERPRINT}).save(out)
    assert _plan(tmp_path, *space, "sweep.resume=true", "model=minilm").continues
    edited = {**started, "model=tiny_bert.tiny_layers": "3", DATA_KEY: FINGERPRINT}
    SweepState(phase="running", started_with=edited).save(out)
    with pytest.raises(ConfigError, match=r"model=tiny_bert.tiny_layers: 3, now 2"):
        _plan(tmp_path, *space, "sweep.resume=true")


def test_a_resume_on_a_base_folder_holding_other_weights_is_refused(
    tmp_path: Path, tokenizer: Any
) -> None:
    """The same path with other weights (a base re-trained, another export copied over): the
    resumed trials and the export built on them silently (the export scored 0.23 for 0.58).
    The folder's card or provenance rewritten (`automl-export` again) is the same model."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / "my-bert"
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = ("model=hf", f"model.name_or_path={folder}", "model.max_length=64")
    started = _plan(tmp_path, *model).started_with
    assert len(json.loads(started["model files (sha256)"])) == 16
    SweepState(phase="running", started_with={**started, DATA_KEY: FINGERPRINT}).save(
        tmp_path / "outputs" / "smoke"
    )
    (folder / "README.md").write_text("a card written again")
    assert _plan(tmp_path, "sweep.resume=true", *model).continues
    torch.manual_seed(1)
    BertForSequenceClassification(config).save_pretrained(folder)  # other weights
    with pytest.raises(ConfigError, match=r"was started with other values.*model files \(sha"):
        _plan(tmp_path, "sweep.resume=true", *model)


def test_a_resume_that_finishes_an_export_says_it_adds_no_trials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped during its export and resumed with more trials: only a finished sweep extends,
    so the export was finished and the rise dropped without a word."""
    out = tmp_path / "outputs" / "smoke"
    SweepState(phase="exporting", records=[{"trial_id": "a"}]).save(out)
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false",
                                "sweep.resume=true", "sweep.num_samples=5")  # fmt: skip
    with caplog.at_level("WARNING", logger="automl"):
        plan_sweep(conf)
    assert (
        "sweep smoke was stopped during its export: this run finishes that; run the command "
        "again to add trials up to sweep.num_samples=5"
    ) in caplog.text
