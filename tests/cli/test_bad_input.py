"""Every bad input is refused before any compute, with one line naming the culprit, and a refused
sweep writes nothing: no MLflow store, no outputs/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from automl.cli.app import check_overrides, user_errors
from automl.config.resolve import to_config
from automl.config.schema import CONF_DIR, ConfigError, register_configs
from automl.search.sweep import run_sweep

REPO = Path(__file__).resolve().parents[2]


def _csv(tmp: Path, rows: list[tuple[str, str]], header: str = "text,label") -> str:
    path = tmp / "data.csv"
    path.write_text(header + "\n" + "".join(f"{t},{lbl}\n" for t, lbl in rows))
    return str(path)


def _latin1_csv(tmp: Path) -> str:
    """A spreadsheet's export in Windows' encoding: 'café' is the byte 0xe9, not UTF-8."""
    path = tmp / "latin1.csv"
    rows = [(f"café {i}", "a" if i % 2 else "b") for i in range(20)]
    path.write_bytes(("text,label\n" + "".join(f"{t},{lbl}\n" for t, lbl in rows)).encode("cp1252"))
    return str(path)


def _storage_with_sweep(tmp: Path, sweep: str) -> str:
    """A shared Ray storage where sweep `sweep` has run (its Ray Tune experiment folder)."""
    (tmp / "shared" / sweep).mkdir(parents=True)
    (tmp / "shared" / sweep / "tuner.pkl").write_bytes(b"")
    return str(tmp / "shared")


def _jsonl(tmp: Path) -> str:
    path = tmp / "data.jsonl"
    path.write_text('{"text": "hello", "label": "a"}\n{"text": "bye", "label": \n')
    return str(path)


def _users_folder(tmp: Path, sub: str) -> Path:
    """A folder whose subfolder `sub` holds a file of the user's."""
    (tmp / "mine" / sub).mkdir(parents=True)
    (tmp / "mine" / sub / "notes.txt").write_text("mine")
    return tmp / "mine"


def _space(tmp: Path, text: str) -> str:
    path = tmp / "space.yaml"
    path.write_text(text)
    return str(path)


def _under_a_file(tmp: Path) -> str:
    """A path no one can create (not even root): its parent is a regular file."""
    (tmp / "a-file").write_text("")
    return str(tmp / "a-file" / "x")


def _empty_model_dir(tmp: Path) -> str:
    (tmp / "model").mkdir()
    return str(tmp / "model")


# (id, overrides built from tmp, a string the error line must contain)
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("negative-lr", lambda t: ["train.learning_rate=-1"], "train.learning_rate"),
    ("zero-epochs", lambda t: ["train.epochs=0"], "train.epochs"),
    # `+` adds a key Hydra's schema lacks; the typed config would drop it without a word
    ("added-typo", lambda t: ["+train.epoch=5"], "train.epoch: no such setting"),
    ("added-top-level", lambda t: ["+epochs=5"], "epochs: no such setting"),
    ("zero-batch", lambda t: ["train.batch_size=0"], "train.batch_size"),
    ("warmup-above-1", lambda t: ["train.warmup_ratio=1.5"], "train.warmup_ratio"),
    ("negative-rank", lambda t: ["peft.lora_rank=-1"], "peft.lora_rank"),
    ("dropout-1", lambda t: ["peft.lora_dropout=1.0"], "peft.lora_dropout"),
    ("val-fraction-0", lambda t: ["data.val_fraction=0"], "data.val_fraction"),
    ("zero-samples", lambda t: ["sweep.num_samples=0"], "sweep.num_samples"),
    ("zero-concurrency", lambda t: ["sweep.max_concurrent=0"], "sweep.max_concurrent"),
    ("unknown-metric", lambda t: ["sweep.metric=accuracy"], "sweep.metric"),
    ("unknown-sampler", lambda t: ["sampler.name=bogus"], "sampler.name"),
    ("unknown-pruner", lambda t: ["pruner.name=bogus"], "pruner.name"),
    ("gpu-share-1.5", lambda t: ["resources.gpus_per_trial=1.5"], "resources.gpus_per_trial"),
    ("zero-cpus", lambda t: ["resources.cpus_per_trial=0"], "resources.cpus_per_trial"),
    ("short-max-length", lambda t: ["model.max_length=4"], "model.max_length"),
    ("tracking-scheme", lambda t: ["tracking.uri=ftp://host/store"], "tracking.uri"),
    ("tracking-unreachable", lambda t: ["tracking.uri=http://127.0.0.1:9"], "tracking.uri"),
    (
        "tracking-sqlite-uncreatable",
        lambda t: [f"tracking.uri=sqlite:///{_under_a_file(t)}/mlflow.db"],
        "tracking.uri",
    ),
    (
        "tracking-file-uncreatable",
        lambda t: [f"tracking.uri=file://{_under_a_file(t)}/mlruns"],
        "tracking.uri",
    ),
    ("tracking-file-store", lambda t: [f"tracking.uri=file://{t}/mlruns"], "tracking.uri"),
    (
        "tracking-db-unreachable",
        lambda t: ["tracking.uri=postgresql://u:secret@127.0.0.1:9/mlflow"],
        "tracking.uri",
    ),
    ("no-such-space", lambda t: ["search_space=nonexistent"], "nonexistent"),
    (
        "space-low-above-high",
        lambda t: [
            "search_space="
            + _space(t, "train.learning_rate: {type: float, low: 0.1, high: 0.01}\n")
        ],
        "train.learning_rate",
    ),
    (
        "space-unknown-key",
        lambda t: ["search_space=" + _space(t, "train.lr: {type: float, low: 0.01, high: 0.1}\n")],
        "train.lr",
    ),
    (
        "space-value-the-config-refuses",
        lambda t: [
            "search_space=" + _space(t, "train.warmup_ratio: {type: float, low: 0.0, high: 1.5}\n")
        ],
        "train.warmup_ratio: 1.5 would fail",
    ),
    ("space-depth-beyond-blocks", lambda t: ["search_space=quick"], "peft.frozen_layers"),
    (
        "output-dir-under-a-file",
        lambda t: [f"paths.output_dir={_under_a_file(t)}"],
        "paths.output_dir: cannot create",
    ),
    # refused by the kernel even to root, whom `os.access` tells yes
    (
        "output-dir-in-proc",
        lambda t: ["paths.output_dir=/proc/automl-out"],
        "/proc is not writable",
    ),
    (
        "tracking-sqlite-in-proc",
        lambda t: ["tracking.uri=sqlite:////proc/automl/mlflow.db"],
        "tracking.uri: sqlite:////proc/automl/mlflow.db: cannot create",
    ),
    (
        "output-dir-best-is-the-users",
        lambda t: [f"paths.output_dir={_users_folder(t, 'smoke/best')}"],
        "is not an exported model",
    ),
    (
        "output-dir-is-the-users",
        lambda t: [f"paths.output_dir={_users_folder(t, 'smoke')}"],
        "is not a sweep's folder",
    ),
    (
        "storage-holds-the-users",
        lambda t: [f"paths.storage={_users_folder(t, 'smoke')}"],
        "Ray Tune did not write",
    ),
    (  # Ray's folder outputs/smoke would be the sweep's own: a fresh start deleted it
        "storage-is-the-output-folder",
        lambda t: [f"paths.storage={t / 'work' / 'outputs'}"],
        "would hold the sweep's own folder",
    ),
    (
        "storage-under-a-file",
        lambda t: [f"paths.storage={_under_a_file(t)}"],
        "paths.storage: cannot create",
    ),
    (  # the smoke space samples LoRA ranks: every LoRA trial would fail on it
        "lora-target-not-in-the-model",
        lambda t: ["peft.target_modules=[query,q_lin,attention]"],
        "peft.target_modules: q_lin, attention: no such linear layer in tiny-bert (its blocks' "
        "linear layers: dense, key, query, value)",
    ),
    (  # the smoke space freezes 0..2 blocks: peft then adapts only layers inside blocks
        "lora-target-outside-the-blocks",
        lambda t: ["peft.target_modules=[query,pooler.dense]"],
        "peft.target_modules: pooler.dense: outside the transformer blocks",
    ),
    (
        "space-model-missing",
        lambda t: [
            "search_space="
            + _space(t, "model: {type: categorical, choices: [tiny_bert, ./nope]}\n")
        ],
        "./nope",
    ),
    (
        "missing-csv",
        lambda t: ["data=csv", "data.path=/nonexistent/data.csv"],
        "/nonexistent/data.csv",
    ),
    (
        "missing-column",
        lambda t: ["data=csv", "data.path=" + _csv(t, [("a", "x"), ("b", "y")], "body,label")],
        "'text'",
    ),
    (
        "single-class",
        lambda t: ["data=csv", "data.path=" + _csv(t, [(f"t{i}", "x") for i in range(10)])],
        "only one class",
    ),
    (
        "empty-text",
        lambda t: ["data=csv", "data.path=" + _csv(t, [("a", "x"), (" ", "y"), ("c", "y")])],
        "line 3",  # the header is line 1
    ),
    (
        "too-few-to-split",
        lambda t: ["data=csv", "data.path=" + _csv(t, [("a", "x"), ("b", "y")])],
        "too few examples",
    ),
    ("bad-jsonl", lambda t: ["data=jsonl", "data.path=" + _jsonl(t)], "line 2"),
    ("csv-not-utf8", lambda t: ["data=csv", "data.path=" + _latin1_csv(t)], "not UTF-8 text"),
    ("csv-path-left-out", lambda t: ["data=csv"], "config: data.path: is required"),
    ("cuda-without-a-gpu-share", lambda t: ["train.device=cuda"], "trials get no GPU"),
    (
        "name-of-another-sweeps-round",
        lambda t: [f"paths.storage={_storage_with_sweep(t, 'smoke')}", "sweep.name=smoke-r1"],
        "sweep.name: 'smoke-r1' is also the Ray experiment of round 1 of sweep 'smoke'",
    ),
    ("val-plus-test-fraction-1", lambda t: ["data.test_fraction=0.8"], "data.test_fraction"),
    # the packaged corpus repeats utterances across splits: leakage, refused under `fail`
    ("data-quality-fail", lambda t: ["data.quality=fail"], "texts also in train"),
    (
        "missing-model-dir",
        lambda t: ["model=hf", "model.name_or_path=/nonexistent/model"],
        "/nonexistent/model",
    ),
    (
        "model-dir-no-config",
        lambda t: ["model=hf", "model.name_or_path=" + _empty_model_dir(t)],
        "config.json",
    ),
    ("no-such-model-package", lambda t: ["model.package=not_a_package"], "model.package"),
    ("depth-beyond-blocks", lambda t: ["peft.frozen_layers=5"], "peft.frozen_layers"),
]


def _compose(tmp: Path, overrides: list[str]) -> object:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(
            "config",
            overrides=[
                "experiment=smoke",
                f"paths.output_dir={tmp / 'outputs'}",
                f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
                "ray.num_cpus=2",
                *overrides,
            ],
        )


@pytest.mark.parametrize("build, culprit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_compute(
    tmp_path: Path, build: Callable[[Path], list[str]], culprit: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    cfg = _compose(work, build(tmp_path))
    with pytest.raises(user_errors()) as caught:
        run_sweep(to_config(cfg))  # type: ignore[arg-type]
    message = str(caught.value)
    assert culprit in message
    assert "\n" not in message.strip()
    assert not (work / "outputs").exists()
    assert not (work / "mlflow.db").exists()
    assert all(f.read_text() == "mine" for f in tmp_path.rglob("notes.txt"))  # the user's, kept


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU to share")
def test_cuda_on_a_local_cluster_without_a_gpu_is_refused_before_the_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import automl.search.sweep

    def no_data(*args: object) -> None:
        raise AssertionError("the data was read")

    monkeypatch.setattr(automl.search.sweep, "prepare_data_for_models", no_data)
    cfg = _compose(tmp_path, ["train.device=cuda", "resources.gpus_per_trial=auto"])
    with pytest.raises(ConfigError, match=r"^config: train\.device: cuda, but no CUDA device"):
        run_sweep(to_config(cfg))  # type: ignore[arg-type]
    assert not (tmp_path / "outputs").exists()


def test_the_sweeps_own_export_as_its_base_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fine-tuning `outputs/smoke/best` again as sweep `smoke`: its export replaced its own
    base model, and a re-export then rebuilt it on the new weights."""
    from transformers import BertConfig, BertForSequenceClassification

    import automl.search.sweep

    def no_data(*args: object) -> None:
        raise AssertionError("the data was read")

    monkeypatch.setattr(automl.search.sweep, "prepare_data_for_models", no_data)

    export = tmp_path / "outputs" / "smoke" / "best"
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(export)
    (export / "provenance.json").write_text('{"sweep": "smoke", "trial_id": "t1"}')
    (export.parent / "data_quality.json").write_text("{}")  # an earlier sweep's folder
    before = sorted(p.name for p in export.iterdir())
    cfg = _compose(tmp_path, ["model=hf", f"model.name_or_path={export}"])
    with pytest.raises(ConfigError, match=r"^config: model\.name_or_path: .* is inside this swe"):
        run_sweep(to_config(cfg))  # type: ignore[arg-type]
    assert sorted(p.name for p in export.iterdir()) == before
    assert sorted(p.name for p in export.parent.iterdir()) == ["best", "data_quality.json"]


@pytest.mark.parametrize("ask", ["resources.cpus_per_trial=64", "resources.gpus_per_trial=1"])
def test_a_trial_this_machine_cannot_hold_is_refused_before_the_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ask: str
) -> None:
    """Refused by init_ray, after the data was read and tokenized and Ray had started."""
    import ray

    import automl.search.sweep

    if ask.startswith("resources.gpus") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU to share")
    if ray.is_initialized():  # an earlier test's in this process: the check is for a process
        ray.shutdown()  # without one (with one, init_ray checks; shared_ray starts it again)

    def no_data(*args: object) -> None:
        raise AssertionError("the data was read")

    monkeypatch.setattr(automl.search.sweep, "prepare_data_for_models", no_data)
    cfg = _compose(tmp_path, [ask])
    key = ask.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^config: {key}: a trial asks for .* this machine has"):
        run_sweep(to_config(cfg))  # type: ignore[arg-type]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.epoch=3", "epoch"),
        ("train.epochs=abc", "train.epochs"),
        ("sampler=bogus", "sampler"),
    ],
)
def test_bad_override_fails_at_composition(tmp_path: Path, override: str, key: str) -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)) as caught:
        _compose(tmp_path, [override])
    assert key in str(caught.value)
    with pytest.raises(ConfigError) as one_line:
        check_overrides([override])  # what the entry points run before Hydra's own main
    message = str(one_line.value)
    assert message.startswith("config: ") and key in message and "\n" not in message


def test_a_missing_option_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides(["sampler=bogus"])
    assert "sampler/bogus" in str(caught.value)
    assert "tpe" in str(caught.value).split("Available options in 'sampler'")[1]


@pytest.mark.parametrize(
    "overrides, culprit",
    [
        (["-m", "sweep.nope=1,2"], "sweep.nope"),
        (["-m", "train.seed=range(1,5,0)"], "range() arg 3 must not be zero"),  # a traceback
        # no job at all, and exit 0: as if the multirun had run
        (["-m", "train.seed=range(1,5,-1)"], "train.seed=range(1,5,-1) sweeps no value"),
        (["-m", "experiment=smoke,smok"], "experiment/smok"),
        (["--multirun", "sampler=tpe", "train.epochs=2,abc"], "train.epochs=abc"),
        (["-m", "experiment=smoke", "sweep.num_samples=3,0"], "sweep.num_samples: must be >= 1"),
        # each value is fine with the others' first values; only the last job has 0.6 + 0.5
        (["-m", "data.val_fraction=0.3,0.6", "data.test_fraction=0.1,0.5"], "0.6 + 0.5"),
        # a model named without model=hf, the group not swept: no job reads it
        (["-m", "model.name_or_path=org/m", "sweep.name=a,b"], "add model=hf to fine-tune org/m"),
        # the group swept, but over options none of which reads it
        (["-m", "model=minilm,tiny_bert", "model.name_or_path=org/m"], "add model=hf"),
        # a second setting no job reads, behind one that a job does read
        (
            ["-m", "data=chatterbot_topics,csv", "data.path=my.csv", "data.hf_name=org/d"],
            "data.hf_name: is not read when data.source=",
        ),
    ],
)
def test_every_value_of_a_multirun_is_checked(overrides: list[str], culprit: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides(overrides)
    message = str(caught.value)
    assert message.startswith("config: ") and culprit in message and "\n" not in message


@pytest.mark.parametrize(
    "overrides, culprit",
    [
        # a Hydra flag switched every check off: Hydra's own report (several lines, exit 1),
        # and a multirun ran its first job in full before a later job's bad value failed
        (["-m", "-cn", "config", "train.epochs=2,abc"], "train.epochs=abc"),
        (["--config-name=config", "sweep.num_samples=abc"], "sweep.num_samples=abc"),
        (["--cfg", "job", "swep.name=x"], "Key 'swep' not in 'Config'"),
        (["-cn", "nonexistent"], "Cannot find primary config 'nonexistent'"),
        (["-cd", "/nonexistent", "train.epochs=2"], "--config-dir: /nonexistent: no such folder"),
        (["-cp", "/nonexistent"], "--config-path: /nonexistent: no such folder"),
        # Hydra reads a relative one as a package: "Primary config module 'automl.cli.conf' not
        # found", three lines, exit 1
        (["-cp", "conf", "train.epochs=2"], "--config-path: conf: give an absolute folder"),
        (["-cp", "../../conf", "--cfg", "job"], "relative one as a Python package): -cp /"),
        (["--config-path=~/conf"], f"-cp {Path.home() / 'conf'}"),
        (["--config-path=~nosuchuser/conf"], "give an absolute folder"),  # a RuntimeError
        (["-cp", "file://conf"], "--config-path: file://conf: give an absolute folder"),
        # Hydra's other way to say -m: checked as a single run, it was "Ambiguous value"
        (["hydra.mode=MULTIRUN", "data.val_fraction=0.3,0.6", "data.test_fraction=0.5"],
         "0.6 + 0.5"),
        # a traceback (FileNotFoundError) once Hydra tried to write its record there
        (["-m", "sweep.num_samples=2,3", "hydra.sweep.dir=/proc/nope"],
         "hydra.sweep.dir: cannot create /proc/nope"),
        # Hydra's grammar names only its lexer: "LexerNoViableAltException: sweep.name=ñandú"
        (["sweep.name=ñandú"], "quote a value that holds spaces or characters beyond ASCII"),
        (["sweep.num_samples = 3"], "no spaces around `=`"),
        # the shell took the quotes of `data.path='~/data/train.csv'` (the README's form once)
        (["data.path=~/data/train.csv"], "Hydra's quotes inside the shell's: \"data.path='~/data"),
        (["-m", "data.path=~/a.csv,~/b.csv"], "\"data.path='~/a.csv','~/b.csv'\""),
        (["-m", "data.path=a.csv,~/b.csv"], "\"data.path=a.csv,'~/b.csv'\""),
        (["++hydra.mode=MULTIRUN", "data.val_fraction=0.3,0.6", "data.test_fraction=0.5"],
         "0.6 + 0.5"),
        # Hydra: "Ambiguous value for argument", which does not say to add -m
        (["train.epochs=2,3"], "train.epochs=2,3: several values make a multirun: add -m"),
    ],
)  # fmt: skip
def test_hydras_flags_and_forms_are_checked_too(overrides: list[str], culprit: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides(overrides)
    message = str(caught.value)
    assert message.startswith("config: ") and culprit in message and "\n" not in message


def test_a_config_that_is_a_multirun_has_its_grid_checked(tmp_path: Path) -> None:
    """`hydra.mode: MULTIRUN` in a config of the user's (-cd/-cn): its command-line grid was
    composed as one run and refused as "Ambiguous value"."""
    (tmp_path / "mr.yaml").write_text(
        "defaults:\n  - config\n  - _self_\nhydra:\n  mode: MULTIRUN\n"
    )
    check_overrides(["-cd", str(tmp_path), "-cn", "mr", "train.epochs=2,3"])
    with pytest.raises(ConfigError, match=r"0\.6 \+ 0\.5"):
        check_overrides(["-cd", str(tmp_path), "-cn", "mr", "data.val_fraction=0.3,0.6",
                         "data.test_fraction=0.5"])  # fmt: skip


def test_a_config_dir_adds_its_options(tmp_path: Path) -> None:
    """-cd: a folder of the user's configs beside conf/ (a model of their own)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text(
        "source: tiny\ntiny_arch: bert\ntiny_layers: 1\nmax_length: 32\n"
    )
    check_overrides(["-m", "-cd", str(tmp_path), "model=mine", "train.epochs=2,3"])
    with pytest.raises(ConfigError, match="model/mine"):
        check_overrides(["-m", "model=mine", "train.epochs=2,3"])  # without it: no such option


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["--version"],
        ["--vers"],  # argparse's abbreviation: printed once, by Hydra
        ["--help"],
        ["--cfg", "job", "experiment=smoke"],
        ["-cn", "config", "-m", "train.epochs=2,3"],
        ["train.epochs=2", "sampler=random"],
        ["hydra.run.dir=somewhere"],
        ["--cfg", "job"],
        ["-m", "train.epochs=2,3", "sampler=tpe,random"],
        ["-m", "sampler=glob(t*)"],  # expanded by Hydra alone
        # the minilm job carries a setting only the hf job reads: the grid sweeps the group
        ["-m", "model=minilm,hf", "model.name_or_path=org/m"],
        ["-m", "data=chatterbot_topics,csv", "data.path=my.csv"],
    ],
)
def test_good_overrides_and_hydra_flags_pass_the_check(
    overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the csv job's file, read before the first job runs
    rows = "".join(f"text {i} about {'ab'[i % 2]},{'ab'[i % 2]}\n" for i in range(40))
    (tmp_path / "my.csv").write_text("text,label\n" + rows)
    check_overrides(overrides)


def test_a_multirun_is_checked_job_by_job_up_to_a_size() -> None:
    from automl.cli.app import GRID_CHECKED_UP_TO, multirun_jobs

    jobs = multirun_jobs(["a=1,2", "b=x", "c=3,4,5"])
    assert jobs is not None and len(jobs) == 6 and ["a=2", "b=x", "c=5"] in jobs
    wide = [f"k{i}=" + ",".join(str(v) for v in range(5)) for i in range(3)]  # 125 jobs
    assert 5**3 > GRID_CHECKED_UP_TO
    jobs = multirun_jobs(wide)
    assert jobs is not None and len(jobs) == 1 + 3 * 4  # each value once
    assert {job[1] for job in jobs} == {f"k1={v}" for v in range(5)}


def test_entry_point_prints_one_line_for_a_bad_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from automl.cli.sweep import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["automl-sweep", "train.epochs=abc"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: config: ")
    assert "train.epochs=abc" in err and "Integer" in err
    assert list(tmp_path.iterdir()) == []  # Hydra never ran: no outputs/ folder


def test_an_install_without_the_config_folder_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain `pip install .` copies no conf/: Hydra said only "Primary config directory not
    found"."""
    from automl.cli.sweep import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("automl.cli.app.CONF_DIR", tmp_path / "site-packages" / "conf")
    monkeypatch.setattr(sys, "argv", ["automl-sweep", "experiment=smoke"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {tmp_path / 'site-packages' / 'conf'}: no " in err
    assert "pip install -e ." in err and list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "automl.cli.sweep", "experiment=smoke", "search_space=nonexistent"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and "nonexistent" in lines[-1]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_an_errors_line_is_masked_before_it_is_cut() -> None:
    """Cut at 300 characters first, a URI's password cut before its "@" escaped the mask."""
    from automl.provenance import masked_line

    err = RuntimeError("x" * 270 + " postgresql://alice:s3cr3tpassword@db.example/mlflow")
    line = masked_line(err)
    assert "s3cr3t" not in line and len(line) == 300 and line.startswith("x" * 270)


def test_secrets_in_the_tracking_uri_are_redacted() -> None:
    from automl.provenance import redact

    text = json.dumps({"uri": "postgresql://alice:s3cret@db.example/mlflow"})
    assert "s3cret" not in redact(text) and "alice:***@" in redact(text)
    # forms SQLAlchemy and MLflow accept too: a password with "/", a token alone, a query secret
    assert redact("postgresql://bob:pa/ss@host/db") == "postgresql://bob:***@host/db"
    assert redact("https://t0ken@mlflow.example/") == "https://***@mlflow.example/"
    assert redact("mysql://h/db?user=u&password=s3&x=1") == "mysql://h/db?user=u&password=***&x=1"
    assert redact("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"  # nothing to hide
    assert redact("http://host:5000/path") == "http://host:5000/path"
    assert redact("mysql://u:pa'ss@h/db") == "mysql://u:***@h/db"  # quotes in a password
    # SQLAlchemy reads a database password up to its first "@", whatever it holds
    for secret in ("pa?ss", "pa#ss", "1234/x"):
        uri = f"postgresql+psycopg2://alice:{secret}@db.example/mlflow"
        assert redact(uri) == "postgresql+psycopg2://alice:***@db.example/mlflow"
    # a "'" or an "@" in a password, an empty user, Azure's user@server, a scheme's case
    for uri, hidden in (
        ("https://u:s3'cret@h/x", "https://u:***@h/x"),
        ("https://user:p@ss@host/x", "https://user:***@host/x"),
        # an e-mail address as the user name (requests splits at the last "@"): only the
        # part before its "@" was masked, the password left whole
        (
            "https://me@corp.com:s3cret@mlflow.corp.com/",
            "https://***@corp.com:***@mlflow.corp.com/",
        ),
        ("https://:s3cret@h/x", "https://:***@h/x"),
        ("postgresql://u@srv:s3cret@h/db", "postgresql://***@srv:***@h/db"),  # user hidden too
        ("PostgreSQL://u:pa/ss@h/db", "PostgreSQL://u:***@h/db"),
    ):
        assert redact(uri) == hidden
    assert (
        redact("mail bob@example.com; s3://bucket/key") == "mail bob@example.com; s3://bucket/key"
    )
    compact = '{"a":"http://host:5000","b":"u@h"}'  # JSON: a port, then an address elsewhere
    assert redact(compact) == compact
    # a port and a later "@" (in a fragment or query) are no password
    link = "http://mlflow.corp:5000/#/exp?owner=ann@corp.com"
    assert redact(link) == link
    # JSON escapes a quote in a password: redacted value by value before it is dumped
    from automl.provenance import redact_values

    dumped = json.dumps(redact_values({"uri": 'mysql://u:pa"ss@h/db', "n": [1, "x"]}))
    assert "pa" not in dumped and json.loads(dumped) == {"uri": "mysql://u:***@h/db", "n": [1, "x"]}
