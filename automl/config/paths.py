"""Where a run writes must be creatable before any compute; checking it leaves nothing behind.
The JSON files a run writes are written whole (or not at all) and read back with one-line errors."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXPORT_MARKERS = ("provenance.json", "config.json")  # what every exported model folder holds


def not_creatable(path: str | Path, folder: bool = False) -> str | None:
    """Why `path` (a folder, if `folder`) cannot be written or created; None when it can: it
    exists and is writable, or its nearest existing parent is a writable folder."""
    target = Path(path).absolute()
    try:  # exists() raises where a folder on the way may not be entered (another user's)
        existing = next(p for p in (target, *target.parents) if p.exists())
    except OSError as err:
        why = err.strerror or type(err).__name__
        return f"cannot create {target} ({why}: {err.filename or target})"
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


def not_replaceable(out_dir: Path) -> str | None:
    """Why an export may not be written to `out_dir`; None when it may: the folder is absent,
    empty, or an earlier export (it holds provenance.json and config.json). Any other folder is
    the user's, and an export replaces the folder it is written to."""
    problem = _not_a_plain_folder(out_dir)
    if problem:
        return problem
    out_dir = Path(os.path.abspath(out_dir))  # `x/..` and `.` have no name to export beside
    problem = not_creatable(out_dir, folder=True)
    if problem or not out_dir.exists():
        return problem
    problem = not_creatable(out_dir.parent, folder=True)  # the new export is made beside it
    if problem:
        return problem
    try:
        if holds_export(out_dir):
            return _not_exported(out_dir) or _backup_in_the_way(out_dir)
        if not any(out_dir.iterdir()):
            return _backup_in_the_way(out_dir)
    except OSError as err:
        return f"{out_dir} cannot be listed ({err.strerror})"
    return f"{out_dir} holds files and is not an exported model, which an export would replace"


def _not_a_plain_folder(out_dir: Path) -> str | None:
    """An export trades its folder for a new one: a symbolic link was traded itself (the folder
    it named kept the old export, the link left as litter), and the current folder (`--out .`)
    or one holding it cannot be traded at all (a traceback after the whole rebuild)."""
    if out_dir.is_symlink():
        return (
            f"{out_dir} is a symbolic link, which an export would replace by a folder: remove "
            f"the link, or export to the folder it points to ({os.path.realpath(out_dir)})"
        )
    here, whole = Path.cwd().resolve(), out_dir.resolve()
    if whole == here or whole in here.parents:
        return (
            f"{out_dir} is the current folder or holds it, which an export would replace: "
            "name a folder inside it"
        )
    return None


EXPORT_FILES_KEY = "files"  # provenance.json: the names the export wrote into its folder


def _not_exported(out_dir: Path) -> str | None:
    """An export replaces its whole folder: files put there since (`automl-evaluate --out
    best/march.json`, an `onnx/` folder) were deleted with it. Exports that predate the list
    of their own files are replaced as before where their provenance names a sweep and a
    trial (another tool's `provenance.json` does not make its folder an export)."""
    try:
        provenance = read_json_object(out_dir / "provenance.json")
    except ValueError as err:  # edited, or another tool's: which files are the export's is
        return (  # not known, and files of the user's would go with the folder
            f"{err}: which files in {out_dir} an export wrote is not known, and an export "
            "replaces the folder: mend the file, or move the folder away"
        )
    own = provenance.get(EXPORT_FILES_KEY)
    if not isinstance(own, list):  # an export from before the list, or another tool's folder
        if all(isinstance(provenance.get(k), str) for k in ("sweep", "trial_id")):
            return None  # (`provenance.json` is a common name)
        return (
            f"{out_dir} holds files and is not an exported model (its provenance.json names no "
            "sweep and trial), which an export would replace"
        )
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in own and not _junk(p.name))
    if not foreign:
        return None
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    return (
        f"{out_dir} holds {', '.join(foreign[:3])}{more}, which no export wrote, and an export "
        "replaces the folder: move them out first"
    )


def _junk(name: str) -> bool:
    """What a file browser, a notebook or a killed write leaves: no one's work, so an export
    may replace it. Other hidden names (`.git/`, `.gitattributes` of a Hub clone) are kept."""
    return (
        name in (".DS_Store", ".ipynb_checkpoints")
        or name.startswith("._")  # macOS resource forks
        or (name.startswith(".") and name.endswith((".tmp", ".partial")))  # an interrupted write
    )


def holds_export(folder: Path) -> bool:
    """An exported model folder (or an export's backup): it holds every marker file."""
    return all((folder / f).is_file() for f in EXPORT_MARKERS)


def export_backup(out_dir: Path) -> Path:
    """Where an export moves the one it replaces when folders cannot trade places in one step
    (export/model_dir.py)."""
    return out_dir.parent / f".{out_dir.name}.old"


def _backup_in_the_way(out_dir: Path) -> str | None:
    """Where folders cannot trade places in one step (macOS, NFS), the export renames the old
    one to `.<name>.old` first: a folder of that name that is no export (a user's, or a backup
    half deleted) would stop the export after the whole sweep."""
    backup = export_backup(out_dir)
    if not backup.exists() or backup_is_an_export(out_dir):
        return None
    return f"{backup} is in the way of the export's backup of {out_dir.name}: move it away"


def backup_is_an_export(out_dir: Path) -> bool:
    """`.<name>.old` holds an export's backup and nothing else, so the next export may put it
    back or delete it: a backup with files put in it since (or a folder of the user's by that
    name) is left alone."""
    backup = export_backup(out_dir)
    try:
        return backup.is_dir() and holds_export(backup) and _not_exported(backup) is None
    except OSError:
        return False


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


def readable_as_umask_allows(folder: Path) -> None:
    """Files `transformers` wrote owner-only (its `save_pretrained` goes through a temporary
    file: `model.safetensors` comes out 0600) get the mode every other file gets under this
    process's umask, so that a shared export or a served MLflow model can be read by others."""
    mask = current_umask()
    for path in folder.rglob("*"):
        if not path.is_symlink() and path.is_file() and path.stat().st_mode & 0o777 == 0o600:
            path.chmod(0o666 & ~mask)


def current_umask() -> int:
    """This process's umask, read where Linux shows it: setting it to read it (os.umask) would
    open a moment in which another thread of the driver (MLflow's writer) creates files
    without it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # elsewhere: a moment of the strictest mask, never a looser one
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write, then rename over `path`: a kill midway leaves the old file or the new one, never
    half of one (a truncated summary.json would stop `automl-export` and a resume)."""
    # unique per writer: two containers (both pid 1) may share an output folder
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json_object(
    path: Path,
    keys: Sequence[str] = (),
    what: str = "a JSON object",
    error: type[Exception] = ValueError,
) -> dict:
    """`path` as a JSON object holding `keys`, else `error` with one line saying what is wrong
    (the caller's own error class, which its command prints): a file cut short by a kill,
    edited by hand, or another tool's. `what` names the file ("not <what> (no trials)")."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: not {what} (a JSON {type(data).__name__}, not an object)")
    missing = [key for key in keys if key not in data]
    if missing:
        raise error(f"{path}: not {what} (no {', '.join(missing)})")
    return data
