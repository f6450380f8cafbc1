"""End-to-end sweeps on the tiny model: Ray Tune + Optuna, pruning, MLflow, export."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import compose_sweep_config, sweep_runs
from mlflow.tracking import MlflowClient

from automl.config.schema import Config, ConfigError
from automl.data.prepare import prepare_data
from automl.data.task import DataError
from automl.search.callback import STATUSES
from automl.search.sweep import SweepOutcome, run_sweep


def compose_config(tmp: Path, *overrides: str, store: bool = True) -> Config:
    return compose_sweep_config(tmp, *overrides, store=store)


@pytest.fixture
def smoke(smoke_sweep: tuple[Config, SweepOutcome, Path]) -> tuple[Config, SweepOutcome, Path]:
    return smoke_sweep  # the session's smoke sweep (conftest.py), shared with other readers


def test_smoke_sweep_summary(smoke: tuple[Config, SweepOutcome, Path]) -> None:
    conf, outcome, tmp = smoke
    summary = json.loads((tmp / "outputs" / "smoke" / "summary.json").read_text())
    assert summary["num_trials"] == conf.sweep.num_samples == len(summary["trials"])
    assert {row["status"] for row in summary["trials"]} <= set(STATUSES)
    scored = [r for r in summary["trials"] if r["best_value"] is not None]
    assert summary["best_value"] == max(r["best_value"] for r in scored)
    for row in summary["trials"]:
        assert row["epochs_run"] == len(row["history"]) >= 1
        # scored by the best epoch, not the last
        assert row["best_value"] == max(h["val_accuracy"] for h in row["history"])
        assert set(row["params"]) == {
            "peft.lora_rank",
            "train.learning_rate",
            "train.epochs",
            "peft.frozen_layers",
        }
    best_row = next(r for r in summary["trials"] if r["trial_id"] == summary["best_trial"])
    assert summary["best_config"] == best_row["params"]


def test_smoke_sweep_mlflow_runs(smoke: tuple[Config, SweepOutcome, Path]) -> None:
    conf, outcome, tmp = smoke
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the process-wide registry
    experiment = client.get_experiment_by_name("smoke")
    assert experiment is not None
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    parents, children = sweep_runs(f"sqlite:///{tmp / 'mlflow.db'}", "smoke")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert outcome.summary["mlflow_run_id"] == parent.info.run_id  # automl-report logs there
    assert parent.data.params["sampler"] == "tpe"
    assert "git_commit" in parent.data.tags
    # asked once: the export names the commit the sweep's run does
    assert outcome.export_dir is not None
    provenance = json.loads((outcome.export_dir / "provenance.json").read_text())
    assert provenance["git_commit"] == parent.data.tags["git_commit"] != ""
    # the trial whose test scores the run shows: the exported one
    assert parent.data.tags["test_trial"] == outcome.summary["best_trial"]
    assert parent.data.metrics["test_accuracy"] == outcome.summary["test_accuracy"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.json", "summary.json", "search_space", "best_model"} <= artifacts
    rows = {r.trial_id: r for r in outcome.records}
    assert len(children) == len(rows)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        record = rows[child.data.tags["automl.trial_id"]]
        assert child.data.tags["status"] == record.status
        assert "node_ip" in child.data.tags
        assert "train.learning_rate" in child.data.params
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, record.epochs_run + 1))
        assert child.data.metrics["best_epoch"] == record.best_epoch
    version = client.get_model_version_by_alias("smoke", "champion")
    assert version.run_id == parent.info.run_id


def test_smoke_sweep_export_loads_and_reproduces(smoke: tuple[Config, SweepOutcome, Path]) -> None:
    from transformers import AutoModelForSequenceClassification, pipeline

    conf, outcome, tmp = smoke
    best_dir = tmp / "outputs" / "smoke" / "best"
    assert outcome.export_dir == best_dir
    names = {p.name for p in best_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "provenance.json",
        "tokenizer.json",
    } <= names
    assert not any(n.endswith(".bin") for n in names)
    provenance = json.loads((best_dir / "provenance.json").read_text())
    assert provenance["trial_id"] == outcome.summary["best_trial"]
    model = AutoModelForSequenceClassification.from_pretrained(best_dir)
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged, plain model
    data = prepare_data(conf)
    assert list(model.config.id2label.values()) == data.label_names
    clf = pipeline("text-classification", model=str(best_dir), truncation=True)
    predictions = [p["label"] for p in clf(data.val_texts, batch_size=1)]
    truth = [data.label_names[i] for i in data.val.labels]
    accuracy = sum(p == t for p, t in zip(predictions, truth, strict=True)) / len(truth)
    assert accuracy == pytest.approx(outcome.summary["best_value"], abs=1e-9)
    # the card's own example runs as written, long texts included (cut at training's length)
    card = (best_dir / "README.md").read_text()
    example = card.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(example.replace("path/to/this/folder", str(best_dir)), scope)
    assert scope["clf"]("word " * 700)[0]["label"] in data.label_names


def test_smoke_sweep_keeps_disk_bounded(smoke: tuple[Config, SweepOutcome, Path]) -> None:
    _, outcome, tmp = smoke
    left = list((tmp / "outputs" / "smoke" / "ray").rglob("checkpoint_*"))
    assert len(left) == 1  # only the best trial's, for automl-export
    assert outcome.summary["best_trial"] in str(left[0])


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_overfitting_sweep_is_pruned(tmp_path: Path) -> None:
    conf = compose_config(tmp_path, "experiment=overfit", "tracking.enabled=false")
    outcome = run_sweep(conf)
    planned = 12
    pruned = [r for r in outcome.records if r.status == "pruned_overfit"]
    assert pruned, [(r.status, r.epochs_run) for r in outcome.records]
    assert all(r.epochs_run < planned for r in pruned)
    assert all("not improved" in r.reason or "gap" in r.reason for r in pruned)
    assert outcome.summary["trial_epochs"] < planned * len(outcome.records)


@pytest.mark.slow  # a sweep
def test_a_file_put_into_best_during_the_sweep_leaves_a_summary_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The export's folder is checked at the start; a file the user put into best/ while the
    sweep ran (an evaluation's --out) failed it at the very end: FileExistsError, no summary,
    the MLflow run FAILED. Now nothing is exported, said in one line, and the rest is kept."""
    import automl.search.sweep
    from automl.cli.sweep import left_undone

    conf = compose_config(tmp_path, "experiment=smoke", "sweep.num_samples=1",
                          "tracking.enabled=false", "train.epochs=1")  # fmt: skip
    best = tmp_path / "outputs" / "smoke" / "best"

    def users_file_arrived(out_dir: Path) -> str | None:
        best.mkdir(parents=True, exist_ok=True)
        (best / "march.json").write_text("{}")
        return f"{out_dir}: holds files not written by an export (march.json)"

    monkeypatch.setattr(automl.search.sweep, "not_replaceable", users_file_arrived)
    outcome = run_sweep(conf)
    assert outcome.export_dir is None and outcome.summary["best_trial"] is not None
    assert (tmp_path / "outputs" / "smoke" / "summary.json").is_file()
    assert (best / "march.json").read_text() == "{}"
    assert (left_undone(outcome) or "").startswith(f"nothing exported: {best}: holds files")
    assert f"{best} is not this sweep's export" in caplog.text  # read as its model otherwise
    assert "then run the same command with sweep.resume=true sweep.num_samples=1" in caplog.text


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.dry_run=true", store=False)
    run_sweep(conf)
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plan["dry_run"] and any("peft.frozen_layers" in line for line in plan["plan"])
    assert any(re.search(r"data read: \d+ train / \d+ val / \d+ test, 21 classes", line)
               for line in plan["plan"])  # fmt: skip
    assert any("cluster: this machine" in line for line in plan["plan"])
    assert not (tmp_path / "outputs").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_dry_run_leaves_a_remote_cluster_and_the_hub_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither is contacted: no download, no connection (this test machine has neither)."""
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.dry_run=true", "data=hf",
                          "data.hf_name=someone/not-a-dataset", "ray.address=10.0.0.1:6379",
                          store=False)  # fmt: skip
    run_sweep(conf)
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["plan"]
    assert "  data: Hub dataset 'someone/not-a-dataset': not downloaded in a dry run" in plan
    assert "  cluster 10.0.0.1:6379: not contacted in a dry run" in plan


def test_dry_run_counts_gpus_as_ray_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No visible GPU: `auto` plans CPU trials, a GPU asked for is refused before anything runs."""
    from automl.search.plan import local_resources

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local_resources(3) == (3.0, 0)
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.dry_run=true",
                          "resources.gpus_per_trial=auto", store=False)  # fmt: skip
    run_sweep(conf)
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["plan"]
    assert any(line.endswith(" CPU, 0.0 GPU") for line in plan), plan
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.dry_run=true",
                          "resources.gpus_per_trial=1", store=False)  # fmt: skip
    with pytest.raises(ConfigError, match="asks for 1 GPU but this machine has 0$"):
        run_sweep(conf)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["data.source=csv", "data.path={tmp}/missing.csv"], DataError, "missing.csv: file not fo"),
        (["resources.cpus_per_trial=4096"], ConfigError, "asks for 4096 CPU but this machine has"),
        # the packaged corpus repeats texts across splits: leakage, a problem under `fail`
        (["data.quality=fail"], DataError, r"data quality \(data.quality=fail\): \d+ val texts"),
    ],
)
def test_dry_run_checks_what_the_sweep_would_meet(
    tmp_path: Path, overrides: list[str], error: type, message: str
) -> None:
    """The data and, on a local cluster, this machine's resources: a dry run that passes is not
    followed by a run that fails on them."""
    overrides = [o.format(tmp=tmp_path) for o in overrides]
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.dry_run=true", *overrides,
                          store=False)  # fmt: skip
    with pytest.raises(error, match=message):
        run_sweep(conf)
    assert not (tmp_path / "outputs").exists()


def test_reexport_gives_the_same_model(smoke: tuple[Config, SweepOutcome, Path]) -> None:
    from safetensors.torch import load_file

    from automl.export.reexport import ExportError, reexport

    _, outcome, tmp = smoke
    sweep_dir = tmp / "outputs" / "smoke"
    again = reexport(sweep_dir, out_dir=tmp / "again")
    first = load_file(str(sweep_dir / "best" / "model.safetensors"))
    second = load_file(str(again / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)
    # the same held-out scores (texts seen in training apart too) and the same provenance
    scored = [
        json.loads((d / "test_evaluation.json").read_text()) for d in (sweep_dir / "best", again)
    ]
    assert [{k: v for k, v in e.items() if k != "model"} for e in scored] == [
        {k: v for k, v in scored[0].items() if k != "model"}
    ] * 2
    assert scored[0]["unseen"]["num_examples"] > 0
    assert f"accuracy **{scored[0]['accuracy']:.4f}**" in (again / "README.md").read_text()
    records = [(d / "trained_texts.json").read_text() for d in (sweep_dir / "best", again)]
    assert records[0] == records[1] and len(json.loads(records[0])["texts"]) > 0
    provenances = [
        json.loads((d / "provenance.json").read_text()) for d in (sweep_dir / "best", again)
    ]
    assert provenances[1]["trained_on"] == provenances[0]["trained_on"] == "cpu"
    for key in ("export_rule", "search_space_sha256"):  # the card says how it was chosen
        assert provenances[1][key] == provenances[0][key], key
    # the code that trained it, as the sweep recorded it; the code that wrote it now, apart
    recorded = sweep_dir / "best" / "provenance.json"
    original = recorded.read_text()
    try:
        older = {**provenances[0], "git_commit": "0123abc", "versions": {"torch": "1.0"}}
        recorded.write_text(json.dumps(older))
        stamped = json.loads(
            (reexport(sweep_dir, out_dir=tmp / "stamped") / "provenance.json").read_text()
        )
    finally:
        recorded.write_text(original)
    assert (stamped["git_commit"], stamped["versions"]) == ("0123abc", {"torch": "1.0"})
    assert stamped["reexported_with"]["versions"]["torch"] == torch.__version__
    # without the sweep's own record: unknown, not today's code named as the trainer
    shutil.move(sweep_dir / "best", tmp / "best-aside")
    try:
        bare = json.loads(
            (reexport(sweep_dir, out_dir=tmp / "bare") / "provenance.json").read_text()
        )
    finally:
        shutil.move(tmp / "best-aside", sweep_dir / "best")
    assert (bare["git_commit"], bare["versions"]) == ("unknown", {})
    assert bare["reexported_with"]["versions"]["torch"] == torch.__version__
    others = [r.trial_id for r in outcome.records if r.trial_id != outcome.summary["best_trial"]]
    with pytest.raises(ExportError, match="keep_checkpoints"):
        reexport(sweep_dir, trial_id=others[0], out_dir=tmp / "other")
    # another trial over the sweep's own export, which its summary, report and registered
    # model describe: refused before its checkpoint is even looked for
    best, other = outcome.summary["best_trial"], others[0]
    refused = rf"^--out .*best: the sweep's export, .* as trial {best}'s: export trial {other} "
    with pytest.raises(ExportError, match=refused):
        reexport(sweep_dir, trial_id=others[0], out_dir=sweep_dir / "best")
    with pytest.raises(ExportError, match="no trial 'nope'"):
        reexport(sweep_dir, trial_id="nope")
    mine = tmp / "my-project"  # a folder of the user's: an export would replace it whole
    (mine / "notes.txt").parent.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not an exported model"):
        reexport(sweep_dir, out_dir=mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert reexport(sweep_dir, out_dir=again) == again  # an earlier export is replaced
    # but not one another sweep wrote (its summary, report and registered model describe it)
    theirs = tmp / "v1-best"
    shutil.copytree(again, theirs)
    provenance = json.loads((theirs / "provenance.json").read_text())
    (theirs / "provenance.json").write_text(json.dumps({**provenance, "sweep": "v1"}))
    with pytest.raises(ExportError, match=r"holds sweep 'v1''s export, which exporting sweep "):
        reexport(sweep_dir, out_dir=theirs)
    assert json.loads((theirs / "provenance.json").read_text())["sweep"] == "v1"


def test_reexport_finds_the_checkpoint_of_a_moved_sweep_folder(
    smoke: tuple[Config, SweepOutcome, Path], tmp_path: Path
) -> None:
    """summary.json records checkpoints by absolute path: a sweep folder copied or mounted
    elsewhere said "its checkpoint is gone" while it was there, under the folder's ray/."""
    from automl.export.reexport import ExportError, find_checkpoint, reexport

    _, _, tmp = smoke
    sweep_dir = tmp / "outputs" / "smoke"
    moved = tmp_path / "elsewhere" / "smoke-copy"  # a renamed copy
    shutil.copytree(sweep_dir, moved, ignore=shutil.ignore_patterns("best", "trial-*"))
    summary = json.loads((moved / "summary.json").read_text())
    summary["best_trial"] = None  # first: a sweep that exported nothing names no trial
    (moved / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ExportError, match=r"the sweep has no best trial .*name one with --trial"):
        reexport(moved, out_dir=tmp_path / "export")
    # a copy beside the original: its own checkpoint, not the original's (which its sweep may
    # change or delete), as the copy's resumed sweep would use
    row = next(r for r in summary["trials"] if Path(r.get("checkpoint") or "/-").is_dir())
    found = find_checkpoint(row, moved)
    assert found.is_dir() and found.is_relative_to(moved.resolve())
    assert Path(row["checkpoint"]).is_dir()  # the original's, still there
    text = (sweep_dir / "summary.json").read_text()
    (moved / "summary.json").write_text(text.replace(str(sweep_dir), "/gone/mount/smoke"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(moved)  # `automl-export .` from inside it
        out = reexport(Path("."), out_dir=tmp_path / "export")
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow  # a sweep
def test_a_resumed_sweep_finds_its_checkpoints_in_a_moved_or_copied_folder(
    smoke: tuple[Config, SweepOutcome, Path], tmp_path: Path
) -> None:
    """The sweep's state records checkpoints by absolute path: resumed in a moved folder it
    exported nothing (and deleted the test evaluation); in a copy it read, and could delete,
    the original's checkpoints."""
    from automl.search.sweep import _records_here

    _, outcome, tmp = smoke
    sweep_dir = tmp / "outputs" / "smoke"
    copy = tmp_path / "outputs" / "smoke"
    shutil.copytree(sweep_dir, copy)
    state = json.loads((copy / "sweep_state.json").read_text())
    best = outcome.summary["best_trial"]
    recorded = next(r["checkpoint"] for r in state["records"] if r["trial_id"] == best)
    # a copy: the records name the original's folders, which exist; this sweep's are used
    here = _records_here(copy / "ray", state["records"])
    assert next(r["checkpoint"] for r in here if r["trial_id"] == best) == str(
        copy.resolve() / Path(recorded).relative_to(sweep_dir.resolve())
    )
    # moved: the recorded folders are gone
    text = (copy / "sweep_state.json").read_text()
    (copy / "sweep_state.json").write_text(text.replace(str(sweep_dir), "/gone/mount/smoke"))
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.resume=true")
    moved = run_sweep(replace(conf, tracking=replace(conf.tracking, enabled=False)))
    assert moved.export_dir is not None and (moved.export_dir / "model.safetensors").is_file()
    assert moved.summary["best_trial"] == best and moved.summary["test_accuracy"] is not None
    assert Path(recorded).is_dir()  # the original's checkpoint stays


@pytest.mark.slow  # a sweep
def test_a_finished_sweep_exported_again_under_a_new_mlflow_run_gets_its_trials_there(
    smoke: tuple[Config, SweepOutcome, Path], tmp_path: Path
) -> None:
    """A finished sweep resumed into a store without its run (it ran untracked, or its run
    was deleted) exports again under a new parent run: that run held no trial runs (the
    callback that adds them runs only while trials run), against the README's "a new parent
    run holding every trial so far"."""
    _, outcome, tmp = smoke
    shutil.copytree(tmp / "outputs" / "smoke", tmp_path / "outputs" / "smoke")
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.resume=true")  # a new store
    again = run_sweep(conf)
    assert again.summary["num_trials"] == outcome.summary["num_trials"]
    parents, children = sweep_runs(conf.tracking.uri, "smoke")
    assert len(parents) == 1
    trials = {c.data.tags["automl.trial_id"]: c for c in children}
    assert sorted(trials) == sorted(r["trial_id"] for r in outcome.summary["trials"])
    best = trials[outcome.summary["best_trial"]]
    assert best.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert best.data.metrics["best_val_accuracy"] == outcome.summary["best_value"]


def test_reexport_names_a_broken_sweep_file_or_a_moved_base_model(
    smoke: tuple[Config, SweepOutcome, Path], tmp_path: Path
) -> None:
    from automl.export.reexport import ExportError, reexport
    from automl.model.load import ModelError

    _, _, tmp = smoke
    copy, target = tmp_path / "copy", tmp_path / "export"
    copy.mkdir()
    for name in ("summary.json", "config.json"):
        shutil.copyfile(tmp / "outputs" / "smoke" / name, copy / name)
    text = (copy / "summary.json").read_text()
    (copy / "summary.json").write_text(text[: len(text) // 2])  # a sweep killed while writing
    with pytest.raises(ExportError, match=r"summary\.json: not valid JSON \("):
        reexport(copy, out_dir=target)
    (copy / "summary.json").write_text("{}")
    with pytest.raises(ExportError, match=r"summary\.json: not a sweep's file \(no trials, "):
        reexport(copy, out_dir=target)
    (copy / "summary.json").write_text(text)
    (copy / "sweep_state.json").write_text('{"phase": "finished", ')  # its state file cut short
    with pytest.raises(ConfigError, match=r"sweep_state\.json: not valid JSON \("):
        reexport(copy, out_dir=target)
    (copy / "sweep_state.json").unlink()
    config = json.loads((copy / "config.json").read_text())
    newer = {**config, "train": {**config["train"], "newer_setting": 1}}  # another version's
    (copy / "config.json").write_text(json.dumps(newer))
    with pytest.raises(ExportError, match=r"config\.json: config: train\.newer_setting: the rec"):
        reexport(copy, out_dir=target)
    data = dict(config["data"])  # a relative data file, exported from another folder: said
    config["data"].update(source="csv", path="not-here/train.csv")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"relative to the folder it ran from: run automl-export"):
        reexport(copy, out_dir=target)
    config["data"] = data
    config["model"].update(source="pretrained", name_or_path=str(tmp_path / "moved"))
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"moved: no such folder$"):
        reexport(copy, out_dir=target)
    assert not target.exists()
    # sweep v2 tuned on v1's export: --out there replaced another sweep's export, its own base
    base = tmp_path / "v1" / "best"
    shutil.copytree(tmp / "outputs" / "smoke" / "best", base)
    config["model"]["name_or_path"] = str(base)
    (copy / "config.json").write_text(json.dumps(config))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in base.iterdir())
    with pytest.raises(ExportError, match=r"holds the trial's base model .*name another folder$"):
        reexport(copy, out_dir=base)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in base.iterdir()) == before


def test_reexport_of_another_trial_goes_beside_the_sweeps_export(
    tmp_path: Path, shared_ray: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`automl-export --trial X` of a sweep that kept its checkpoints: X's own weights, beside
    `best/` (without `--out` it replaced `best/`, which the summary, the report and the
    registered model still describe), chosen by hand in its provenance and card."""
    from safetensors.torch import load_file

    from automl.cli.export import main

    shared_ray()
    conf = compose_config(tmp_path, "experiment=smoke", "sweep.name=kept", "sweep.num_samples=2",
                          "sweep.keep_checkpoints=true", "tracking.enabled=false",
                          "pruner=none")  # fmt: skip
    run_sweep(conf)
    sweep_dir = tmp_path / "outputs" / "kept"
    summary = json.loads((sweep_dir / "summary.json").read_text())
    other = next(r for r in summary["trials"] if r["trial_id"] != summary["best_trial"])
    before = (sweep_dir / "best" / "provenance.json").read_text()
    main([str(sweep_dir), "--trial", other["trial_id"]])
    folder = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["exported"])
    assert folder == sweep_dir / f"trial-{other['trial_id']}"
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["trial_id"] == other["trial_id"]
    assert provenance["export_rule"] == {"rule": "manual"}  # not the sweep's rule's choice
    assert provenance["best_value"] == pytest.approx(other["best_value"])
    card = (folder / "README.md").read_text()
    assert "chosen by hand (`automl-export --trial`)" in card
    assert "## Hyperparameters\n" in card and "## Best hyperparameters" not in card
    assert (sweep_dir / "best" / "provenance.json").read_text() == before
    theirs, best = (load_file(str(f / "model.safetensors")) for f in (folder, sweep_dir / "best"))
    assert theirs.keys() == best.keys()
    assert any(not torch.equal(theirs[k], best[k]) for k in theirs)  # another trial's weights
    main([str(sweep_dir)])  # the best trial: the sweep's own export, again
    assert json.loads(capsys.readouterr().out)["exported"] == str(sweep_dir / "best")


def test_reexport_refuses_data_that_changed_since_the_sweep(
    smoke: tuple[Config, SweepOutcome, Path], tmp_path: Path
) -> None:
    """Other rows under the same settings (here: another split seed) would put texts the
    trial trained on into the test split it is scored on, and record a fingerprint the
    model never saw."""
    from automl.export.reexport import ExportError, reexport

    _, _, tmp = smoke
    copy, target = tmp_path / "copy", tmp_path / "export"
    shutil.copytree(tmp / "outputs" / "smoke", copy, ignore=shutil.ignore_patterns("ray", "best"))
    config = json.loads((copy / "config.json").read_text())
    config["data"]["seed"] += 1
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match=r"the data changed since the sweep ran \(content"):
        reexport(copy, out_dir=target)
    assert not target.exists()


def test_a_space_of_one_configuration_is_warned_before_its_trials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every parameter narrowed to one value ran `num_samples` identical trials (the same
    configuration, the same seed) without a word."""
    from automl.search.plan import plan_sweep

    space = tmp_path / "one.yaml"
    one_point = (
        "peft.lora_rank: {type: categorical, choices: [8]}\n"
        "train.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-3}\n"
    )
    space.write_text(one_point)
    conf = compose_config(tmp_path, f"search_space={space}", "sweep.num_samples=4", store=False)
    with caplog.at_level("WARNING", logger="automl"):
        plan_sweep(conf)
    assert "every parameter of one.yaml has one value: the sweep's 4 trials" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="automl"):
        plan_sweep(replace(conf, sweep=replace(conf.sweep, num_samples=1)))  # meant: one trial
    assert "has one value" not in caplog.text
    space.write_text(one_point.replace("high: 1.0e-3", "high: 2.0e-3"))
    with caplog.at_level("WARNING", logger="automl"):
        plan_sweep(conf)
    assert "has one value" not in caplog.text
