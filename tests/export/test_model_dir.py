"""The export folder is replaced atomically: a kill at any step of the swap leaves the old or the
new model in `best/`, and the next export leaves none of a killed export's folders behind."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from conftest import make_tiny_config

from automl.config.paths import not_replaceable
from automl.export import model_dir
from automl.export.trained_texts import write_trained_texts
from automl.train.checkpoint import BEST_FILE, PROGRESS_FILE, Progress

LABELS = ["food", "sports", "weather"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even `except Exception`."""


@pytest.fixture(scope="module")
def trial_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trial checkpoint folder as a sweep leaves it: best weights and progress."""
    from safetensors.torch import save_file

    from automl.model.build import build_model
    from automl.model.load import load_tokenizer
    from automl.model.state import trainable_state

    conf = make_tiny_config()
    folder = tmp_path_factory.mktemp("checkpoint")
    tokenizer = load_tokenizer(conf.model)
    model, _ = build_model(conf.model, conf.peft, LABELS, int(tokenizer.pad_token_id))
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, folder / BEST_FILE)
    (folder / PROGRESS_FILE).write_text(json.dumps(asdict(Progress(epoch=1, best_epoch=1))))
    return folder


def _export(checkpoint: Path, out_dir: Path, tag: str) -> None:
    model_dir.export_checkpoint(
        make_tiny_config(), checkpoint, out_dir, label_names=LABELS, provenance={"trial_id": tag}
    )


def _tag(out_dir: Path) -> str:
    return str(json.loads((out_dir / "provenance.json").read_text())["trial_id"])


def _kill_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> list[str]:
    """Make the `step`-th file-system call inside the swap raise `Killed` before it runs."""
    calls: list[str] = []
    active = [False]

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if active[0]:
                calls.append(name)
                if len(calls) == step:
                    raise Killed(name)
            return real(*args, **kwargs)

        return call

    for owner, name in [(os, "rename"), (os, "replace"), (shutil, "rmtree"),
                        (Path, "rename"), (Path, "replace")]:  # fmt: skip
        monkeypatch.setattr(owner, name, counted(name, getattr(owner, name)))
    if hasattr(model_dir, "_exchange"):
        monkeypatch.setattr(model_dir, "_exchange", counted("exchange", model_dir._exchange))
    swap = model_dir._swap_into_place

    def watched(tmp: Path, out_dir: Path) -> None:
        active[0] = True
        try:
            swap(tmp, out_dir)
        finally:
            active[0] = False

    monkeypatch.setattr(model_dir, "_swap_into_place", watched)
    return calls


def test_a_kill_during_the_swap_leaves_old_or_new_and_no_litter(
    tmp_path: Path, trial_checkpoint: Path
) -> None:
    out_dir = tmp_path / "best"
    _export(trial_checkpoint, out_dir, "old")
    for step in range(1, 10):
        with pytest.MonkeyPatch.context() as patch:
            calls = _kill_at_step(patch, step)
            try:
                _export(trial_checkpoint, out_dir, "new")
            except Killed:
                pass
        assert out_dir.is_dir(), f"no best/ after a kill at step {step} ({calls})"
        assert _tag(out_dir) in ("old", "new")
        if len(calls) < step:  # the swap has fewer steps: every kill point was tried
            break
        _export(trial_checkpoint, out_dir, "old")  # the next run
        assert _tag(out_dir) == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best"], f"step {step}"
    else:
        pytest.fail("the swap never finished within 9 steps")


def test_next_export_removes_only_its_own_stale_folders(
    tmp_path: Path, trial_checkpoint: Path
) -> None:
    out_dir = tmp_path / "best"
    running = f".best.tmp-{os.getppid()}"  # pytest's parent: a process that runs
    for stale in (".best.tmp-999999", ".best.old-2024", ".other.tmp-1", ".bestx.tmp-1",
                  running, ".best.old", ".best.tmp-x"):  # fmt: skip
        (tmp_path / stale).mkdir()
    (tmp_path / ".best.old" / "notes.txt").write_text("mine")  # no export's files: the user's
    _export(trial_checkpoint, out_dir, "new")
    assert _tag(out_dir) == "new"
    # kept: a user's folders, and the folder of an export still running
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        ".best.old", ".best.old-2024", running, ".best.tmp-x", ".bestx.tmp-1", ".other.tmp-1",
        "best",
    ])  # fmt: skip
    # the next export (over best/, where folders cannot trade places) would need .best.old:
    # refused before any compute, not after a sweep
    assert not_replaceable(out_dir) == (
        f"{tmp_path / '.best.old'} is in the way of the export's backup of best: move it away"
    )
    assert (tmp_path / ".best.old" / "notes.txt").read_text() == "mine"


def test_without_an_atomic_exchange_the_backup_is_put_back(
    tmp_path: Path, trial_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the system cannot swap two folders in one step, a kill between the two renames is
    repaired by the next run: the backed-up export is put back before anything else."""
    monkeypatch.setattr(model_dir, "_exchange", lambda a, b: False)
    out_dir = tmp_path / "best"
    _export(trial_checkpoint, out_dir, "old")
    for step in range(1, 10):
        with pytest.MonkeyPatch.context() as patch:
            calls = _kill_at_step(patch, step)
            try:
                _export(trial_checkpoint, out_dir, "new")
            except Killed:
                pass
        model_dir.clean_stale(out_dir)  # what the next export does first
        assert out_dir.is_dir(), f"no best/ after a kill at step {step} ({calls})"
        assert _tag(out_dir) in ("old", "new")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best"], f"step {step}"
        if len(calls) < step:
            break
        _export(trial_checkpoint, out_dir, "old")


def test_an_export_never_replaces_a_folder_that_is_not_an_export(
    tmp_path: Path, trial_checkpoint: Path
) -> None:
    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not an exported model"):
        _export(trial_checkpoint, mine, "new")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-project"]  # nothing written beside


def test_another_tools_folder_with_a_provenance_file_is_not_an_export(
    tmp_path: Path, trial_checkpoint: Path
) -> None:
    """`provenance.json` and `config.json` are common names: a folder holding them without
    an export's list of its files was taken for an export older than the list, and replaced
    whole, the user's files with it."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text("{}")
    (theirs / "provenance.json").write_text(json.dumps({"tool": "other"}))
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(
        FileExistsError,
        match=r"is not an exported model \(its provenance.json names no sweep and trial\)",
    ):
        _export(trial_checkpoint, theirs, "new")
    assert sorted(p.name for p in theirs.iterdir()) == [
        "config.json",
        "notes.txt",
        "provenance.json",
    ]
    # an export from before the list (it names its trial) is replaced as before
    (theirs / "notes.txt").unlink()
    (theirs / "provenance.json").write_text(json.dumps({"sweep": "s", "trial_id": "old"}))
    _export(trial_checkpoint, theirs, "new")
    assert _tag(theirs) == "new"


@pytest.mark.parametrize("best_there", [False, True])
def test_a_backup_holding_files_of_the_users_is_neither_put_back_nor_deleted(
    tmp_path: Path, trial_checkpoint: Path, best_there: bool
) -> None:
    """`.best.old` is put back as `best/` (best/ gone) or deleted (best/ there) by the next
    export, as a killed export's backup: one holding a note of the user's went with it, past
    the check that guards `best/` itself."""
    out_dir = tmp_path / "best"
    _export(trial_checkpoint, out_dir, "old")
    backup = tmp_path / ".best.old"
    if best_there:
        shutil.copytree(out_dir, backup)
    else:
        out_dir.rename(backup)
    (backup / "notes.txt").write_text("mine")
    if best_there:  # refused before any compute
        with pytest.raises(FileExistsError, match="is in the way of the export's backup"):
            _export(trial_checkpoint, out_dir, "new")
        assert _tag(out_dir) == "old"
    else:  # written beside it, not over it
        _export(trial_checkpoint, out_dir, "new")
        assert _tag(out_dir) == "new"
    model_dir.clean_stale(out_dir)
    assert (backup / "notes.txt").read_text() == "mine" and _tag(backup) == "old"
    assert not_replaceable(out_dir) == (
        f"{backup} is in the way of the export's backup of best: move it away"
    )


def test_an_export_is_not_replaced_with_files_put_in_it_since(
    tmp_path: Path, trial_checkpoint: Path
) -> None:
    """`automl-evaluate best march.csv --out best/march.json` is allowed: the next export
    replaced the whole folder, and the user's file with it."""
    out_dir = tmp_path / "best"
    _export(trial_checkpoint, out_dir, "old")
    own = json.loads((out_dir / "provenance.json").read_text())["files"]
    assert {"config.json", "model.safetensors", "provenance.json", "README.md"} <= set(own)
    assert {p.name for p in out_dir.iterdir()} <= set(own)
    write_trained_texts(out_dir, ["hi"])  # the sweep's record of its training texts: its own
    (out_dir / "march.json").write_text("mine")
    (out_dir / "onnx").mkdir()
    (out_dir / ".DS_Store").write_text("")  # a file browser's: nobody's work, not named
    (out_dir / ".gitattributes").write_text("*.safetensors lfs")  # a Hub clone's: the user's
    with pytest.raises(
        FileExistsError, match=r"holds \.gitattributes, march\.json, onnx, which no export wrote"
    ):
        _export(trial_checkpoint, out_dir, "new")
    assert (out_dir / "march.json").read_text() == "mine" and _tag(out_dir) == "old"
    (out_dir / "march.json").unlink()
    (out_dir / "onnx").rmdir()
    (out_dir / ".gitattributes").unlink()
    _export(trial_checkpoint, out_dir, "new")  # its own files alone: replaced as before
    assert _tag(out_dir) == "new"


def test_an_export_refuses_a_symbolic_link_and_the_current_folder(
    tmp_path: Path, trial_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link to a folder was traded for a new folder (the folder it named kept the old
    export; the link stayed as litter no cleanup removed); `--out .` in an empty folder passed
    every check and failed with a traceback after the rebuild, the model left inside it."""
    real = tmp_path / "real"
    _export(trial_checkpoint, real, "old")
    link = tmp_path / "best"
    link.symlink_to(real, target_is_directory=True)
    assert (problem := not_replaceable(link)) and "is a symbolic link" in problem
    with pytest.raises(FileExistsError, match="is a symbolic link"):
        _export(trial_checkpoint, link, "new")
    assert link.is_symlink() and _tag(real) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "real"]
    empty = tmp_path / "empty"
    (empty / "inner").mkdir(parents=True)
    monkeypatch.chdir(empty / "inner")
    for here in (Path("."), Path(".."), Path("../inner")):
        assert (problem := not_replaceable(here)) and "is the current folder or holds it" in problem
    (empty / "inner").rmdir()
    monkeypatch.chdir(empty)
    with pytest.raises(FileExistsError, match="current folder"):
        _export(trial_checkpoint, Path("."), "new")
    assert list(empty.iterdir()) == []


def test_the_callers_records_are_in_the_export_when_it_appears(
    trial_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`trained_texts.json` was written after the swap: a kill just after it published an
    export that a later sweep read as one whose training texts are unknown."""
    out_dir = tmp_path / "best"
    at_swap: list[str] = []
    real = model_dir._swap_into_place

    def swap(tmp: Path, out: Path) -> None:
        at_swap.extend(sorted(p.name for p in tmp.iterdir()))
        real(tmp, out)

    monkeypatch.setattr(model_dir, "_swap_into_place", swap)
    model_dir.export_checkpoint(
        make_tiny_config(), trial_checkpoint, out_dir, label_names=LABELS,
        provenance={"trial_id": "t1"}, records=lambda folder: write_trained_texts(folder, ["hi"]),
    )  # fmt: skip
    assert "trained_texts.json" in at_swap and "provenance.json" in at_swap
    assert json.loads((out_dir / "trained_texts.json").read_text())["texts"]
