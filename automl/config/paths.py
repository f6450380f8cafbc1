"""Where a run writes must be creatable before any compute; checking it leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def not_creatable(path: str | Path, folder: bool = False) -> str | None:
    """Why `path` (a folder, if `folder`) cannot be written or created; None when it can: it
    exists and is writable, or its nearest existing parent is a writable folder."""
    target = Path(path).absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if existing == target:
        if folder and not target.is_dir():
            return f"{target} is not a folder"
        writable = _can_create_in(target) if target.is_dir() else _can_append_to(target)
        return None if writable else f"{target} is not writable"
    if not existing.is_dir():
        return f"cannot create {target} ({existing} is not a folder)"
    if not _can_create_in(existing):
        return f"cannot create {target} ({existing} is not writable)"
    return None


def _can_create_in(folder: Path) -> bool:
    """Tried, not asked: `os.access` tells root yes where the kernel then says no (/proc, /sys,
    root-squashed NFS), so a file is created in `folder` and removed at once."""
    try:
        handle, name = tempfile.mkstemp(prefix=".automl-write-check-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def _can_append_to(file: Path) -> bool:
    """An existing file (a SQLite store) opened for appending, and closed unchanged."""
    try:
        with open(file, "ab"):
            return True
    except OSError:
        return False
