"""Rebuild an export from a finished sweep's kept checkpoint (the best trial, or a named one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automl.config.paths import not_replaceable, read_json_object
from automl.config.resolve import as_dict, from_dict
from automl.config.schema import ConfigError
from automl.config.space_params import MODEL_KEY
from automl.export.portable import MANUAL
from automl.export.trained_texts import base_trained_texts, write_trained_texts


class ExportError(ValueError):
    """The sweep folder or trial cannot be exported; one line naming what is missing."""


def find_checkpoint(row: dict[str, Any], sweep_dir: Path, best: bool = False) -> Path:
    """The trial's surviving checkpoint folder (recorded in summary.json as an absolute path);
    where the sweep folder has moved or been copied since (another mount, a renamed copy), the
    same folder under the `ray/` inside the sweep folder, the copy's own first."""
    from automl.search.state import checkpoint_here

    recorded = row.get("checkpoint") or ""
    found = Path(checkpoint_here(recorded, sweep_dir / "ray"))
    if recorded and found.is_dir():
        return found
    where = f" (not at {recorded}: moved or deleted?)" if recorded else ""
    why = "" if best else "; only the best trial's is kept unless sweep.keep_checkpoints=true"
    raise ExportError(f"trial {row['trial_id']}: its checkpoint is gone{where}{why}")


def _refuse_base_as_target(model: Any, target: Path) -> None:
    """`--out outputs/v1/best` for sweep v2, tuned on v1's export: the re-export replaced the
    base model it was built from (another sweep's export, and the hash v2's provenance names)."""
    if model.source != "pretrained" or not model.name_or_path:
        return
    base = Path(model.name_or_path).expanduser().resolve()
    out = target.expanduser().resolve()
    if base.exists() and (out == base or out in base.parents):  # (not a Hub id)
        raise ExportError(
            f"--out {target}: holds the trial's base model {model.name_or_path}, which the "
            "export would replace: name another folder"
        )


def _refuse_other_sweeps_export(target: Path, base: dict[str, Any]) -> None:
    """`--out outputs/v1/best` for sweep v2: an earlier export may be replaced, but one another
    sweep wrote (which its summary, report and registered model describe) went without a word."""
    sweep = (base.get("sweep") or {}).get("name") if isinstance(base.get("sweep"), dict) else None
    try:
        other = read_json_object(target / "provenance.json").get("sweep")
    except ValueError:  # no export there, or none readable: not_replaceable judged it
        return
    if isinstance(other, str) and isinstance(sweep, str) and other != sweep:
        raise ExportError(
            f"{target} holds sweep {other!r}'s export, which exporting sweep {sweep!r} there "
            "would replace: name another folder, or move it away first"
        )


def launch_folder(sweep_dir: Path, output_dir: str) -> Path | None:
    """Where the sweep was started, from its folder `<paths.output_dir>/<sweep>` (None where
    the recorded output folder is absolute or does not end the path)."""
    parts = Path(output_dir or ".").parts
    folder = sweep_dir.resolve()
    if Path(output_dir).is_absolute() or len(folder.parts) < len(parts) + 2:
        return None
    above = folder.parents[len(parts)]
    return above if (above / output_dir).resolve() == folder.parent else None


def check_run_from_launch_folder(sweep_dir: Path, config: dict[str, Any]) -> None:
    """Relative paths in a trial's config (a model folder, the data) name files from where
    the sweep ran; from elsewhere a missing model folder would be looked up on the Hub."""
    launch = launch_folder(sweep_dir, (config.get("paths") or {}).get("output_dir") or "")
    if launch is None or launch == Path.cwd().resolve():
        return
    model, data = config.get("model") or {}, config.get("data") or {}
    recorded = [model.get("name_or_path") if model.get("source") == "pretrained" else None]
    recorded += [data.get(key) for key in ("path", "val_path", "test_path")]
    recorded += [data.get("hf_name") if data.get("source") == "hf" else None]
    for value in filter(None, recorded):
        path = Path(str(value))
        if not path.is_absolute() and not path.exists() and (launch / path).exists():
            raise ExportError(
                f"{sweep_dir / 'config.json'}: {value} is relative to {launch}, where the sweep "
                "ran: run automl-export from there"
            )


def check_data_unchanged(
    sweep_dir: Path, labels: list[str], fingerprint: dict[str, Any], sweep_labels: Any
) -> None:
    """The data as the sweep read it (its fingerprint, recorded when it started; its classes):
    files that hold other rows by now would put trained-on texts in the held-out test split,
    score them under the sweep's class ids, and record a fingerprint the model never saw."""
    from automl.search.identity import data_change
    from automl.search.state import SweepState

    problem = data_change(SweepState.load(sweep_dir).started_with, fingerprint)
    if problem is None and labels != sweep_labels:
        problem = f"classes {', '.join(map(str, sweep_labels))} then, {', '.join(labels)} now"
    if problem:
        raise ExportError(
            f"{sweep_dir}: the data changed since the sweep ran ({problem}); export it where "
            "its data is as it was, or start a new sweep on the new data"
        )


def reexport(sweep_dir: Path, trial_id: str | None = None, out_dir: Path | None = None) -> Path:
    from automl.data.fingerprint import data_fingerprint
    from automl.data.load import load_task_data
    from automl.data.task import DataError, DataFileMissing
    from automl.export.model_dir import export_checkpoint
    from automl.model.load import check_model
    from automl.provenance import git_commit, package_versions, sweep_provenance
    from automl.search.summary import best_epoch_scores
    from automl.search.trial import trial_config

    summary_path, config_path = sweep_dir / "summary.json", sweep_dir / "config.json"
    for path in (summary_path, config_path):
        if not path.is_file():
            raise ExportError(f"{path}: not found (is {sweep_dir} a finished sweep's folder?)")
    summary = read_json_object(
        summary_path, ("trials", "label_names", "num_trials"), "a sweep's file", ExportError
    )
    base = read_json_object(config_path, ("model", "data"), "a sweep's file", ExportError)
    best = summary.get("best_trial") or ""
    trial_id = trial_id or best
    # another trial goes beside the sweep's export, not over it (the summary, the report and
    # the registered model describe `best/`)
    target = out_dir or sweep_dir / ("best" if trial_id == best else f"trial-{trial_id}")
    problem = not_replaceable(target)
    if problem:
        raise ExportError(problem)
    _refuse_other_sweeps_export(target, base)
    trials = summary["trials"] if isinstance(summary["trials"], list) else []
    rows = {row["trial_id"]: row for row in trials if isinstance(row, dict) and "trial_id" in row}
    if not trial_id:
        raise ExportError(
            f"{summary_path}: the sweep has no best trial ({summary.get('outcome', 'none')}): "
            f"name one with --trial (trials: {', '.join(rows) or 'none'})"
        )
    if trial_id not in rows:
        raise ExportError(f"{summary_path}: no trial {trial_id!r} (trials: {', '.join(rows)})")
    if best and trial_id != best and target.resolve() == (sweep_dir / "best").resolve():
        raise ExportError(
            f"--out {target}: the sweep's export, which its summary, report and registered "
            f"model describe as trial {best}'s: export trial {trial_id} elsewhere (without "
            f"--out: {sweep_dir / f'trial-{trial_id}'})"
        )
    row = rows[trial_id]
    params = row.get("params") or {}
    try:  # written by another version, or edited: the file named
        conf = from_dict(base)
    except ConfigError as err:
        raise ExportError(f"{config_path}: {err}") from None
    try:
        trial_conf = trial_config(base, params)
    except ConfigError as err:  # the trial's values, as the summary records them
        raise ExportError(f"{summary_path}: trial {trial_id}: {err}") from None
    check_run_from_launch_folder(sweep_dir, as_dict(trial_conf))  # its model, if searched
    _refuse_base_as_target(trial_conf.model, target)
    check_model(trial_conf)  # the base model moved, deleted or not cached: one line, not later
    best_params = (rows.get(best) or {}).get("params") or {}
    check_base_unchanged(sweep_dir, trial_conf.model, params, best_params)
    check_model_settings_unchanged(sweep_dir, trial_conf.model, params)
    checkpoint = find_checkpoint(row, sweep_dir, best=trial_id == best)
    try:
        task = load_task_data(conf.data)  # loading is cheap; no tokenizing
    except DataFileMissing as err:
        if not err.path.expanduser().is_absolute():
            raise DataError(
                f"{err} (the sweep's data paths are relative to the folder it ran from: "
                f"run automl-export from there)"
            ) from None
        raise
    fingerprint = data_fingerprint(task)
    check_data_unchanged(sweep_dir, task.label_names, fingerprint, summary["label_names"])
    trained_with = _sweep_export_record(sweep_dir, conf.sweep.name)
    provenance = sweep_provenance(
        conf,
        trial_id,
        row["best_value"],
        params,
        summary["num_trials"],
        summary.get("data", ""),
        fingerprint,
        commit=trained_with.get("git_commit", "unknown"),
    )
    # the code and versions that trained it, as the sweep's export recorded them ("unknown"
    # without that record); those that wrote this folder now, apart
    provenance["versions"] = trained_with.get("versions", {})
    provenance["reexported_with"] = {"git_commit": git_commit(), "versions": package_versions()}
    provenance["best_scores"] = best_epoch_scores(row)  # every metric, for the card
    # how this trial was chosen: by hand (--trial), or as the sweep's own export chose it
    rule = summary.get("export_rule")
    if trial_id != best:
        provenance["export_rule"] = {"rule": MANUAL}
    elif isinstance(rule, dict) and rule.get("rule"):  # as the sweep's export records it
        provenance["export_rule"] = {"rule": rule["rule"], "tolerance": rule.get("tolerance")}
        if rule.get("outside_rule"):
            provenance["export_rule"]["outside_rule"] = True
    provenance["search_space"] = _space_file(conf.search_space)  # its sha256, as the sweep's
    if row.get("device"):  # where it trained, as the sweep's own export records it
        provenance["trained_on"] = row["device"]
    base_texts = base_trained_texts(trial_conf.model.name_or_path)  # an earlier export's, if it is
    folder = export_checkpoint(
        trial_conf,
        checkpoint,
        target,
        label_names=summary["label_names"],
        provenance=provenance,
        records=lambda tmp: write_trained_texts(tmp, task.train.texts, base_texts),
    )
    if task.test is not None and task.test.texts:  # the held-out score travels with the model
        from automl.export.evaluation import evaluate_export, record_in_export, with_base_trained

        labels = summary["label_names"]
        seen = _seen(folder, task, trial_conf.model.trust_remote_code)
        seen, noted = with_base_trained(
            seen, task.test.texts, base_texts, trial_conf.model.name_or_path
        )
        evaluation = evaluate_export(
            folder, task.test.texts, task.test.labels, labels, seen,
            trust_remote_code=trial_conf.model.trust_remote_code,
        )  # fmt: skip
        evaluation.update(noted)
        record_in_export(folder, evaluation, trial_conf)  # the trial's model: its licence
    return folder


def check_base_unchanged(
    sweep_dir: Path, model: Any, params: dict[str, Any], best_params: dict[str, Any]
) -> None:
    """A local base model whose files changed since the sweep's own export (a sweep `v2` tuned
    on `outputs/v1/best`, then `v1` re-run): the re-export rebuilt the trial's weights on the
    new base, a silently other model, with a provenance hash naming the new base. Judged by
    the hash the sweep's export (`best/`, of the trial with `best_params`) recorded, where it
    was built on the same model choice as this trial (`params`); else nothing to judge by.
    (The choices as the summary holds them: the provenance's are made portable.)"""
    from automl.export.portable import folder_sha256s

    folder = Path(model.name_or_path).expanduser()
    if model.source != "pretrained" or not folder.is_dir():
        return
    try:
        earlier = read_json_object(sweep_dir / "best" / "provenance.json")
    except ValueError:
        return
    details = earlier.get("base_model_details")
    same_choice = best_params.get(MODEL_KEY) == params.get(MODEL_KEY)
    if not same_choice or not isinstance(details, dict) or details.get("name") != folder.name:
        return  # another model choice's export, or none recorded
    recorded = details.get("sha256")
    if isinstance(recorded, str) and recorded not in folder_sha256s(folder):
        raise ExportError(
            f"model.name_or_path: {folder}: its files changed since the sweep exported "
            f"(sha256 {recorded[:12]} then): an export now would rebuild the trial on other "
            "base weights; put the base model back as it was"
        )


def check_model_settings_unchanged(sweep_dir: Path, model: Any, params: dict[str, Any]) -> None:
    """A searched model is rebuilt from its choice's conf/model file as it is now: a
    `max_length` edited since the sweep gave an export that tokenizes otherwise than its
    weights trained, unsaid. Judged by the model section the export in `best/` recorded, where
    it was built on the same choice as this trial (whichever trial it is); else nothing to
    judge by."""
    from dataclasses import asdict

    from automl.export.portable import portable_path

    choice = params.get(MODEL_KEY)
    if not isinstance(choice, str):
        return
    try:
        earlier = read_json_object(sweep_dir / "best" / "provenance.json")
    except ValueError:
        return
    config, chosen = earlier.get("config"), earlier.get("hyperparameters")
    then = config.get("model") if isinstance(config, dict) else None
    recorded = chosen.get(MODEL_KEY) if isinstance(chosen, dict) else None
    if not isinstance(then, dict) or recorded not in (choice, portable_path(choice)):
        return
    now = asdict(model)
    # where a folder lives is made portable in the record (and judged by its files' hash)
    changed = [k for k, v in now.items() if k != "name_or_path" and k in then and then[k] != v]
    if changed:
        key = changed[0]
        raise ExportError(
            f"model {choice}: {key} is {now[key]!r} now, {then[key]!r} when the sweep trained "
            f"it (its conf/model file changed since?): put it back as it was to export"
        )


def _sweep_export_record(sweep_dir: Path, sweep: str) -> dict[str, Any]:
    """The git commit and package versions the sweep's own export (`best/`) recorded as it
    ran: a re-export stamped today's, `-dirty` state and all, as the code that trained the
    model. Empty where the sweep exported nothing readable of this sweep."""
    from automl.export.portable import export_provenance

    earlier = export_provenance(sweep_dir / "best")
    if earlier is None or earlier.get("sweep") != sweep:
        return {}
    kept = {k: earlier[k] for k in ("git_commit", "versions") if earlier.get(k)}
    if not isinstance(kept.get("git_commit", ""), str) or not isinstance(
        kept.get("versions", {}), dict
    ):
        return {}  # edited by hand: asked again
    return kept


def _space_file(name_or_path: str) -> str:
    """The search space's file, as the sweep's export records it; the name where it is gone."""
    from automl.config.schema import SEARCH_SPACE_DIR
    from automl.config.search_space import SearchSpaceError, resolve_search_space_path

    try:
        return str(resolve_search_space_path(name_or_path, SEARCH_SPACE_DIR))
    except SearchSpaceError:
        return name_or_path


def _seen(folder: Path, task: Any, trust_remote_code: bool) -> list[bool]:
    """`seen_in_training` as the sweep judges it, with the export's tokenizer."""
    from transformers import AutoTokenizer

    from automl.export.evaluation import seen_in_training

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)

    def ids(texts: list[str]) -> list[list[int]]:
        return list(tokenizer(texts, truncation=True)["input_ids"])

    return seen_in_training(ids(task.train.texts), ids(task.test.texts))
