"""The exported model in the MLflow Model Registry, under the sweep's name and an alias.

The version is an MLflow `transformers` model (an `MLmodel` file beside the weights), so
`mlflow.pyfunc.load_model("models:/<name>@champion")` predicts labels and
`mlflow models serve -m models:/<name>@champion` answers HTTP requests; a plain folder does
neither. The model card is the version's description, and the data the model was trained and
scored on are the parent run's dataset inputs (the runs table's Dataset column).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from automl.config.paths import read_json_object, readable_as_umask_allows
from automl.config.schema import Config
from automl.data.task import TaskData
from automl.export.portable import is_hub_id, portable_path
from automl.tracking.promotion import SWEEP, score_tags, takes_alias
from automl.tracking.runs import SweepTracker

log = logging.getLogger(__name__)

MODEL_NAME = "model"  # the logged model's name inside the sweep's parent run


def pip_requirements() -> list[str]:
    """Pinned to this environment: the flavor's default list asks for torchvision, which the
    project does not need (nor install), and `mlflow models serve` would fail on it."""
    import mlflow
    import torch
    import transformers

    return [
        f"mlflow=={mlflow.__version__}",
        f"transformers=={transformers.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
    ]


def register_export(
    tracker: SweepTracker, conf: Config, export_dir: Path, task: TaskData | None
) -> str:
    """Log the exported folder as an MLflow transformers model of the sweep's parent run,
    register it with the model card, and point the alias at it unless the version holding the
    alias scored better on the same data; `task`'s splits (where given) become the run's
    dataset inputs.
    Returns the version number. A sweep that exports the
    same trial again (resumed after it finished, or after a kill during its export) finds the
    version it registered instead of adding a copy. Client calls only: no global MLflow state
    changes in the driver."""
    name = conf.tracking.registered_model or conf.sweep.name
    client = tracker.client
    provenance = _provenance(export_dir)
    scores = score_tags(provenance, conf.sweep.mode, _classes(export_dir))
    key = export_key(provenance)
    version = _registered_before(client, name, tracker.parent_id, key)
    judged = False
    if version is not None:
        log.info("%s version %s already holds this export: not registered again", name, version)
        judged = JUDGED + conf.tracking.alias in client.get_model_version(name, version).tags
    else:
        tracker.log_artifact(export_dir, "best_model")  # the plain folder, for Hugging Face users
        model_id, location = _log_model(tracker, export_dir, conf.model.trust_remote_code)
        try:
            client.get_registered_model(name)
        except Exception:
            client.create_registered_model(name, tags={SWEEP: conf.sweep.name})
        card = export_dir / "README.md"
        version = str(client.create_model_version(
            # the artifact location, not models:/<id>: the registry resolves that one through
            # the process-wide tracking URI, which the driver leaves alone
            name, source=location, run_id=tracker.parent_id, model_id=model_id,
            tags={"task": "text-classification", SWEEP: conf.sweep.name,
                  **({EXPORT: key} if key else {}), **scores},
            description=_description(card.read_text()) if card.is_file() else None,
        ).version)  # fmt: skip
    if judged:  # once judged, the alias is left where it is now: moved by hand, or by a sweep
        log.info("%s version %s was judged for @%s when first registered: alias left as it is",
                 name, version, conf.tracking.alias)  # fmt: skip
    else:
        _promote(client, name, conf.tracking.alias, version, scores)
        client.set_model_version_tag(name, version, JUDGED + conf.tracking.alias, "true")
    if task is not None:  # MLflow adds a run's dataset input once: a resumed export adds none
        tracker.client.log_inputs(tracker.parent_id, datasets=dataset_inputs(task))
    return version


# Tag of a registered version: which trial's best epoch of which data it holds.
EXPORT = "automl.export"
# Tag of a version whose claim to an alias was decided (set after the alias moved), one per
# alias: a resumed sweep that finds it again does not undo a rollback made by hand since
JUDGED = "automl.alias_judged."
# MLflow's SQL stores keep a version's description in VARCHAR(5000); PostgreSQL and MySQL refuse
# a longer one (a card lists every class: ~50 classes pass it)
DESCRIPTION_CHARS = 5000


def _description(card: str) -> str:
    """The model card, cut at a line to fit the registry; the whole card is the version's
    README.md artifact (best_model/README.md of the sweep's run)."""
    if len(card) <= DESCRIPTION_CHARS:
        return card
    tail = "\n\n(cut to fit the registry: the whole card is best_model/README.md of the run)"
    head = card[: DESCRIPTION_CHARS - len(tail)]
    return head[: head.rfind("\n") + 1 or len(head)].rstrip() + tail


def export_key(provenance: dict[str, Any]) -> str | None:
    """The export's identity within its sweep's parent run: the trial, its best score and the
    data. Exporting again yields the same key; a later round's better trial, another. None
    where the provenance names no trial (unreadable): such an export is always registered."""
    if not provenance.get("trial_id"):
        return None
    sha = (provenance.get("data_fingerprint") or {}).get("sha256", "")
    return f"{provenance['trial_id']}:{provenance.get('best_value')!r}:{sha}"


def _registered_before(client: Any, name: str, run_id: str, key: str | None) -> str | None:
    """The version of `name` this run registered for this export, if it did. Searched by run
    (a hex id) and matched by name here: a model name may hold quotes a filter cannot."""
    if key is None:
        return None
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    return next(
        (str(v.version) for v in versions if v.name == name and v.tags.get(EXPORT) == key), None
    )


def _promote(client: Any, name: str, alias: str, version: str, scores: dict[str, str]) -> None:
    """Point the alias at the version unless the version holding it is better on the same
    data (tracking/promotion.py), or as good and newer; either way, one line says which
    version holds it and why."""
    from mlflow.exceptions import MlflowException

    try:
        holder = client.get_model_version_by_alias(name, alias)
    except MlflowException as err:  # "alias not found": no version holds it yet
        if err.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            raise  # a store that fails must not hand the alias over by default
        holder = None
    if holder is not None and str(holder.version) == version:
        log.info("%s version %s holds @%s", name, version, alias)
        return
    newer = holder is None or int(version) > int(holder.version)
    take, why = takes_alias(scores, _holder_tags(client, holder), newer)
    if take:
        client.set_registered_model_alias(name, alias, version)
        log.info("registered %s version %s as @%s (%s)", name, version, alias, why)
    else:
        log.warning(
            "%s version %s is registered; @%s stays on version %s: %s", name, version, alias,
            holder.version, why,
        )  # fmt: skip


def _holder_tags(client: Any, holder: Any) -> dict[str, str] | None:
    """The tags of the version holding the alias (None: no version does). Versions registered
    before 2026-11-25 lack the `automl.sweep` tag (only their model had it): a version whose
    run is a sweep's parent run is a sweep's all the same."""
    if holder is None:
        return None
    tags = dict(holder.tags)
    if not tags.get(SWEEP) and holder.run_id:
        from mlflow.exceptions import MlflowException

        try:
            run_tags = client.get_run(holder.run_id).data.tags
        except MlflowException:  # its run deleted: no sign a sweep registered it
            return tags
        if run_tags.get("automl.role") == "sweep":
            tags[SWEEP] = run_tags.get(SWEEP) or "?"
    return tags


def _provenance(export_dir: Path) -> dict[str, Any]:
    """The export's provenance; {} (no score to compare) where it cannot be read."""
    try:
        return read_json_object(export_dir / "provenance.json")
    except ValueError:
        return {}


def _classes(export_dir: Path) -> list[str]:
    """The class names the exported model predicts (its config's id2label); [] unreadable."""
    try:
        id2label = read_json_object(export_dir / "config.json").get("id2label")
    except ValueError:
        return []
    return [str(v) for v in id2label.values()] if isinstance(id2label, dict) else []


def _log_model(
    tracker: SweepTracker, export_dir: Path, trust_remote_code: bool = False
) -> tuple[str, str]:
    """`mlflow.transformers` model folder (MLmodel + pipeline) as a logged model of the run."""
    import mlflow
    from mlflow.entities import LoggedModelOutput
    from transformers import pipeline

    client = tracker.client
    classifier = pipeline(  # on the CPU: only saved here (a GPU may be busy or absent later)
        "text-classification", model=str(export_dir), trust_remote_code=trust_remote_code,
        device="cpu",
    )  # fmt: skip
    # our card (with the test score) goes with the MLflow model; without one MLflow would look
    # the export's folder up on the Hugging Face Hub as a repo id, and warn
    card = export_dir / "README.md"
    logged = client.create_logged_model(
        tracker.experiment_id, name=MODEL_NAME, source_run_id=tracker.parent_id,
        tags={"task": "text-classification"},
    )  # fmt: skip
    try:
        parsed_card = _card(card)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / MODEL_NAME
            mlflow.transformers.save_model(
                classifier,
                path=str(folder),
                task="text-classification",
                pip_requirements=pip_requirements(),
                input_example=["How do I reset my password?"],
                model_card=parsed_card,
                # the pipeline's call options when MLflow serves it: cut texts at the training
                # length (the tokenizer's model_max_length), as training and the test score
                # did; without it a long text scored differently and one past 512 tokens failed
                model_config={"truncation": True},
            )
            # MLflow's LICENSE.txt looks the export's folder up as a Hub repo and points at a
            # huggingface.co URL made of a local path; say what holds instead
            (folder / "LICENSE.txt").write_text(license_text(parsed_card), encoding="utf-8")
            _name_the_source(folder, export_dir.name)
            readable_as_umask_allows(folder)  # MLflow re-saves the weights owner-only too
            client.log_model_artifacts(logged.model_id, str(folder))
    except BaseException:  # an error or Ctrl-C: not PENDING in the UI for ever (a retry logs anew)
        with contextlib.suppress(Exception):
            client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_outputs(tracker.parent_id, [LoggedModelOutput(logged.model_id, step=0)])
    return str(logged.model_id), str(logged.artifact_location)


def _name_the_source(folder: Path, name: str) -> None:
    """MLflow records the pipeline's source as the export's absolute path (this machine's
    folders, in a store others read): its name instead (`best`), as the provenance does."""
    from mlflow.models import Model

    model = Model.load(str(folder / "MLmodel"))
    flavor = model.flavors.get("transformers", {})
    if "source_model_name" in flavor:
        flavor["source_model_name"] = name
        model.save(str(folder / "MLmodel"))


def license_text(card: Any) -> str:
    """LICENSE.txt of the MLflow model: a fine-tuned model is under its base model's license,
    as the base model's card declares it (export/card.py copies it into our card)."""
    if card is None:
        return ("Fine-tuned by finetune-automl. Its model card could not be read: the model is "
                "under its base model's license; see the base model's own terms.\n")  # fmt: skip
    base = getattr(card.data, "base_model", None)
    license_ = getattr(card.data, "license", None)
    named = getattr(card.data, "license_name", None)
    lines = [f"Fine-tuned by finetune-automl from the base model "
             f"{base or 'its model card names (model_card.md)'}."]  # fmt: skip
    if license_:
        lines.append(f"It is under the base model's license, which its model card declares: "
                     f"{license_}{f' ({named})' if named else ''}.")  # fmt: skip
    else:  # a Hub model's card is not downloaded with its weights: often not at hand
        lines.append("No license was read from the base model's card (not at hand where it "
                     "was exported, or naming none): check the base model's terms before you "
                     "use or share this model.")  # fmt: skip
    if base and is_hub_id(str(base)):  # a Hub id, not a path
        lines.append(f"Base model: https://huggingface.co/{base}")
    return "\n".join(lines) + "\n"


def _card(path: Path) -> Any:
    """The export's model card for MLflow, or None if it is missing or does not parse: a card
    is a courtesy, never a reason to fail registering the model."""
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(path) if path.is_file() else None
    except Exception as err:
        log.warning("model card %s not passed to MLflow: %s", path, err)
        return None


def dataset_inputs(task: TaskData) -> list[Any]:
    """The train / validation / test splits (text, label name) as MLflow dataset inputs, each
    with its context: the rows the sweep trained, selected and tested on."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from automl.data.quality import splits_of

    contexts = {"train": "training", "val": "validation", "test": "test"}
    inputs = []
    for split_name, split in splits_of(task).items():
        frame = pd.DataFrame(
            {"text": split.texts, "label": [task.label_names[i] for i in split.labels]}
        )
        with warnings.catch_warnings():  # a source name that is not a URI: a note, not news
            warnings.simplefilter("ignore", UserWarning)
            where = portable_path(task.description)  # MLflow is shared: no machine's paths
            dataset = from_pandas(
                frame, source=where, targets="label", name=f"{where} ({split_name})",
            )  # fmt: skip
        context = InputTag("mlflow.data.context", contexts[split_name])
        inputs.append(DatasetInput(Dataset(**dataset.to_dict()), tags=[context]))
    return inputs
