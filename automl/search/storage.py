"""Ray's storage folder, written whole-file: a kill never leaves a file there half written.

Ray saves its experiment state (the trials', the searcher's, this sweep's records) in a staging
folder and copies it into the storage folder, in the background. A copy cut short by a kill (a
lost machine, SIGKILL) left a truncated file there; `Tuner.restore` then failed to read it and,
by Ray's design, started the experiment over as if new: seen here as a resumed 3-trial sweep
that ran and exported 1. Through this filesystem each file is written beside its final name and
renamed into place once complete, so the folder holds a file's old or its new version, never a
part. (pyarrow's `LocalFileSystem` is C++ and cannot be subclassed; `PyFileSystem` over fsspec's
local filesystem is the documented way to change one operation.)
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import pyarrow
from fsspec.implementations.local import LocalFileSystem
from pyarrow.fs import FSSpecHandler, PyFileSystem

PARTIAL_SUFFIX = ".partial"  # a file a kill cut short: never read (no glob of Ray's matches it)


class _ReplaceOnClose(io.FileIO):
    """A file written under a hidden name and renamed to `path` when closed."""

    def __init__(self, path: str) -> None:
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        self._final = path
        super().__init__(
            os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"), "wb"
        )

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        os.replace(self.name, self._final)


class _WholeFileWrites(FSSpecHandler):
    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pyarrow.PythonFile(_ReplaceOnClose(path), mode="w")


def whole_file_storage() -> PyFileSystem:
    """The filesystem Ray gets for the (local) storage folder: local paths, whole-file writes."""
    return PyFileSystem(_WholeFileWrites(LocalFileSystem()))
