"""Every shipped config composes and validates; typos, wrong types and bad values name the key."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import shutil
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

import automl.config.values
from automl.config.resolve import as_dict, from_dict, to_config
from automl.config.schema import (
    CONF_DIR,
    Config,
    ConfigError,
    DataConfig,
    PeftConfig,
    register_configs,
)

EXPERIMENTS = sorted(CONF_DIR.glob("experiment/*.yaml"))
GROUPS = ("model", "data", "sampler", "pruner")
GROUP_OPTIONS = sorted(p for group in GROUPS for p in (CONF_DIR / group).glob("*.yaml"))
# Values a group file leaves as `???`, supplied so the option can compose.
REQUIRED = {
    "model/hf": ["model.name_or_path=some-org/some-model"],
    "data/csv": ["data.path=train.csv"],
    "data/jsonl": ["data.path=train.jsonl"],
    "data/hf": ["data.hf_name=ag_news"],
}


def compose_cfg(*overrides: str, conf_dir: Path = CONF_DIR) -> Config:
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    return to_config(cfg)


def _option(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_the_shipped_configs_are_found() -> None:
    assert {p.stem for p in EXPERIMENTS} >= {"default", "smoke", "overfit"}
    assert {_option(p) for p in GROUP_OPTIONS} >= {"model/tiny_bert", "model/minilm", "data/csv"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_composes_and_validates(path: Path) -> None:
    conf = compose_cfg(f"experiment={path.stem}")
    assert isinstance(conf, Config)
    # Each experiment names its sweep after itself, and its first lines say how to run it.
    assert conf.sweep.name == path.stem
    head = path.read_text().splitlines()[:2]
    assert head[0] == "# @package _global_"
    assert f"experiment={path.stem}" in head[1]


@pytest.mark.parametrize("path", GROUP_OPTIONS, ids=_option)
def test_every_group_option_composes_and_validates(path: Path) -> None:
    group, name = path.parent.name, path.stem
    conf = compose_cfg(f"{group}={name}", *REQUIRED.get(_option(path), []))
    section = getattr(conf, group)
    if group in ("sampler", "pruner"):
        assert section.name == name  # the file is named after the choice it makes
    else:
        assert dataclasses.is_dataclass(section)


@pytest.mark.parametrize("option", sorted(REQUIRED))
def test_a_required_value_left_out_names_the_key(option: str) -> None:
    group, name = option.split("/")
    key = REQUIRED[option][0].split("=")[0]
    with pytest.raises(ConfigError) as err:  # a one-line error, not OmegaConf's own
        compose_cfg(f"{group}={name}")
    assert str(err.value).startswith(f"config: {key}: is required when ")


def test_experiment_values_land_in_the_typed_config() -> None:
    conf = compose_cfg("experiment=smoke")
    assert (conf.model.source, conf.model.tiny_layers, conf.model.tiny_hidden) == ("tiny", 2, 32)
    assert (conf.data.source, conf.data.max_examples) == ("chatterbot_topics", 800)
    assert conf.train.learning_rate == pytest.approx(1e-2)
    assert conf.peft.lora_rank == 0
    assert isinstance(conf.train.epochs, int)


def test_the_batch_size_is_left_to_the_data_unless_set() -> None:
    assert compose_cfg().train.batch_size is None  # settled per trial from the training set
    assert compose_cfg("train.batch_size=24").train.batch_size == 24
    assert compose_cfg("experiment=smoke").train.batch_size == 16


def test_command_line_overrides_beat_the_experiment() -> None:
    conf = compose_cfg("experiment=smoke", "train.epochs=1", "data=csv", "data.path=x.csv")
    assert conf.train.epochs == 1
    assert (conf.data.source, conf.data.path) == ("csv", "x.csv")
    assert conf.model.source == "tiny"  # the rest of the experiment still applies


def test_a_typo_in_a_key_fails_at_composition_naming_the_key() -> None:
    with pytest.raises(HydraException) as err:
        compose_cfg("train.epoch=3")
    assert "train.epoch" in str(err.value)


@pytest.mark.parametrize(
    "override", ["train.epochs=abc", "train.learning_rate=fast", "peft.lora_alpha=abc"]
)
def test_a_wrong_type_fails_at_composition_naming_the_key(override: str) -> None:
    with pytest.raises(HydraException) as err:
        compose_cfg(override)
    assert override.split("=")[0] in str(err.value)


def test_a_typo_in_a_yaml_file_fails_at_composition(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf_dir)
    (conf_dir / "experiment" / "typo.yaml").write_text(
        "# @package _global_\ntrain:\n  learning_rat: 1.0e-3\n"
    )
    with pytest.raises((HydraException, OmegaConfBaseException)) as err:
        compose_cfg("experiment=typo", conf_dir=conf_dir)
    assert "learning_rat" in str(err.value)


def test_an_unknown_group_option_lists_the_available_ones() -> None:
    with pytest.raises(HydraException) as err:
        compose_cfg("model=no_such_model")
    assert "tiny_bert" in str(err.value)


# (override, key the one-line message must name). One row per rule in `validate`.
BAD_VALUES = [
    ("train.num_threads=0", "train.num_threads"),
    ("ray.num_cpus=0", "ray.num_cpus"),
    ("ray.address=local ray.num_cpus=0", "ray.num_cpus"),  # Ray's word for a local one
    ("ray.address=ray://10.0.0.1:10001", "ray.address"),  # a dry run let these pass
    ("ray.address=headnode", "ray.address"),
    ("train.learning_rate=inf", "train.learning_rate"),
    ("pruner.min_delta=inf", "pruner.min_delta"),
    ("pruner.asha_reduction_factor=inf", "pruner.asha_reduction_factor"),  # ran all but one
    ("sampler.n_startup_trials=-1", "sampler.n_startup_trials"),
    ("ray.address=127.0.0.1:99999", "ray.address"),  # tried as another port
    ("sweep.time_budget_s=inf", "sweep.time_budget_s"),
    ("resources.gpu_memory_gb=inf", "resources.gpu_memory_gb"),  # the smallest GPU share
    ("resources.cpus_per_trial=inf", "resources.cpus_per_trial"),
    ("model.source=onnx", "model.source"),
    ("model.tiny_arch=t5", "model.tiny_arch"),
    ("data.source=parquet", "data.source"),
    ("train.device=tpu", "train.device"),
    ("train.batching=sorted", "train.batching"),
    ("train.bucket_edges=quantile", "train.bucket_edges"),
    ("train.class_weights=inverse", "train.class_weights"),
    ("train.sampling=uniform", "train.sampling"),
    ("sweep.mode=best", "sweep.mode"),
    ("sampler.name=grid", "sampler.name"),
    ("pruner.name=hyperband", "pruner.name"),
    ("pruner.signal=loss", "pruner.signal"),
    ("model.source=pretrained", "model.name_or_path"),
    ("model.max_length=4", "model.max_length"),
    ("model=tiny_bert model.tiny_hidden=30 model.tiny_heads=4", "model.tiny_hidden"),
    ("model=tiny_bert model.tiny_layers=0", "model.tiny_layers"),
    ("model=tiny_gpt2 model.tiny_heads=0", "model.tiny_heads"),
    ("model=tiny_bert model.tiny_intermediate=0", "model.tiny_intermediate"),
    ("data.source=csv", "data.path"),
    ("data.source=jsonl", "data.path"),
    ("data.source=hf", "data.hf_name"),
    ("data=csv data.path=a.csv data.text_column=label", "data.label_column"),  # read its answer
    ("data=hf data.hf_name=x data.label_column=text", "data.label_column"),
    ("data=csv data.path=a.csv data.text_column=''", "data.text_column"),
    ("data=jsonl data.path=a.jsonl data.label_column=''", "data.label_column"),
    ("data.val_fraction=0", "data.val_fraction"),
    ("data.val_fraction=1.0", "data.val_fraction"),
    ("data.max_examples=3", "data.max_examples"),
    ("data.test_fraction=-0.1", "data.test_fraction"),
    ("data.test_fraction=1.0", "data.test_fraction"),
    ("data.test_fraction=0.8", "data.test_fraction"),  # val 0.2 + test 0.8 leaves no train
    ("data.quality=loud", "data.quality"),
    ("data.min_class_examples=0", "data.min_class_examples"),
    ("data.seed=-1", "data.seed"),  # numpy refuses it: a traceback before
    ("train.seed=-1", "train.seed"),
    ("sampler.seed=-1", "sampler.seed"),
    ("train.learning_rate=0", "train.learning_rate"),
    ("train.epochs=0", "train.epochs"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.grad_accum_steps=0", "train.grad_accum_steps"),
    ("train.eval_batch_size=0", "train.eval_batch_size"),
    ("train.weight_decay=-0.1", "train.weight_decay"),
    ("train.warmup_ratio=1.0", "train.warmup_ratio"),
    ("train.warmup_ratio=-0.1", "train.warmup_ratio"),
    ("train.max_grad_norm=0", "train.max_grad_norm"),
    ("train.bucket_pool_batches=0", "train.bucket_pool_batches"),
    ("train.length_groups_per_step=0", "train.length_groups_per_step"),
    ("train.length_groups_per_step=3", "train.length_groups_per_step"),  # 3 does not divide 8
    ("data.path=my.csv", "data.path"),  # without data=csv
    ("data.val_path=v.csv", "data.val_path"),
    ("data.test_path=t.csv", "data.test_path"),
    ("data.hf_name=ag_news", "data.hf_name"),  # without data=hf
    ("data.hf_config=default", "data.hf_config"),
    ("data.hf_test_split=test", "data.hf_test_split"),
    ("peft.lora_rank=-1", "peft.lora_rank"),
    ("peft.frozen_layers=-1", "peft.frozen_layers"),
    ("peft.lora_dropout=1.0", "peft.lora_dropout"),
    ("peft.lora_alpha=0", "peft.lora_alpha"),
    ("resources.cpus_per_trial=0", "resources.cpus_per_trial"),
    ("resources.gpu_memory_gb=0", "resources.gpu_memory_gb"),
    ("resources.gpus_per_trial=1.5", "resources.gpus_per_trial"),
    ("resources.gpus_per_trial=-1", "resources.gpus_per_trial"),
    ("resources.gpus_per_trial=many", "resources.gpus_per_trial"),
    ("resources.gpus_per_trial=true", "resources.gpus_per_trial"),  # was a whole GPU a trial
    ("sweep.name=''", "sweep.name"),
    ("tracking.alias=prod.v1", "tracking.alias"),  # MLflow refused it after the whole sweep
    ("tracking.alias=''", "tracking.alias"),
    ("tracking.alias=Latest", "tracking.alias"),  # reserved: read as the newest version
    ("tracking.alias=v2", "tracking.alias"),
    ("sweep.name=a/b", "sweep.name"),
    ("sweep.name=..", "sweep.name"),  # outputs/.. is the folder above the outputs
    ("sweep.name=run:2", "sweep.name"),  # MLflow registers no model of that name (at the end)
    ("tracking.registered_model=team/model", "tracking.registered_model"),
    ('sweep.name="bob\'s"', "sweep.name"),  # an MLflow filter string quotes it
    ("sweep.num_samples=0", "sweep.num_samples"),
    ("sweep.max_concurrent=0", "sweep.max_concurrent"),
    ("sweep.max_failures=-1", "sweep.max_failures"),
    ("sweep.warm_start_top_k=0", "sweep.warm_start_top_k"),
    ("sweep.export_rule=smallest", "sweep.export_rule"),
    ("sweep.export_tolerance=-0.1", "sweep.export_tolerance"),
    ("sweep.second_objective=latency", "sweep.second_objective"),
    ("sweep.time_budget_s=0", "sweep.time_budget_s"),
    ("sweep.metric=f1", "sweep.metric"),
    ("sweep.mode=up", "sweep.mode"),
    ("pruner.grace_period=-1", "pruner.grace_period"),
    ("pruner.patience=0", "pruner.patience"),
    ("pruner.asha_reduction_factor=1", "pruner.asha_reduction_factor"),
    # these three failed inside the sweep once Ray had started (a ValueError traceback)
    ("pruner.asha_grace_period=0", "pruner.asha_grace_period"),
    ("pruner.min_delta=-0.01", "pruner.min_delta"),
    ("pruner.min_delta=nan", "pruner.min_delta"),
    ("pruner.max_gap=0", "pruner.max_gap"),
    ("sampler.seed=4294967296", "sampler.seed"),  # numpy's traceback when Optuna seeds it
]


def test_the_mode_follows_the_metric_and_a_contrary_one_is_refused() -> None:
    """`sweep.metric=val_loss` alone once kept mode `max`, and the sweep exported the trial
    with the highest validation loss."""
    assert compose_cfg("sweep.metric=val_loss").sweep.mode == "min"
    assert compose_cfg("sweep.metric=val_f1").sweep.mode == "max"
    assert compose_cfg().sweep.mode == "max"
    assert compose_cfg("sweep.metric=val_loss", "sweep.mode=min").sweep.mode == "min"
    with pytest.raises(ConfigError, match=r"^config: sweep.mode: max would pick the highest "
                       r"val_loss; use min, or leave sweep.mode out \(auto\)$"):  # fmt: skip
        compose_cfg("sweep.metric=val_loss", "sweep.mode=max")
    with pytest.raises(ConfigError, match="sweep.mode: min would pick the lowest val_accuracy"):
        compose_cfg("sweep.mode=min")
    # a config an older version recorded that way (an export's) is still read back
    old = as_dict(compose_cfg("sweep.metric=val_loss"))
    old["sweep"]["mode"] = "max"
    assert from_dict(old).sweep.mode == "max"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.path=my.jsonl"],
            "config: data.path: is not read when data.source=chatterbot_topics; add data=jsonl",
        ),
        (
            ["data.path=my.TSV"],
            "data.path: is not read when data.source=chatterbot_topics; add data=csv",
        ),
        (
            ["data.test_path=t.txt"],
            "data.test_path: is not read when data.source="
            "chatterbot_topics; add data=csv or data=jsonl",
        ),
        (
            ["data=hf", "data.hf_name=saved", "data.val_path=v.csv"],
            "data.val_path: is not read when data.source=hf; data=hf reads its val split from "
            "data.hf_val_split",
        ),
        (
            ["data=hf", "data.hf_name=saved", "data.path=saved2"],
            "data.path: is not read when data.source=hf; a folder saved with save_to_disk goes "
            "in data.hf_name",
        ),
        (
            ["data=csv", "data.path=a.csv", "data.hf_name=ag_news"],
            "config: data.hf_name: is not read when data.source=csv; add data=hf",
        ),
        (
            ["data=csv", "data.path=a.csv", "data.hf_val_split=validation"],
            "config: data.hf_val_split: is not read when data.source=csv; add data=hf",
        ),
        (
            ["data=jsonl", "data.path=a.jsonl", "data.hf_train_split=all"],
            "config: data.hf_train_split: is not read when data.source=jsonl; add data=hf",
        ),
        (
            ["data=csv", "data.path=a.csv", "data.language=german"],
            "config: data.language: is not read when data.source=csv; it picks the embedded "
            "corpus's language",
        ),
        (
            ["model.name_or_path=roberta-base"],
            "config: model.name_or_path: is not read when model.source=package; add model=hf to "
            "fine-tune roberta-base",
        ),
        (
            ["model.tiny_layers=4"],  # trained MiniLM without a word
            "config: model.tiny_layers: is not read when model.source=package; add "
            "model=tiny_bert (or model=tiny_gpt2) for a small model built from a config",
        ),
    ],  # fmt: skip
)
def test_your_own_data_or_model_without_its_group_is_refused(
    overrides: list[str], message: str
) -> None:
    """`data.path=my.jsonl` without `data=jsonl` (or `model.name_or_path=...` without
    `model=hf`) used to be ignored: the sweep trained on the embedded corpus (model)."""
    with pytest.raises(ConfigError) as err:
        compose_cfg(*overrides)
    assert str(err.value).endswith(message)


def test_a_recorded_gpu_share_of_true_still_reads_back() -> None:
    """`gpus_per_trial=true` is refused on the command line (a whole GPU a trial, as
    float(True) is); a sweep recorded with it before that rule still exports and reproduces."""
    from automl.config.resolve import as_dict, from_dict

    recorded = as_dict(compose_cfg())
    recorded["resources"]["gpus_per_trial"] = True
    assert from_dict(recorded).resources.gpus_per_trial is True
    with pytest.raises(ConfigError, match="resources.gpus_per_trial"):
        compose_cfg("resources.gpus_per_trial=true")
    assert compose_cfg("resources.gpus_per_trial=false").resources.gpus_per_trial is False


def test_pruner_and_sampler_settings_the_chosen_ones_never_read_are_warned() -> None:
    """`pruner=asha pruner.grace_period=3`: ASHA kept its grace period of 1, without a word."""
    from automl.config.values import unread_search_settings

    assert unread_search_settings(compose_cfg("pruner=asha", "pruner.grace_period=3")) == [
        "pruner.grace_period=3 is not read when pruner.name=asha (ASHA's is "
        "pruner.asha_grace_period)"
    ]
    assert unread_search_settings(compose_cfg("pruner=overfit", "pruner.asha_grace_period=2")) == [
        "pruner.asha_grace_period=2 is not read when pruner.name=overfit"
    ]
    # an experiment's settings for its own pruner, another picked on the command line
    assert unread_search_settings(compose_cfg("experiment=overfit", "pruner=none")) == [
        "pruner.grace_period=2 is not read when pruner.name=none",
    ]
    assert unread_search_settings(compose_cfg("sampler=qmc", "sampler.n_startup_trials=9")) == [
        "sampler.n_startup_trials=9 is not read when sampler.name=qmc: every trial is drawn "
        "that way"
    ]
    read_by_them = [
        ("pruner=overfit_asha", "pruner.patience=2", "pruner.asha_grace_period=2"),
        ("sampler=gp", "sampler.n_startup_trials=2"),
        ("experiment=overfit",),
    ]
    for read in read_by_them:
        assert unread_search_settings(compose_cfg(*read)) == []


def test_settings_this_run_never_reads_are_warned(tmp_path: Path) -> None:
    """A validation file and `data.val_fraction=0.3`, LoRA's dropout at rank 0, a tolerance
    under the `best` rule: each was ignored without a word."""
    from automl.config.values import unread_run_settings

    csv = ("data=csv", f"data.path={tmp_path / 'a.csv'}", f"data.val_path={tmp_path / 'v.csv'}")
    conf = compose_cfg(*csv, "data.val_fraction=0.3", "data.test_fraction=0.2",
                       "peft.lora_rank=0", "peft.lora_dropout=0.3",
                       "sweep.export_tolerance=0.02", "sweep.warm_start_top_k=5")  # fmt: skip
    assert unread_run_settings(conf, lora_possible=False) == [
        f"data.val_fraction=0.3 is not read: the split comes from '{tmp_path / 'v.csv'}'",
        "peft.lora_dropout=0.3 is not read: no trial gets LoRA adapters (peft.lora_rank 0, "
        "or every block frozen)",
        "sweep.export_tolerance=0.02 is not read when sweep.export_rule=best "
        "(sweep.export_rule=smallest_within reads it)",
        "sweep.warm_start_top_k=5 is not read without sweep.warm_start",
    ]  # the test split is cut from data.path: its share is read
    assert (
        unread_run_settings(conf, lora_possible=False, sweep=False)
        == (unread_run_settings(conf, lora_possible=False)[:2])
    )
    read = compose_cfg(*csv[:2], "data.val_fraction=0.3", "peft.lora_dropout=0.3",
                       "sweep.export_rule=smallest_within",
                       "sweep.export_tolerance=0.02")  # fmt: skip
    assert unread_run_settings(read, lora_possible=True) == []


def test_a_folder_path_without_data_hf_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        compose_cfg(f"data.path={tmp_path}")
    assert str(err.value).endswith(
        f"a folder saved with save_to_disk: use data=hf data.hf_name={tmp_path}"
    )
    with pytest.raises(ConfigError) as err:  # no dataset of its own: not the data=hf advice
        compose_cfg(f"data.val_path={tmp_path}")
    assert str(err.value).endswith("add data=csv or data=jsonl")
    # the group and its keys together load; a recorded config is read back as it was
    assert compose_cfg("data=jsonl", "data.path=my.jsonl").data.source == "jsonl"
    old = as_dict(compose_cfg())
    old["model"]["name_or_path"] = "roberta-base"  # ignored by an older version, recorded so
    assert from_dict(old).model.source == "package"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=csv", "data.path=a.csv", "data.val_path=./a.csv"],
         "data.val_path: reads the same file as data.path (./a.csv): trials would be chosen on "
         "rows they trained on"),
        (["data=jsonl", "data.path=a.jsonl", "data.val_path=v.jsonl", "data.test_path=v.jsonl"],
         "data.test_path: reads the same file as data.val_path (v.jsonl): the test score would "
         "come from rows that chose the model"),
        (["data=hf", "data.hf_name=ag_news", "data.hf_test_split=train"],
         "data.hf_test_split: reads the same split as data.hf_train_split (train): the test "
         "score would come from rows the model trained on"),
        (["data=hf", "data.hf_name=ag_news", "data.hf_val_split=test", "data.hf_test_split=test"],
         "data.hf_test_split: reads the same split as data.hf_val_split (test): the test score "
         "would come from rows that chose the model"),
    ],
)  # fmt: skip
def test_validation_or_test_read_from_rows_already_used_is_refused(
    overrides: list[str], message: str
) -> None:
    """They ran: trials were chosen on their own training rows, or the "held-out" test score
    was the selection set's."""
    with pytest.raises(ConfigError) as err:
        compose_cfg(*overrides)
    assert str(err.value) == f"config: {message}"
    # other slices of one split are other rows; a recorded config reads back as it ran
    sliced = compose_cfg("data=hf", "data.hf_name=ag_news", "data.hf_train_split='train[:90%]'",
                         "data.hf_val_split='train[90%:]'")  # fmt: skip
    assert sliced.data.hf_val_split == "train[90%:]"
    old = as_dict(compose_cfg("data=hf", "data.hf_name=ag_news"))
    old["data"]["hf_test_split"] = "train"
    assert from_dict(old).data.hf_test_split == "train"


def test_length_groups_must_divide_a_set_batch_size() -> None:
    """12 x 2 examples a step split into 8 groups of 3; 12 x 1 cannot be."""
    grouped = compose_cfg("train.batch_size=12", "train.grad_accum_steps=2",
                          "train.length_groups_per_step=8")  # fmt: skip
    assert grouped.train.length_groups_per_step == 8
    with pytest.raises(ConfigError, match=r"^config: train.length_groups_per_step: .*\b12\b"):
        compose_cfg("train.batch_size=12", "train.length_groups_per_step=8")


@pytest.mark.parametrize(("override", "key"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_a_bad_value_fails_with_one_line_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose_cfg(*override.split())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"config: {key}: ")


def test_data_paths_under_the_home_folder_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No shell expands the `~` of `data.path=~/x.csv`: the file was "not found"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    conf = compose_cfg("data=csv", "data.path='~/train.csv'", "data.val_path='~/val.csv'",
                       "data.test_path='~nobody_here/t.csv'")  # fmt: skip
    assert (conf.data.path, conf.data.val_path) == (
        str(tmp_path / "train.csv"), str(tmp_path / "val.csv"))  # fmt: skip
    assert conf.data.test_path == "~nobody_here/t.csv"  # no such user: left to "not found"
    assert compose_cfg("data=hf", "data.hf_name='~/saved'").data.hf_name == str(tmp_path / "saved")


def _validated_keys() -> set[str]:
    """Every key the value rules check: CHOICES and each `_check(..., "key", ...)` call."""
    tree = ast.parse(inspect.getsource(automl.config.values))
    keys = set(automl.config.values.CHOICES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_check":
            key = node.args[1]
            if isinstance(key, ast.Constant):
                keys.add(key.value)
            else:  # the CHOICES loop passes its key through a variable
                assert ast.unparse(key) == "key", ast.unparse(node)
    return keys


def test_the_table_covers_every_rule_in_validate() -> None:
    assert _validated_keys() - {key for _, key in BAD_VALUES} == set()


@pytest.mark.parametrize(
    "override",
    [
        "resources.gpus_per_trial=auto",
        "resources.gpus_per_trial=0.25",
        "resources.gpus_per_trial=1",
        "data.val_fraction=0.5",
        "train.warmup_ratio=0",
        "peft.lora_rank=0",
        "data.max_examples=4",
        "data.test_fraction=0",
        "data.test_fraction=0.79",
        "data.quality=off",
        "sweep.metric=val_loss",
        "sweep.metric=val_balanced_accuracy",
        "train.class_weights=balanced",
        "train.sampling=sqrt",
        "train.batch_size=null",
        "train.batch_size=1",
    ],
)
def test_boundary_values_are_accepted(override: str) -> None:
    key, value = override.split("=")
    got: Any = compose_cfg(override)
    for name in key.split("."):
        got = getattr(got, name)
    if value == "null":
        assert got is None
    elif value.replace(".", "").isdigit():
        assert float(got) == float(value)
    else:
        assert got == value  # kept as given, not replaced by a default


def test_validation_also_runs_on_a_dataclass_config() -> None:
    with pytest.raises(ConfigError, match="peft.frozen_layers"):
        to_config(Config(peft=PeftConfig(frozen_layers=-2)))
    conf = Config(data=DataConfig(source="csv", path="x.csv"))
    assert to_config(conf) is conf


def test_as_dict_from_dict_round_trip() -> None:
    conf = compose_cfg("experiment=smoke", "peft.target_modules=[query,value]", "peft.lora_alpha=4")
    plain = as_dict(conf)
    assert isinstance(plain, dict) and isinstance(plain["train"], dict)
    assert plain["peft"]["target_modules"] == ["query", "value"]
    assert plain["data"]["max_examples"] == 800
    back = from_dict(plain)
    assert back == conf
    assert isinstance(back.peft, PeftConfig)


def test_from_dict_rejects_typos_and_bad_values() -> None:
    plain = as_dict(compose_cfg("experiment=smoke"))
    with pytest.raises(ConfigError, match=r"^config: train\.epoch: the recorded config does"):
        from_dict({**plain, "train": {**plain["train"], "epoch": 3}})
    with pytest.raises(ConfigError, match="train.batch_size"):
        from_dict({**plain, "train": {**plain["train"], "batch_size": 0}})


def test_where_a_run_writes_is_checked_without_writing(tmp_path: Path) -> None:
    from automl.config.paths import not_creatable

    (tmp_path / "a-file").write_text("")
    assert not_creatable(tmp_path) is None and not_creatable(tmp_path / "new" / "deeper") is None
    assert not_creatable(tmp_path / "a-file") is None  # a file may be written (a SQLite store)
    assert (
        not_creatable(tmp_path / "a-file", folder=True) == f"{tmp_path / 'a-file'} is not a folder"
    )
    problem = not_creatable(tmp_path / "a-file" / "out", folder=True)
    assert (
        problem
        == f"cannot create {tmp_path / 'a-file' / 'out'} ({tmp_path / 'a-file'} is not a folder)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing was left behind
    assert (tmp_path / "a-file").read_text() == ""  # nor written into


def test_a_folder_that_may_not_be_entered_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`paths.output_dir=/root/out` as another user: Path.exists raised PermissionError (as a
    folder on the way refuses to be entered; simulated: these tests may run as root)."""
    from automl.config.paths import not_creatable

    locked, real = tmp_path / "locked", Path.exists

    def exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    out = locked / "inner" / "out"
    assert not_creatable(out, folder=True) == f"cannot create {out} (Permission denied: {out})"


def test_an_export_replaces_only_an_absent_empty_or_exported_folder(tmp_path: Path) -> None:
    from automl.config.paths import not_replaceable

    (tmp_path / "empty").mkdir()
    (tmp_path / "export").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "export" / name).write_text("{}")
    # an export from before its list of files: it names its sweep and trial
    (tmp_path / "export" / "provenance.json").write_text('{"sweep": "s", "trial_id": "t1"}')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "provenance.json").write_text("{}")  # not an export without config.json
    assert not_replaceable(tmp_path / "absent") is None
    assert not_replaceable(tmp_path / "empty") is None
    assert not_replaceable(tmp_path / "export") is None
    assert not_replaceable(tmp_path / "mine") == (
        f"{tmp_path / 'mine'} holds files and is not an exported model, which an export would "
        "replace"
    )
    assert not_replaceable(tmp_path / "export" / "config.json") == (
        f"{tmp_path / 'export' / 'config.json'} is not a folder"
    )
    # its provenance cut short or edited: which files are the export's is not known, and
    # files of the user's there went with the folder
    (tmp_path / "export" / "provenance.json").write_text('{"files": [')
    (tmp_path / "export" / "notes.txt").write_text("mine")
    assert not_replaceable(tmp_path / "export") == (
        f"{tmp_path / 'export' / 'provenance.json'}: not valid JSON (Expecting value, line 1): "
        f"which files in {tmp_path / 'export'} an export wrote is not known, and an export "
        "replaces the folder: mend the file, or move the folder away"
    )


def test_an_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    from automl.config.paths import write_text_atomic

    path = tmp_path / "summary.json"
    write_text_atomic(path, "old")
    with pytest.raises(UnicodeEncodeError):  # the new text cannot be written
        write_text_atomic(path, "new " * 10_000 + "\ud800")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
    write_text_atomic(path, "new")
    assert path.read_text() == "new"


def test_a_json_file_is_read_as_an_object_or_one_line_says_why_not(tmp_path: Path) -> None:
    from automl.config.paths import read_json_object

    path = tmp_path / "summary.json"
    path.write_text('{"trials": [], "sweep": "s"}')
    assert read_json_object(path, ("trials",)) == {"trials": [], "sweep": "s"}
    for text, problem in [
        ('{"trials": [', "not valid JSON (Expecting value, line 1)"),  # cut short by a kill
        ("[1, 2]", "not a summary (a JSON list, not an object)"),
        ('{"sweep": "s"}', "not a summary (no trials, metric)"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError) as err:
            read_json_object(path, ("trials", "metric"), "a summary")
        assert str(err.value) == f"{path}: {problem}"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="unreadable"):
        read_json_object(path)
    with pytest.raises(ValueError, match="unreadable"):
        read_json_object(tmp_path / "absent.json")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_the_kernel_refuses_is_not_creatable_even_for_root() -> None:
    """As root (a container's default user) `os.access` says yes to /proc; creating says no."""
    from automl.config.paths import not_creatable

    assert not_creatable("/proc/automl-out", folder=True) == (
        "cannot create /proc/automl-out (/proc is not writable)"
    )
    assert not_creatable("/proc", folder=True) == "/proc is not writable"


def test_a_sweep_recorded_before_the_name_rules_still_reads_back() -> None:
    """automl-export and automl-reproduce read a sweep's recorded config: a name a newer rule
    refuses must not lock its outputs away."""
    old = as_dict(compose_cfg())
    old["sweep"]["name"] = "bob's"
    assert from_dict(old).sweep.name == "bob's"
    with pytest.raises(ConfigError, match="sweep.name"):
        compose_cfg('sweep.name="bob\'s"')
    assert compose_cfg("sweep.name=run:2", "tracking.enabled=false").sweep.name == "run:2"


def test_a_yaml_boolean_in_a_choice_says_to_quote_it() -> None:
    """`quality: off` in a YAML file is the boolean False to YAML 1.1: the message said only
    "'False' is not one of warn, fail, off"."""
    values = as_dict(compose_cfg())
    values["data"]["quality"] = False
    with pytest.raises(ConfigError, match=r"data\.quality: 'False' is not one of warn, fail, "
                       r"off \(YAML read a bare off/on/no/yes as a boolean: quote it"):  # fmt: skip
        from_dict(values)


def test_config_folders_named_relative_to_where_you_are_are_made_absolute(tmp_path: Path) -> None:
    """`AUTOML_CONF_DIR=conf automl-sweep` failed with Hydra's "requires an absolute
    config_dir", a message that did not name the variable."""
    import os
    import subprocess
    import sys

    show = (
        "import os; from automl.config import schema as s; e = os.environ; print(s.CONF_DIR, "
        "s.SEARCH_SPACE_DIR, e['AUTOML_CONF_DIR'], e['AUTOML_SEARCH_SPACE_DIR'])"
    )  # the variables too: Ray's workers inherit them, and start in folders of their own
    env = {**os.environ, "AUTOML_CONF_DIR": "conf", "AUTOML_SEARCH_SPACE_DIR": "spaces"}
    out = subprocess.run(
        [sys.executable, "-c", show],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(tmp_path / "conf"), str(tmp_path / "spaces")] * 2


def test_values_refused_since_are_read_back_in_a_recorded_config() -> None:
    """`inf` and `ray.num_cpus=0` passed before 2026-12-06: an export or reproduction of a
    sweep that ran with them reads its recorded config as it ran."""
    recorded = as_dict(compose_cfg())
    recorded["sweep"]["time_budget_s"] = float("inf")
    recorded["pruner"]["min_delta"] = float("inf")
    recorded["ray"]["num_cpus"] = 0
    assert from_dict(recorded).sweep.time_budget_s == float("inf")
    with pytest.raises(ConfigError, match="^config: sweep.time_budget_s: must be finite"):
        compose_cfg("sweep.time_budget_s=inf")
    assert compose_cfg("ray.address=auto", "ray.num_cpus=0").ray.num_cpus == 0  # not read


def test_a_recorded_config_this_version_cannot_read_is_one_line() -> None:
    """A config.json written by another version (a setting this one lacks) or edited by hand
    was OmegaConf's many-line error through `automl-export`, not a ConfigError."""
    recorded = as_dict(compose_cfg())
    recorded["train"]["old_setting"] = 1
    with pytest.raises(ConfigError) as err:
        from_dict(recorded)
    assert str(err.value) == (
        "config: train.old_setting: the recorded config does not fit this version's settings "
        "(Key 'old_setting' not in 'TrainConfig'): written by another version of "
        "finetune-automl, or edited?"
    )
    recorded = as_dict(compose_cfg())
    recorded["train"]["epochs"] = "many"
    with pytest.raises(ConfigError, match=r"^config: train.epochs: .* \(Value 'many' of type"):
        from_dict(recorded)
