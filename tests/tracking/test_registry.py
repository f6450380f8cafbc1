"""The registered champion is an MLflow model: pyfunc loads it and `mlflow models serve`
answers HTTP; its description is the model card; the data are the run's dataset inputs."""

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

import pytest
from conftest import mlflow_uri
from mlflow.tracking import MlflowClient

from automl.config.schema import Config
from automl.export.evaluation import predict_folder
from automl.search.sweep import SweepOutcome

pytestmark = pytest.mark.slow

TEXTS = ["My printer is not printing.", "Who wrote Hamlet?"]


def _uri(tmp: Path) -> str:
    return mlflow_uri(tmp)


def test_champion_loads_with_pyfunc_and_predicts_label_names(
    smoke_sweep: tuple[Config, SweepOutcome, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    conf, outcome, tmp = smoke_sweep
    # as a user would point MLflow at the store; the environment is put back after the test,
    # where `mlflow.set_*_uri` would leave a process-wide URI behind for every later test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _uri(tmp))
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", _uri(tmp))
    model = mlflow.pyfunc.load_model("models:/smoke@champion")
    predictions = model.predict(TEXTS)
    labels = list(predictions["label"])
    assert len(labels) == 2 and set(labels) <= set(outcome.summary["label_names"])
    # texts longer than training's max_length are cut there, as training and the test score
    # cut them (the pipeline alone does not truncate: past 512 positions it failed)
    long = [" ".join(["printer paper jam ink"] * 40), "word " * 700]
    assert list(model.predict(long)["label"]) == predict_folder(outcome.export_dir, long)


def test_version_description_is_the_card_and_the_data_are_inputs(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
) -> None:
    _, outcome, tmp = smoke_sweep
    client = MlflowClient(tracking_uri=_uri(tmp), registry_uri=_uri(tmp))
    version = client.get_model_version_by_alias("smoke", "champion")
    card = (outcome.export_dir / "README.md").read_text()  # type: ignore[operator]
    assert version.description == card and "held-out test" in card
    import mlflow

    logged = mlflow.artifacts.download_artifacts(artifact_uri=version.source)
    assert (Path(logged) / "model_card.md").read_text() == card.split("---\n", 2)[2]
    license_file = (Path(logged) / "LICENSE.txt").read_text()
    assert "finetune-automl" in license_file and "could not be found" not in license_file
    weights = next(Path(logged).rglob("model.safetensors"))  # readable by whoever serves it
    mask = os.umask(0)
    os.umask(mask)
    assert weights.stat().st_mode & 0o777 == 0o666 & ~mask
    mlmodel = (Path(logged) / "MLmodel").read_text()  # not this machine's folder of it
    assert "source_model_name: best\n" in mlmodel and str(tmp) not in mlmodel
    assert not any(str(tmp) in str(d.dataset.source) for d in
                   client.get_run(version.run_id).inputs.dataset_inputs)  # fmt: skip
    run = client.get_run(version.run_id)
    assert run.data.tags["automl.role"] == "sweep"
    contexts = {
        tag.value
        for dataset_input in run.inputs.dataset_inputs
        for tag in dataset_input.tags
        if tag.key == "mlflow.data.context"
    }
    assert contexts == {"training", "validation", "test"}
    sizes = {
        d.dataset.name: json.loads(d.dataset.profile)["num_rows"] for d in run.inputs.dataset_inputs
    }
    quality = json.loads((tmp / "outputs" / "smoke" / "data_quality.json").read_text())
    assert sizes == {f"chatterbot-corpus/english ({k})": n for k, n in quality["sizes"].items()}
    # the inputs are the rows the sweep trained on, not a second read of the data
    assert (tmp / "data_loads").read_text() == "1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_champion_is_served_over_http(smoke_sweep: tuple[Config, SweepOutcome, Path]) -> None:
    _, outcome, tmp = smoke_sweep
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs uvicorn from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": _uri(tmp),
        "MLFLOW_REGISTRY_URI": _uri(tmp),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    command = [
        str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", "models:/smoke@champion",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    log = (tmp / f"serve-{port}.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline, answer = time.monotonic() + 180, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = _post(f"http://127.0.0.1:{port}/invocations", {"inputs": TEXTS})
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1)
        assert answer is not None, (tmp / f"serve-{port}.log").read_text()[-2000:]
        predictions = answer["predictions"]
        assert len(predictions) == 2
        assert {p["label"] for p in predictions} <= set(outcome.summary["label_names"])
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def test_the_champion_is_scored_on_new_data_as_its_export_is(
    smoke_sweep: tuple[Config, SweepOutcome, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`automl-evaluate models:/smoke@champion` loads the registered version through MLflow's
    transformers flavor: the same predictions as the exported folder it was registered from,
    and no tracking URI left behind in the process."""
    from automl.cli.evaluate import main

    _, outcome, tmp = smoke_sweep
    labels = outcome.summary["label_names"]
    rows = [{"text": text, "label": labels[i % len(labels)]} for i, text in enumerate(TEXTS * 3)]
    path = tmp_path / "new.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    scores = []
    registered = ["models:/smoke@champion", "--tracking-uri", _uri(tmp)]
    for model in (registered, [str(outcome.export_dir)]):
        with pytest.raises(SystemExit) as done:
            main([model[0], str(path), *model[1:]])
            raise SystemExit(0)
        assert done.value.code in (0, None)
        scores.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert scores[0]["model"] == "models:/smoke@champion" and scores[0]["num_examples"] == 6
    keys = ("accuracy", "macro_f1", "balanced_accuracy")
    assert [scores[0][k] for k in keys] == [scores[1][k] for k in keys]
    assert {k: os.environ.get(k) for k in before} == before
