"""Provenance that travels: no absolute path of the machine that ran the sweep survives.

A path under the working directory (or the project) becomes relative to it; any other path keeps
only its file name, and the content fingerprints (data, search space, base model) say what it
was. The base model is named the way another machine can fetch it: a hub id, a package, or a
local folder's name plus a hash of its files.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from automl.config.schema import PROJECT_ROOT, ModelConfig

# an absolute path, alone or after a URI scheme that carries one (sqlite:////abs, file:///abs)
_ABSOLUTE = re.compile(r"^(?P<scheme>sqlite:///|file://)?(?P<path>(/|~/|[A-Za-z]:[\\/]).*)$")
# A Hub model id as a base model's source names it: `org/name`, or a canonical `name`.
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_HUB_ID = re.compile(r"\b([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*[A-Za-z0-9])\b")


def portable_path(value: str, cwd: Path | None = None) -> str:
    """`value` with any absolute path made relative (to `cwd`, else the project), or its name."""
    match = _ABSOLUTE.match(value)
    if not match:
        return value
    path = Path(os.path.expanduser(match["path"])).resolve()
    # `file://` takes an absolute path only: a relative one goes without it (mlruns)
    scheme = "" if match["scheme"] == "file://" else match["scheme"] or ""
    for root in (Path(cwd or Path.cwd()).resolve(), PROJECT_ROOT):
        if root.parent == root:
            continue  # `/` (a container's cwd): relative to it is the whole path
        if path == root:
            return scheme + "."
        if path.is_relative_to(root):
            return scheme + str(path.relative_to(root))
    return scheme + path.name


def portable(value: Any, cwd: Path | None = None) -> Any:
    """Every string inside `value` (dicts, lists) through `portable_path`."""
    if isinstance(value, str):
        return portable_path(value, cwd)
    if isinstance(value, dict):
        return {k: portable(v, cwd) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v, cwd) for v in value]
    return value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# An export's own records beside its model, rewritten by `automl-export` (the same weights) or
# an evaluation: no part of the model a later sweep fine-tunes (export/model_dir.py lists them
# among the files an export owns)
EXPORT_RECORDS = frozenset(
    {"README.md", "provenance.json", "test_evaluation.json", "trained_texts.json"}
)


def folder_sha256(folder: Path) -> str:
    """sha256 over the files that make a folder's model (relative names and contents, in
    sorted order): hidden files and folders left out (`.git/` changes on `git status` and
    `.cache/huggingface/` on every `hf download` of the same files), and an export's records
    (its card, provenance, scores: re-exporting the same weights rewrote them, and every model
    fine-tuned from it was then refused as trained on another base)."""
    return folder_sha256s(folder)[0]


# A sweep hashes a local base folder when it plans (what it started with) and again when it
# exports (the provenance): a 7B model's 14 GB were read twice. Per process, by what stat says.
_FILE_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def _unchanged_file_sha256(path: Path) -> str:
    """`file_sha256`, read again only where the file changed since (its size, modification
    and change times or inode differ: any write or replacement moves the change time)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = file_sha256(path)
    return _FILE_DIGESTS[key]


def folder_sha256s(folder: Path) -> tuple[str, str, str]:
    """(`folder_sha256`; the same with the export's records in, what exports before
    2026-12-07 recorded; the same over every file, hidden ones too, before 2026-12-06),
    each file read once."""
    model, visible, every = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder)
        entry = str(name).encode() + b"\0" + _unchanged_file_sha256(path).encode()
        every.update(entry)
        if not any(part.startswith(".") for part in name.parts):
            visible.update(entry)
            if str(name) not in EXPORT_RECORDS:
                model.update(entry)
    return model.hexdigest(), visible.hexdigest(), every.hexdigest()


def base_model_name(cfg: ModelConfig) -> dict[str, Any]:
    """How another machine gets the same base model: hub id, package, or folder name + hash."""
    if cfg.source == "tiny":
        return {"name": f"tiny-{cfg.tiny_arch}", "source": "tiny (random weights from a config)"}
    if cfg.source == "package":
        out: dict[str, Any] = {"name": _package_hub_id(cfg.package), "package": cfg.package}
        try:
            out["package_version"] = metadata.version(cfg.package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
        return out
    folder = Path(cfg.name_or_path).expanduser()
    if folder.is_dir():
        out = {"name": folder.name, "source": "local folder", "sha256": folder_sha256(folder)}
        earlier = export_provenance(folder)
        if earlier:  # an earlier export, fine-tuned again (on new data, say): its lineage
            details = earlier.get("base_model_details") or {}
            out["fine_tuned_from"] = {
                "sweep": earlier.get("sweep"),
                "trial": earlier.get("trial_id"),
                "base_model": earlier.get("base_model"),
                "hub_base_model": hub_base_model(details),
                # its own base, and so on down to the first one (an export's folder is `best`
                # at every step: the names alone said nothing past the first)
                "base_model_details": details,
            }
        return out
    return {"name": cfg.name_or_path, "source": "hub"}


def export_provenance(folder: Path) -> dict[str, Any] | None:
    """The provenance of an export of this project, where `folder` is one: a sweep, a trial
    and a base model named, its details a mapping (another tool's file, or a damaged one, is
    no lineage: the folder is a plain local folder then)."""
    import json

    try:
        loaded = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(loaded, dict):
        return None
    named = all(isinstance(loaded.get(k), str) for k in ("sweep", "trial_id", "base_model"))
    details = loaded.get("base_model_details", {})
    parent = details.get("fine_tuned_from", {}) if isinstance(details, dict) else None
    return loaded if named and isinstance(details, dict) and isinstance(parent, dict) else None


def is_hub_id(name: str) -> bool:
    """`org/model` or a canonical `model`; not a path (`./x`, `/x/y`)."""
    return bool(_HUB_NAME.fullmatch(name))


def hub_base_model(details: dict[str, Any]) -> str | None:
    """The Hub id at the root of a base model's lineage (the card's `base_model` metadata,
    which names Hub models): itself for a Hub or packaged model, an earlier export's root for
    an export fine-tuned again; None for a local folder or a tiny model."""
    name = str(details.get("name") or "")
    if details.get("source") == "hub":  # `roberta-base` as well as `org/model`
        return name if is_hub_id(name) else None
    if details.get("package"):  # the id its docstring names, else the package's own name
        return name if _HUB_ID.fullmatch(name) else None
    parent = details.get("fine_tuned_from") or {}
    return parent.get("hub_base_model")


def _package_hub_id(package: str) -> str:
    """The hub id a model package says it packages (its docstring), else the package name."""
    try:
        doc = importlib.import_module(package).__doc__ or ""
    except ImportError:
        return package
    found = _HUB_ID.search(doc)
    return found.group(1) if found else package


# provenance["export_rule"]["rule"] of a trial exported by hand (`automl-export --trial`)
MANUAL = "manual"


def portable_model_provenance(conf: Any, provenance: dict[str, Any]) -> dict[str, Any]:
    """The base model's portable name (and how to get it), and the search-space file's hash."""
    model = base_model_name(conf.model)
    out: dict[str, Any] = {"base_model": model["name"], "base_model_details": model}
    space = provenance.get("search_space")
    if isinstance(space, str) and Path(space).is_file():
        out["search_space_sha256"] = file_sha256(Path(space))
    return out


def lineage(details: dict[str, Any]) -> str:
    """ ", an export of sweep `v1` (trial `3f5e02d6`), itself fine-tuned from `org/model`" for a
    base model that is an earlier export, the whole chain where that one was too; empty
    otherwise."""
    parent = details.get("fine_tuned_from")
    if not isinstance(parent, dict) or not parent:
        return ""
    deeper = parent.get("base_model_details")
    earlier = lineage(deeper) if isinstance(deeper, dict) else ""
    return (
        f", an export of sweep `{parent.get('sweep')}` (trial `{parent.get('trial')}`), itself "
        "fine-tuned from "
        + (earlier.removeprefix(", ") if earlier else f"`{parent.get('base_model')}`")
    )


def provenance_lines(provenance: dict[str, Any]) -> list[str]:
    """The card's section on where the model came from and how to re-train it."""
    fp = provenance.get("data_fingerprint") or {}
    details = provenance.get("base_model_details") or {}
    counts = ", ".join(f"{n} {k}" for k, n in (fp.get("counts") or {}).items())
    lines = ["## Provenance", ""]
    lines.append(
        f"- base model: `{provenance.get('base_model')}`"
        + (f" (package `{details['package']}`)" if details.get("package") else "")
        + (f" (folder sha256 `{details['sha256'][:16]}…`)" if details.get("sha256") else "")
        + lineage(details)
    )
    if fp:
        lines.append(f"- data: sha256 `{fp.get('sha256', '')[:16]}…` over ({counts}) examples")
    lines.append(f"- search space: `{provenance.get('search_space')}`")
    rule = provenance.get("export_rule")
    if isinstance(rule, dict) and rule.get("rule") == MANUAL:
        lines.append("- chosen by hand (`automl-export --trial`), not by the sweep's export rule")
    elif isinstance(rule, dict) and rule.get("rule") not in (None, "best"):
        lines.append(
            f"- chosen by export rule `{rule['rule']}` (tolerance {rule.get('tolerance')})"
        )
    if isinstance(rule, dict) and rule.get("outside_rule"):
        lines.append(
            "- not the rule's own choice: the trials it named had lost their checkpoints "
            "(sweep.keep_checkpoints=false), so this is the best trial that kept its own"
        )
    lines.append(f"- git commit `{provenance.get('git_commit')}`; versions in `provenance.json`")
    on_gpu = provenance.get("trained_on") == "cuda"
    lines += [
        "",
        "Re-train this trial from its provenance (same seed) and compare the metric"
        + (
            " (it trained on a GPU: re-run it on one; a CPU re-run may differ):"
            if on_gpu
            else " (CPU):"
        ),
        "",
        "```bash",
        "automl-reproduce path/to/this/folder/provenance.json"
        + (" --device cuda" if on_gpu else ""),
        "```",
        "",
    ]
    return lines
