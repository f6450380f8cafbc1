"""Export a trial's best checkpoint as a plain `transformers` model folder, atomically.

The folder loads as it is with `AutoModelForSequenceClassification.from_pretrained` and
`pipeline("text-classification")`: LoRA merged into the base weights (safetensors only), the
tokenizer, label names, a model card and a provenance file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from automl.config.paths import not_replaceable
from automl.config.resolve import as_dict
from automl.config.schema import Config
from automl.export.card import model_card
from automl.export.portable import portable, portable_model_provenance
from automl.model.build import build_model
from automl.model.load import load_tokenizer
from automl.model.state import merged_for_export
from automl.provenance import redact_values
from automl.train.checkpoint import load_best

log = logging.getLogger(__name__)


def export_checkpoint(
    conf: Config,
    checkpoint_dir: Path,
    out_dir: Path,
    *,
    label_names: list[str],
    provenance: dict[str, Any],
) -> Path:
    """Rebuild the trial's model, load its checkpoint, merge LoRA, and write `out_dir` atomically.

    Written to a temporary sibling and renamed into place, so a crash never leaves a half-written
    folder and exporting twice gives the same result.
    """
    from transformers import set_seed

    problem = not_replaceable(out_dir)  # the CLIs ask before any compute; this is the last guard
    if problem:
        raise FileExistsError(problem)
    set_seed(
        conf.train.seed
    )  # frozen weights of a randomly initialised (tiny) model match the trial's
    tokenizer = load_tokenizer(conf.model)
    tokenizer.model_max_length = conf.model.max_length  # pipelines truncate as training did
    model, info = build_model(conf.model, conf.peft, label_names, int(tokenizer.pad_token_id))
    progress = load_best(model, checkpoint_dir)
    merged = merged_for_export(model)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)  # what an export killed earlier left behind
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    merged.save_pretrained(tmp, safe_serialization=True)  # type: ignore[operator]
    tokenizer.save_pretrained(tmp)
    for stray in tmp.glob("*.bin"):  # safetensors only: never ship pickled weights
        stray.unlink()
    full_provenance = {
        **provenance,
        "checkpoint_epoch": progress.best_epoch,
        "trainable_params": info.trainable_params,
        "total_params": info.total_params,
        **portable_model_provenance(conf, provenance),
        "config": as_dict(conf),
    }
    full_provenance = portable(full_provenance)  # no absolute path of this machine travels
    # redact: a tracking URI in the config may carry a password, and this file gets shared
    text = json.dumps(redact_values(full_provenance), indent=2, default=str)
    (tmp / "provenance.json").write_text(text)
    (tmp / "README.md").write_text(model_card(conf, full_provenance, label_names))
    _swap_into_place(tmp, out_dir)
    log.info("exported %s", out_dir)
    return out_dir


def clean_stale(out_dir: Path) -> None:
    """Undo what a killed export of `out_dir` left: put a backed-up export back if the folder
    is missing, then drop this export's temporary folders (others' are left alone)."""
    backups = sorted(out_dir.parent.glob(f".{out_dir.name}.old*"))
    if not out_dir.exists() and backups:
        backups[-1].rename(out_dir)
    ours = (f".{out_dir.name}.tmp-", f".{out_dir.name}.old")
    for stale in out_dir.parent.glob(f".{out_dir.name}.*"):
        if stale.is_dir() and stale.name.startswith(ours):
            shutil.rmtree(stale, ignore_errors=True)


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `tmp` so that a kill at any point leaves the old or the new export.

    On Linux the two folders trade places in one atomic step (`renameat2` RENAME_EXCHANGE);
    elsewhere the old one is renamed to a backup first, which `clean_stale` puts back if a kill
    lands between the two renames.
    """
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    if _exchange(tmp, out_dir):
        shutil.rmtree(tmp, ignore_errors=True)  # it now holds the old export
        return
    backup = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(backup, ignore_errors=True)
    out_dir.rename(backup)
    tmp.rename(out_dir)
    shutil.rmtree(backup, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
