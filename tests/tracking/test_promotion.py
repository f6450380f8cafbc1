"""Which version holds `@champion` when several sweeps register into one model: the best on
the same data by the sweep's own rule (validation), the newest where the data differ."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import mlflow_uri
from mlflow.tracking import MlflowClient

from automl.config.schema import Config
from automl.search.sweep import SweepOutcome
from automl.tracking.promotion import (
    DATA,
    LABELS,
    METRIC,
    MODE,
    ROWS,
    SWEEP,
    TRAIN_EXAMPLES,
    VALIDATION,
    VALUE,
    score_tags,
    takes_alias,
)


def _tags(value: float, mode: str = "max", data: str = "abc", metric: str = "val_f1") -> dict:
    return {METRIC: metric, MODE: mode, VALUE: repr(value), DATA: data, SWEEP: "topics"}


def test_scores_compare_only_on_the_same_data_and_metric() -> None:
    assert takes_alias(_tags(0.5), None) == (True, "no version held it")
    assert takes_alias(_tags(0.8), _tags(0.7))[0]
    assert takes_alias(_tags(0.7), _tags(0.7)) == (
        True, "val_f1 0.7000 ties its 0.7000 on the same data",
    )  # fmt: skip
    # a version registered again (a resumed export) keeps out of a tie and of scores that do
    # not compare: the alias stays on the version registered after it
    assert not takes_alias(_tags(0.7), _tags(0.7), newer=False)[0]
    assert not takes_alias(_tags(0.1, data="new"), _tags(0.9), newer=False)[0]
    assert not takes_alias(_tags(0.7), {SWEEP: "topics"}, newer=False)[0]
    assert takes_alias(_tags(0.8), _tags(0.7), newer=False)[0]  # better: it takes it back
    keep, why = takes_alias(_tags(0.6), _tags(0.7))
    assert not keep and why == "val_f1 0.6000 is worse than its 0.7000 on the same data"
    assert takes_alias(_tags(0.2, mode="min"), _tags(0.3, mode="min")) == (
        True, "val_f1 0.2000 is below its 0.3000 on the same data",
    )  # fmt: skip
    assert not takes_alias(_tags(0.4, mode="min"), _tags(0.3, mode="min"))[0]
    # not comparable: the newer version takes the alias, and the reason says why
    assert takes_alias(_tags(0.1, data="new"), _tags(0.9)) == (
        True, "the version holding it was trained on other data",
    )  # fmt: skip
    assert takes_alias(_tags(0.1), {SWEEP: "topics"})[0]  # a sweep's, from before the scores
    assert takes_alias(_tags(0.1), {**_tags(0.9), VALUE: "n/a"})[0]  # a tag edited by hand
    assert takes_alias({}, _tags(0.9)) == (True, "the new version has no score to compare")


def test_a_version_trained_on_fewer_examples_of_other_data_leaves_the_alias() -> None:
    """A quick check on a subsample under the same sweep name (`data.max_examples=300`), or a
    resumed sweep on the older data registered after the newer data's, took the alias."""
    champion = {**_tags(0.9, data="full"), TRAIN_EXAMPLES: "2101"}
    keep, why = takes_alias({**_tags(0.4, data="sub"), TRAIN_EXAMPLES: "240"}, champion)
    assert not keep and why.startswith("it was trained on other data with fewer examples (240 ")
    more = {**_tags(0.8, data="grown"), TRAIN_EXAMPLES: "2500"}
    assert takes_alias(more, champion) == (True, "the version holding it was trained on other data")
    assert takes_alias(_tags(0.4, data="sub"), champion)[0]  # no count: registered before them
    fingerprint = {"sha256": "f", "counts": {"train": 12, "val": 3}}
    provenance = {"metric": "val_f1", "best_value": 0.5, "data_fingerprint": fingerprint}
    assert score_tags(provenance, "max")[TRAIN_EXAMPLES] == "12"


def test_the_same_rows_split_another_way_compare_by_score() -> None:
    """A re-run of the same file with another `data.seed` (or `val_fraction`) counted as other
    data: the newer version took the alias however it scored."""
    champion = {**_tags(0.9, data="seed0"), ROWS: "rows", TRAIN_EXAMPLES: "2101"}
    reseeded = {**_tags(0.8, data="seed1"), ROWS: "rows", TRAIN_EXAMPLES: "2101"}
    keep, why = takes_alias(reseeded, champion)
    assert (
        not keep
        and why == "val_f1 0.8000 is worse than its 0.9000 on another split of the same rows"
    )
    assert takes_alias({**reseeded, VALUE: "0.95"}, champion)[0]
    assert takes_alias({**reseeded, ROWS: "more rows"}, champion) == (
        True, "the version holding it was trained on other data",
    )  # fmt: skip
    assert takes_alias({**reseeded, ROWS: ""}, {**champion, ROWS: ""})[0]  # untagged: as before
    fingerprint = {"sha256": "f", "rows_sha256": "r", "counts": {"train": 12}}
    tags = score_tags(
        {"metric": "val_f1", "best_value": 0.5, "data_fingerprint": fingerprint}, "max"
    )
    assert tags[ROWS] == "r"


def test_a_version_predicting_other_classes_never_takes_the_alias() -> None:
    """Another task registered under the same name (`tracking.registered_model` shared, or a
    sweep name reused) took the alias as "other data": its callers got other classes."""
    provenance = {"metric": "val_f1", "best_value": 0.5, "data_fingerprint": {"sha256": "f"}}
    topics = score_tags(provenance, "max", ["greetings", "science"])[LABELS]
    assert topics == score_tags(provenance, "max", ["science", "greetings"])[LABELS]  # any order
    assert topics.startswith("2 classes, sha256 ")  # a digest: any number of classes fits
    champion = {**_tags(0.7, data="topics"), LABELS: topics}
    other = {**_tags(0.9, data="intents"),
             LABELS: score_tags(provenance, "max", ["book", "cancel"])[LABELS]}  # fmt: skip
    keep, why = takes_alias(other, champion)
    assert not keep and why.startswith("it predicts other classes than the version holding it")
    assert takes_alias({**other, LABELS: champion[LABELS]}, champion)[0]  # same classes, newer
    assert takes_alias(_tags(0.9, data="intents"), champion)[0]  # untagged: registered before
    many = [f"class {i:04d}" for i in range(600)]  # past a tag's 5,000 characters as a list
    assert (
        score_tags(provenance, "max", many)[LABELS]
        != score_tags(provenance, "max", [*many[:-1], "class 9999"])[LABELS]
    )


def test_no_version_takes_the_alias_from_one_no_sweep_registered_or_across_classes() -> None:
    """A version registered by hand (or by another tool) holding @champion lost it to the next
    sweep of the name, and a version without a score took it from another task's: the class
    check came after the score checks, and a version without a score had no class tag."""
    by_hand = {"task": "text-classification", "owner": "other-team"}
    for new in (_tags(0.9), {}, score_tags({}, "max", ["a", "b"])):
        keep, why = takes_alias(new, by_hand)
        assert not keep and why.startswith("no sweep registered the version holding it"), new
    unscored = score_tags({"metric": "val_f1", "best_value": None}, "max", ["book", "cancel"])
    assert set(unscored) == {LABELS}
    topics = {SWEEP: "topics", **score_tags({}, "max", ["greetings", "science"])}
    keep, why = takes_alias(unscored, topics)
    assert not keep and why.startswith("it predicts other classes")
    keep, why = takes_alias(score_tags({}, "max", ["greetings", "science"]), topics)
    assert keep and why == "the new version has no score to compare"


def test_an_export_without_a_trial_has_no_key_and_is_always_registered() -> None:
    from automl.tracking.registry import export_key

    provenance = {"trial_id": "abc", "best_value": 0.75, "data_fingerprint": {"sha256": "f"}}
    assert export_key(provenance) == export_key(dict(provenance)) == "abc:0.75:f"
    assert export_key({**provenance, "best_value": 0.8}) != export_key(provenance)
    assert export_key({}) is None  # an unreadable provenance.json: nothing to match


def test_a_version_selected_by_another_metric_is_judged_by_the_champions() -> None:
    """`-m sweep.metric=val_f1,val_loss` on one registered model: the version selected by
    val_loss took the alias from one selected by val_f1 whatever their F1, as the newer."""
    champion = _tags(0.80)  # val_f1 max
    by_loss = {**_tags(0.95, mode="min", metric="val_loss"), VALIDATION + "val_f1": "0.7"}
    assert takes_alias(by_loss, champion) == (
        False, "val_f1 0.7000 is worse than its 0.8000 on the same data",
    )  # fmt: skip
    better = {**by_loss, VALIDATION + "val_f1": "0.85"}
    assert takes_alias(better, champion) == (
        True, "val_f1 0.8500 is above its 0.8000 on the same data",
    )  # fmt: skip
    # no score of the champion's metric (registered before they were tagged): left alone
    keep, why = takes_alias(_tags(0.1, metric="val_accuracy"), champion)
    assert not keep and why.startswith("the version holding it was selected by max val_f1")


def test_score_tags_come_from_the_provenance() -> None:
    provenance = {"metric": "val_accuracy", "best_value": 0.75, "data_fingerprint": {"sha256": "f"}}
    assert {SWEEP: "topics", **score_tags(provenance, "max")} == _tags(
        0.75, data="f", metric="val_accuracy"
    )
    assert score_tags({**provenance, "best_value": None}, "max") == {}
    assert score_tags({**provenance, "best_value": float("nan")}, "max") == {}
    assert score_tags({**provenance, "data_fingerprint": {}}, "max") == {}
    scores = {"val_accuracy": 0.75, "val_f1": 0.5, "val_loss": float("nan")}
    tagged = score_tags({**provenance, "best_scores": scores}, "max")
    assert tagged[VALIDATION + "val_f1"] == "0.5" and VALIDATION + "val_loss" not in tagged


@pytest.mark.slow
def test_champion_follows_the_best_version_not_the_last(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from automl.tracking.registry import register_export
    from automl.tracking.runs import SweepTracker

    conf, outcome, _ = smoke_sweep
    assert outcome.export_dir is not None
    uri = mlflow_uri(tmp_path / "store")  # a store of its own: the smoke sweep's stays as it was
    tracker = SweepTracker(uri, "promotion", "promotion")
    tracker.start_sweep({}, {}, resume=False)
    named = replace(conf, tracking=replace(conf.tracking, registered_model="shared"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def register(value: float, data: str | None = None) -> str:
        folder = tmp_path / f"export-{value}-{data}"
        shutil.copytree(outcome.export_dir, folder)  # type: ignore[arg-type]
        provenance = json.loads((folder / "provenance.json").read_text())
        provenance["best_value"] = value
        if data is not None:  # other rows, not the same rows split another way
            provenance["data_fingerprint"] |= {"sha256": data, "rows_sha256": data}
        (folder / "provenance.json").write_text(json.dumps(provenance))
        return register_export(tracker, named, folder, None)

    def champion() -> str:
        return str(client.get_model_version_by_alias("shared", "champion").version)

    first = register(0.5)
    assert champion() == first
    # the same export again (a resumed sweep): its version, not a copy
    assert register_export(tracker, named, tmp_path / "export-0.5-None", None) == first
    assert len(client.search_model_versions("name = 'shared'")) == 1
    with caplog.at_level(logging.WARNING, logger="automl.tracking.registry"):
        worse = register(0.4)
    assert champion() == first and worse != first
    assert f"@champion stays on version {first}: " in caplog.text
    assert client.get_model_version("shared", worse).tags[VALUE] == "0.4"  # kept, tagged
    better = register(0.6)
    assert champion() == better
    newer_data = register(0.1, data="other data")  # scores not comparable: the newer wins
    assert champion() == newer_data
    # an older version exported again does not take the alias back
    assert register_export(tracker, named, tmp_path / "export-0.6-None", None) == better
    assert champion() == newer_data
    assert len(client.search_model_versions("name = 'shared'")) == 4
    # rolled back by hand; the newer version found again (a resumed sweep) leaves it there
    client.set_registered_model_alias("shared", "champion", first)
    assert register_export(tracker, named, tmp_path / "export-0.1-other data", None) == newer_data
    assert champion() == first
    # a card past the registry's 5,000 characters (a task of many classes): cut at a line
    card = tmp_path / "export-0.7-None" / "README.md"
    many = register(0.7)  # copies the export; its card is then made long and registered again
    long_card = "# Card\n" + "".join(f"| class {i} | 0.5 |\n" for i in range(600))
    card.write_text(long_card)
    provenance = json.loads(card.with_name("provenance.json").read_text())
    provenance["trial_id"] = "another trial"  # a new export, not the version found again
    card.with_name("provenance.json").write_text(json.dumps(provenance))
    cut = client.get_model_version("shared", register_export(tracker, named, card.parent, None))
    assert cut.version != many and len(long_card) > 5000 >= len(cut.description)
    assert long_card.startswith(cut.description.split("\n\n(cut")[0])
    assert cut.description.endswith("best_model/README.md of the run)")
    # the same data, a better score, but other classes (read from the export's config.json)
    held = champion()
    config = json.loads((card.parent / "config.json").read_text())
    config["id2label"] = {k: f"other-{v}" for k, v in config["id2label"].items()}
    (card.parent / "config.json").write_text(json.dumps(config))
    provenance["trial_id"], provenance["best_value"] = "other classes", 0.99
    card.with_name("provenance.json").write_text(json.dumps(provenance))
    relabelled = register_export(tracker, named, card.parent, None)
    assert relabelled != held and champion() == held


def test_a_version_an_older_sweep_registered_counts_as_a_sweeps(tmp_path: Path) -> None:
    """Versions registered before 2026-11-25 carry `automl.sweep` only on their model: one
    holding @champion was read as registered by hand, and no sweep could ever take it."""
    from automl.tracking.registry import _holder_tags
    from automl.tracking.runs import SweepTracker

    uri = mlflow_uri(tmp_path)
    sweep_run = SweepTracker(uri, "exp", "topics").start_sweep({}, {}, resume=False)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    other_run = client.create_run(client.get_experiment_by_name("exp").experiment_id)
    client.create_registered_model("m")
    source = str(tmp_path)
    older = client.create_model_version("m", source, run_id=sweep_run, tags={"task": "x"})
    by_hand = client.create_model_version("m", source, run_id=other_run.info.run_id)
    no_run = client.create_model_version("m", source)
    assert _holder_tags(client, older)[SWEEP] == "topics"
    assert SWEEP not in _holder_tags(client, by_hand)
    assert SWEEP not in _holder_tags(client, no_run)
    assert _holder_tags(client, None) is None
    assert takes_alias(_tags(0.9), _holder_tags(client, older)) == (
        True, "the version holding it has no score to compare"
    )  # fmt: skip


@pytest.mark.slow
def test_a_model_logging_that_fails_leaves_no_pending_logged_model(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The logged model is created before its files are saved: an error or a Ctrl-C between
    left it PENDING in the UI for ever, one more with every retry."""
    import mlflow

    from automl.tracking.registry import register_export
    from automl.tracking.runs import SweepTracker

    conf, outcome, _ = smoke_sweep
    assert outcome.export_dir is not None
    uri = mlflow_uri(tmp_path / "store")
    tracker = SweepTracker(uri, "logging", "logging")
    tracker.start_sweep({}, {}, resume=False)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow.transformers, "save_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        register_export(tracker, conf, outcome.export_dir, None)
    logged = MlflowClient(tracking_uri=uri).search_logged_models([tracker.experiment_id])
    assert [str(m.status) for m in logged] == ["FAILED"]


@pytest.mark.slow  # a sweep
def test_a_registration_that_fails_outside_the_store_leaves_the_sweep_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full temp disk while MLflow saves the pipeline (or a pipeline that will not build)
    failed the sweep after its export and test score were written, with a traceback, and
    every resume the same way; the store's own failures stay one line and resumable."""
    import mlflow
    from conftest import compose_sweep_config

    from automl.cli.sweep import left_undone
    from automl.search.sweep import run_sweep

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.transformers, "save_model", disk_full)
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "sweep.num_samples=1",
                                "train.epochs=1")  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="automl.sweep"):
        outcome = run_sweep(conf)
    assert outcome.export_dir is not None and (outcome.export_dir / "config.json").is_file()
    why = outcome.summary["registration_error"]
    assert "was not registered in MLflow ([Errno 28] No space left on device)" in why
    assert "sweep.resume=true sweep.num_samples=1 to register it" in why and why in caplog.text
    saved = json.loads((tmp_path / "outputs" / "smoke" / "summary.json").read_text())
    assert saved["registration_error"] == why
    page = (tmp_path / "outputs" / "smoke" / "report" / "index.html").read_text()
    assert "was not registered in MLflow" in page
    assert left_undone(outcome) == why  # the command exits 1 on it
    run = MlflowClient(tracking_uri=conf.tracking.uri).get_run(outcome.summary["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["registered"] == "false"
