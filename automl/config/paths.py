"""Where a run writes must be creatable before any compute; checking it writes nothing."""

from __future__ import annotations

import os
from pathlib import Path


def not_creatable(path: str | Path, folder: bool = False) -> str | None:
    """Why `path` (a folder, if `folder`) cannot be written or created; None when it can: it
    exists and is writable, or its nearest existing parent is a writable folder."""
    target = Path(path).absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if existing == target:
        if folder and not target.is_dir():
            return f"{target} is not a folder"
        return None if os.access(target, os.W_OK) else f"{target} is not writable"
    if not existing.is_dir():
        return f"cannot create {target} ({existing} is not a folder)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create {target} ({existing} is not writable)"
    return None
