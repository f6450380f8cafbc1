"""The smoke sweep's held-out test split and data-quality report: read only after the choice,
recorded in summary.json, the export's card, MLflow and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from automl.config.schema import Config
from automl.data.prepare import prepare_data
from automl.search.sweep import SweepOutcome

pytestmark = pytest.mark.slow


def test_test_accuracy_is_the_exported_models_score_on_the_test_split(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
) -> None:
    from transformers import pipeline

    conf, outcome, tmp = smoke_sweep
    out = tmp / "outputs" / "smoke"
    evaluation = json.loads((out / "test_evaluation.json").read_text())
    data = prepare_data(conf)
    assert data.test is not None and evaluation["num_examples"] == len(data.test) > 0
    # recomputed independently, text by text through the exported folder's pipeline
    clf = pipeline("text-classification", model=str(outcome.export_dir), truncation=True)
    predicted = [p["label"] for p in clf(data.test_texts, batch_size=1)]
    truth = [data.label_names[i] for i in data.test.labels]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert evaluation["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] == evaluation["accuracy"]
    assert summary["test_f1"] == evaluation["macro_f1"]
    assert (out / "confusion_matrix.png").is_file()
    card = (outcome.export_dir / "README.md").read_text()  # type: ignore[operator]
    assert f"accuracy **{evaluation['accuracy']:.4f}**" in card
    # which texts it trained on travels with it (a sweep fine-tuning it again reads them)
    from automl.export.trained_texts import base_trained_texts, text_key

    assert outcome.export_dir is not None
    trained = base_trained_texts(str(outcome.export_dir))
    assert trained.complete and trained.keys == {text_key(t) for t in data.task.train.texts}  # type: ignore[union-attr]


def test_data_quality_and_test_scores_reach_mlflow_and_the_report(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
) -> None:
    _, _, tmp = smoke_sweep
    out = tmp / "outputs" / "smoke"
    quality = json.loads((out / "data_quality.json").read_text())
    assert set(quality["sizes"]) == {"train", "val", "test"}
    assert quality["leakage"]["train->val"]["exact"] > 0  # the corpus repeats utterances
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    assert experiment is not None
    parent = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`automl.role` = 'sweep'"
    )[0]
    metrics = parent.data.metrics
    evaluation = json.loads((out / "test_evaluation.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(evaluation["accuracy"])
    assert metrics["test_f1"] == pytest.approx(evaluation["macro_f1"])
    assert metrics["dq_leakage_val"] == quality["leakage"]["train->val"]["near"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"test_evaluation.json", "confusion_matrix.png", "data_quality.json"} <= artifacts
    page = (out / "report" / "index.html").read_text()
    assert "Held-out test (exported model)" in page and 'src="confusion_matrix.png"' in page
    assert "Data quality" in page and "problem:" in page
    assert (out / "report" / "confusion_matrix.png").is_file()
