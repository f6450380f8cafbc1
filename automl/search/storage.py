"""Ray's storage folder, written whole-file: a kill never leaves a file there half written.

Ray saves its experiment state (the trials', the searcher's, this sweep's records) in a staging
folder and copies it into the storage folder, in the background. A copy cut short by a kill
(SIGKILL, a stopped container) left a truncated file there; `Tuner.restore` then failed to read
it and, by Ray's design, started the experiment over as if new: seen here as a resumed 3-trial
sweep that ran and exported 1. Through this filesystem each file is written beside its final name
and renamed into place once complete, so after a kill the folder holds a file's old or its new
version, never a part (no fsync: a power cut is not covered). A copy that fails or is dropped
unclosed is deleted (a writer that closes a file it left short is not caught: Ray pickles
before it writes). pyarrow's `LocalFileSystem` is C++ and cannot be subclassed; `PyFileSystem`
over fsspec's local filesystem is pyarrow's documented way to change one operation.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow
from fsspec.implementations.local import LocalFileSystem
from pyarrow.fs import FSSpecHandler, PyFileSystem

from automl.train.checkpoint import drop_partial_copies, partial_name

__all__ = ["drop_partial_copies", "whole_file_storage"]


class _ReplaceOnClose(io.BufferedWriter):
    """A file written under a hidden name beside `path`, renamed to `path` when closed after
    every write went through; dropped unclosed or after a failed write, it is deleted. An
    experiment state copied while Ray was still writing it (an empty file: seen once here,
    the restore then read no JSON) never replaces the one stored before."""

    def __init__(self, path: str, stored: Callable[[str], None] | None = None) -> None:
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        self._final, self._failed, self._stored = path, False, stored
        self._written = 0
        self._partial = os.path.join(folder, partial_name(name))
        super().__init__(io.FileIO(self._partial, "wb"))
        self._opened = True

    def write(self, data: Any) -> int:
        try:
            written = super().write(data)  # buffered: all of it, or an error
            self._written += written
            return written
        except BaseException:
            self._failed = True
            raise

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self._failed = True
            raise
        finally:
            if not self._written and _STATE.fullmatch(os.path.basename(self._final)):
                self._failed = True  # no state at all: keep the one stored before
            if self._failed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._partial)
            else:
                os.replace(self._partial, self._final)
                if self._stored is not None:
                    self._stored(self._final)

    def __del__(self) -> None:
        if not getattr(self, "_opened", False):  # the partial file could not be made
            return
        if not self.closed:  # never closed: the copy failed part way
            self._failed = True
        super().__del__()


class _WholeFileWrites(FSSpecHandler):
    def open_output_stream(self, path: str, metadata: Any) -> Any:
        stored = _SUPERSEDED.state_stored if _STATE.fullmatch(os.path.basename(path)) else None
        return pyarrow.PythonFile(_ReplaceOnClose(path, stored), mode="w")

    def delete_dir(self, path: str) -> None:
        if _CHECKPOINT.fullmatch(os.path.basename(path.rstrip("/"))):
            _SUPERSEDED.add(path)  # Ray let go of it: a newer checkpoint of its trial came
        else:
            super().delete_dir(path)


class _Superseded:
    """Checkpoint folders Ray has let go of, deleted once a stored experiment state no longer
    names them. Ray deletes a trial's older checkpoint the moment a newer one arrives, but
    stores the state that names the newer one a little later: a kill in between left the
    stored state naming a deleted folder, and Ray then refused to restore that trial ("does not
    exist on storage anymore"). The state names a checkpoint by its path, in plain text or in
    a hex-encoded pickle. (Folders let go of by a killed driver stay: a later state may name
    them, and the sweep's own clean-up of checkpoints does not see them.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: set[str] = set()

    def add(self, path: str) -> None:
        with self._lock:
            self._folders.add(path.rstrip("/"))

    def state_stored(self, state_file: str) -> None:
        """Ray restores from the newest state file (by name); a resumed run uploads the older
        sessions' files again, which say nothing of its checkpoints."""
        experiment = os.path.dirname(state_file)
        stored = glob.glob(os.path.join(glob.escape(experiment), _STATE_GLOB))
        if os.path.basename(state_file) != max(map(os.path.basename, stored), default=None):
            return
        with self._lock:  # only this experiment's (one process may run several)
            folders = {f for f in self._folders if f.startswith(experiment + os.sep)}
        if not folders:
            return
        text = Path(state_file).read_text(errors="replace")
        named = {f for f in folders if f in text or f.encode().hex() in text}
        for folder in folders - named:
            shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            self._folders -= folders - named


_SUPERSEDED = _Superseded()  # one per process: Ray's driver deletes and stores through it
_STATE_GLOB = "experiment_state-*.json"
_STATE = re.compile(r"experiment_state-.+\.json")
_CHECKPOINT = re.compile(r"checkpoint_\d+")


def whole_file_storage() -> PyFileSystem:
    """The filesystem Ray gets for the (local) storage folder: local paths, whole-file writes."""
    return PyFileSystem(_WholeFileWrites(LocalFileSystem()))
