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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.config.paths import (
    EXPORT_FILES_KEY,
    backup_is_an_export,
    export_backup,
    not_replaceable,
    readable_as_umask_allows,
)
from automl.config.resolve import as_dict
from automl.config.schema import Config
from automl.export.card import model_card
from automl.export.portable import EXPORT_RECORDS, portable, portable_model_provenance
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
    records: Callable[[Path], None] | None = None,
) -> Path:
    """Rebuild the trial's model, load its checkpoint, merge LoRA, and write `out_dir` atomically.

    Written to a temporary sibling and renamed into place, so a crash never leaves a half-written
    folder and exporting twice gives the same result. `records(folder)` writes the caller's
    records into it first (`trained_texts.json`: an export published without it, by a kill
    just after, was read as one whose training texts are unknown).
    """
    from transformers import set_seed

    problem = not_replaceable(out_dir)  # the CLIs ask before any compute; this is the last guard
    if problem:
        raise FileExistsError(problem)
    out_dir = Path(os.path.abspath(out_dir))  # written beside it: `x/..` has no name of its own
    set_seed(
        conf.train.seed
    )  # frozen weights of a randomly initialised (tiny) model match the trial's
    tokenizer = load_tokenizer(conf.model)
    tokenizer.model_max_length = conf.model.max_length  # pipelines truncate as training did
    _fast_tokenizer_cuts_at(tokenizer, conf.model.max_length)
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
    if records is not None:
        records(tmp)
    readable_as_umask_allows(tmp)
    full_provenance = {
        **provenance,
        "checkpoint_epoch": progress.best_epoch,
        "trainable_params": info.trainable_params,
        "total_params": info.total_params,
        **portable_model_provenance(conf, provenance),
        "config": as_dict(conf),
    }
    full_provenance = portable(full_provenance)  # no absolute path of this machine travels
    # what is the export's own, so that the next one replaces only that (config/paths.py)
    written = {p.name for p in tmp.iterdir()} | EXPORT_RECORDS
    full_provenance[EXPORT_FILES_KEY] = sorted(written)
    # redact: a tracking URI in the config may carry a password, and this file gets shared
    text = json.dumps(redact_values(full_provenance), indent=2, default=str)
    (tmp / "provenance.json").write_text(text)
    (tmp / "README.md").write_text(model_card(conf, full_provenance, label_names))
    _swap_into_place(tmp, out_dir)
    log.info("exported %s", out_dir)
    return out_dir


def clean_stale(out_dir: Path) -> None:
    """Undo what a killed export of `out_dir` left: put its backed-up export back if the
    folder is missing, then drop the temporary folders of exports no longer running. Only the
    names an export gives them, and only what holds an export's files: a user's
    `.model.old-2024` beside it, or another export's folder still being written, is kept."""
    backup = export_backup(out_dir)
    if backup_is_an_export(out_dir):
        if not out_dir.exists():
            backup.rename(out_dir)
        else:
            shutil.rmtree(backup, ignore_errors=True)
    prefix = f".{out_dir.name}.tmp-"
    for stale in out_dir.parent.glob(f"{prefix}*"):
        pid = stale.name.removeprefix(prefix)
        is_pid = pid.isascii() and pid.isdigit() and len(pid) <= 9  # no pid is longer
        if stale.is_dir() and is_pid and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _running(pid: int) -> bool:
    """A process of that id runs here. (On storage shared between machines, another
    machine's export in progress is taken for a leftover when no process here has its id.)"""
    if pid == os.getpid():
        return False  # this process's own leftover: an earlier export it gave up on
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
    backup = export_backup(out_dir)
    if backup.exists():  # clean_stale removed an export's: this one is someone else's
        raise FileExistsError(f"{backup} is in the way of the export's backup: move it away")
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


def _fast_tokenizer_cuts_at(tokenizer: Any, max_length: int) -> None:
    """tokenizer.json keeps the base model's own truncation and padding (128 for MiniLM):
    read by the `tokenizers` library alone (ONNX runtimes, Rust), a model trained on 48
    tokens got 128. Set to the training length, as `model_max_length` is."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return
    # none set (GPT-2's, most Hub tokenizers'): cut as training did
    backend.enable_truncation(**{**(backend.truncation or {}), "max_length": max_length})
    if backend.padding is not None and backend.padding.get("length") is not None:
        backend.enable_padding(**{**backend.padding, "length": max_length})
