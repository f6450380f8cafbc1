"""Re-train an exported trial from its `provenance.json` and compare with the recorded metric.

The provenance holds the trial's resolved config (paths relative to where the sweep ran), its
hyperparameters and seed, the data's fingerprint and the metric at the best epoch. On the CPU the
loop is deterministic for a seed, so the same data gives the same number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf.errors import OmegaConfBaseException

from automl.config.paths import read_json_object
from automl.config.schema import PROJECT_ROOT, Config, ConfigError
from automl.config.space_params import MODEL_KEY
from automl.config.values import CHOICES
from automl.console import first_line
from automl.data.fingerprint import data_fingerprint, fingerprint_mismatch
from automl.data.task import DataError

log = logging.getLogger("automl.reproduce")

REQUIRED = ("config", "metric", "best_value", "data_fingerprint")


class ReproduceError(ValueError):
    """The provenance file cannot drive a reproduction; one line naming the file and the key."""


@dataclass
class Reproduction:
    metric: str
    epoch: int
    recorded: float
    reproduced: float
    tolerance: float

    @property
    def difference(self) -> float:
        return abs(self.reproduced - self.recorded)

    @property
    def matches(self) -> bool:
        return self.difference <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "epoch": self.epoch,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "difference": round(self.difference, 6),
            "tolerance": self.tolerance,
            "matches": self.matches,
        }


def load_provenance(path: Path) -> dict[str, Any]:
    """An export's provenance.json, read and checked; the export's folder names its file (as
    `automl-evaluate` takes the folder)."""
    if path.is_dir() and (path / "provenance.json").is_file():
        path = path / "provenance.json"
    if not path.is_file():
        raise ReproduceError(f"{path}: no such file (an exported model's provenance.json)")
    prov = read_json_object(path, REQUIRED, "an export's provenance", ReproduceError)
    if not isinstance(prov["best_value"], int | float):
        raise ReproduceError(f"{path}: best_value: no recorded metric ({prov['best_value']!r})")
    # checked here, not by a KeyError after the re-train (an edited or damaged file)
    from automl.config.values import OBJECTIVES

    if prov["metric"] not in OBJECTIVES:
        raise ReproduceError(f"{path}: metric: {prov['metric']!r} is not one of {OBJECTIVES}")
    epoch = prov.get("checkpoint_epoch")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool)):
        raise ReproduceError(f"{path}: checkpoint_epoch: not an epoch number ({epoch!r})")
    for key in ("config", "hyperparameters"):
        if not isinstance(prov.get(key) or {}, dict):
            raise ReproduceError(f"{path}: {key}: expected a mapping, got {prov[key]!r}"[:300])
    return prov


def _local(value: str) -> str:
    """A recorded relative path: from the working directory, else from the project."""
    if not value or Path(value).is_absolute() or Path(value).exists():
        return value
    in_project = PROJECT_ROOT / value
    return str(in_project) if in_project.exists() else value


def reproduce_config(
    prov: dict[str, Any],
    data_path: str | None = None,
    device: str = "cpu",
    model_path: str | None = None,
) -> Config:
    """The trial's config: the recorded resolved config with its hyperparameters applied, on
    as many threads as the trial had (thread count can change float sums)."""
    from automl.search.trial import apply_overrides, trial_config

    # the model section as the trial had it: a searched model's choice read again would take
    # its conf/model file as it is now (a max_length edited since), or fail where it is gone
    chosen = {k: v for k, v in (prov.get("hyperparameters") or {}).items() if k != MODEL_KEY}
    base = apply_overrides(prov["config"], chosen)
    data = base["data"]
    # hf_name too: a `save_to_disk` folder is recorded by its name (its hub id is left as is)
    for key in ("path", "val_path", "test_path", "hf_name"):
        if key in data:
            data[key] = _local(data[key] or "")
    if data_path is not None:
        if data.get("source") == "hf" and Path(data_path).is_dir():  # a save_to_disk folder
            data["hf_name"] = data_path  # (a hub dataset's fingerprint refuses it)
        elif data.get("source") not in ("csv", "jsonl"):  # it would retrain on the recorded data
            raise ReproduceError(
                f"--data: the trial trained on data.source={data.get('source')}, not a file: "
                "--data names where a csv or jsonl sweep's file (or a folder written by "
                "save_to_disk) is now"
            )
        else:
            data["path"] = data_path
            # separate validation and test files: looked for beside it, by their names
            for key in ("val_path", "test_path"):
                if (recorded := data.get(key)) and not Path(recorded).is_file():
                    beside = Path(data_path).parent / Path(recorded).name
                    if not beside.is_file():  # "val.jsonl: file not found": where, not said
                        raise ReproduceError(
                            f"--data: the trial's data.{key} {recorded} is neither where "
                            f"recorded nor beside --data ({beside}): copy it there"
                        )
                    data[key] = str(beside)
    if model_path is not None:
        if base["model"].get("source") != "pretrained":
            raise ReproduceError(
                f"--model: the trial fine-tuned model.source={base['model'].get('source')}, not "
                "a folder: --model names where a model=hf sweep's base model is now"
            )
        base["model"]["name_or_path"] = model_path
    elif base["model"].get("source") == "pretrained":
        base["model"]["name_or_path"] = _local(base["model"].get("name_or_path") or "")
    if not base["train"].get("num_threads"):
        base["train"]["num_threads"] = max(1, int(base["resources"]["cpus_per_trial"]))
    base["train"]["device"] = device
    base["tracking"]["enabled"] = False
    return trial_config(base, {})


def check_data(prov: dict[str, Any], conf: Config, where: Path) -> tuple[Any, dict[str, Any]]:
    """The task data and its fingerprint, checked against the recorded one (one-line error)."""
    from automl.data.load import load_task_data

    task = load_task_data(conf.data)
    fingerprint = data_fingerprint(task)
    problem = fingerprint_mismatch(prov["data_fingerprint"], fingerprint)
    if problem:
        source = conf.data.path or conf.data.hf_name or conf.data.source
        raise DataError(f"{source}: data does not match the fingerprint in {where}: {problem}")
    return task, fingerprint


def check_base_model(prov: dict[str, Any], conf: Config) -> None:
    """A local base-model folder must hold the files it held (its recorded content hash)."""
    from automl.export.portable import folder_sha256s
    from automl.model.load import ModelError

    details = prov.get("base_model_details") or {}
    recorded = details.get("sha256")
    folder = Path(conf.model.name_or_path).expanduser()
    if conf.model.source != "pretrained" or not recorded:
        return
    if not folder.is_dir():  # else transformers would look it up on the Hub, retrying offline
        raise ModelError(
            f"model.name_or_path: {folder}: no such folder here; the base model was a local "
            f"folder ({details.get('name')}): run from where the sweep ran, or pass --model FOLDER"
        )
    if recorded not in folder_sha256s(folder):  # today's hash, or an older export's
        raise ModelError(
            f"model.name_or_path: {folder}: its files differ from the base model recorded in "
            "provenance.json (sha256 mismatch)"
        )


def reproduce(
    path: Path,
    *,
    tolerance: float = 0.005,
    data_path: str | None = None,
    device: str = "cpu",
    model_path: str | None = None,
    trust_remote_code: bool = False,
) -> Reproduction:
    """Validate (provenance, config, base model, data fingerprint), then re-train and compare.
    A trial that ran its model's own code (`model.trust_remote_code`) runs it again only when
    `trust_remote_code` says so: a provenance.json travels with a shared model."""
    from automl.data.tokenized import tokenize
    from automl.model.load import check_model, load_tokenizer
    from automl.train.device import pick_device
    from automl.train.loop import run_trial

    if not tolerance >= 0:  # (nan too; inf: report the number, never a difference)
        raise ReproduceError(f"--tolerance: must be a number >= 0, got {tolerance}")
    if device not in CHOICES["train.device"]:  # (not blamed on the record below)
        raise ReproduceError(f"--device: must be cpu, cuda or auto, got {device!r}")
    prov = load_provenance(path)
    try:
        conf = reproduce_config(prov, data_path, device, model_path)
    except (KeyError, TypeError, OmegaConfBaseException, ConfigError) as err:  # a damaged,
        # older or newer record
        first = first_line(err, 200)
        raise ReproduceError(f"{path}: config: cannot be read back ({first})") from None
    if conf.model.trust_remote_code and not trust_remote_code:
        raise ReproduceError(
            f"{path}: the trial ran its model's own code (model.trust_remote_code=true): "
            "pass --trust-remote-code to run it again"
        )
    trains_on = pick_device(conf.train.device)  # `--device cuda` without one: refused here
    if prov.get("trained_on") == "cuda" and trains_on.type == "cpu":
        log.warning(
            "the trial trained on a GPU (CUDA random streams, mixed precision): a CPU re-run "
            "takes another path and may differ beyond the tolerance; on a GPU use --device cuda"
        )
    check_base_model(prov, conf)
    check_model(conf)
    task, fingerprint = check_data(prov, conf, path)
    data = tokenize(task, load_tokenizer(conf.model), conf.model.max_length, fingerprint)
    metric, mode = prov["metric"], conf.sweep.mode
    log.info("re-training trial %s of sweep %s", prov.get("trial_id"), prov.get("sweep"))
    result = run_trial(conf, data, metric=metric, mode=mode)
    # the recorded best epoch: the sweep may have stopped the trial before its last epoch
    epoch = int(prov.get("checkpoint_epoch") or result.best_epoch)
    stopped = f" ({result.status}: {result.message})" if result.status != "completed" else ""
    if not 0 < epoch <= len(result.history):  # (a diverged re-run stops early)
        raise ReproduceError(
            f"{path}: the re-run stopped after epoch {len(result.history)}{stopped}, before the "
            + (f"recorded epoch {epoch}" if epoch > 0 else "first epoch")
        )
    if stopped:
        log.warning("the re-run stopped after epoch %d%s", len(result.history), stopped)
    row = result.history[epoch - 1]
    return Reproduction(metric, epoch, float(prov["best_value"]), float(row[metric]), tolerance)
