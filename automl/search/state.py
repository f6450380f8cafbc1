"""What a sweep needs to resume after a kill, or to be extended once finished.

Ray Tune restores an interrupted experiment (`Tuner.restore`), but cannot add trials to a
finished one. So a sweep runs in rounds: round 0 is the Ray experiment `<sweep>`, an extension
is a new Ray experiment `<sweep>-r<k>` whose Optuna study is the same one (a journal file
beside the summary), so the sampler keeps the whole history. This file records the phase and
the trials of the rounds already ended.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automl.config.paths import write_text_atomic

STATE_FILE = "sweep_state.json"
RAY_TUNER_FILE = "tuner.pkl"  # Ray Tune writes it into an experiment folder as a Tuner is made


@dataclass
class SweepState:
    phase: str = "new"  # new | running | exporting | finished
    round: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)  # trials of ended rounds

    @classmethod
    def load(cls, out_dir: Path) -> SweepState:
        path = out_dir / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else cls()

    def save(self, out_dir: Path) -> None:
        """Atomically (write, then rename), so a kill never leaves half a file."""
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / STATE_FILE, json.dumps(asdict(self), indent=2))


def experiment_name(sweep: str, round_: int) -> str:
    return sweep if round_ == 0 else f"{sweep}-r{round_}"


def is_own_experiment(folder: str, sweep: str) -> bool:
    """A Ray experiment folder of this sweep (`<sweep>` or `<sweep>-r<k>`), never another
    sweep's that shares the storage and merely starts with the same name (`<sweep>-roberta`)."""
    return re.fullmatch(re.escape(sweep) + r"(-r\d+)?", folder) is not None


def own_experiments(storage: Path, sweep: str) -> list[Path]:
    """The folders in `storage` named like this sweep's Ray experiments (a fresh start deletes
    them)."""
    if not storage.is_dir():
        return []
    return sorted(
        folder
        for folder in storage.glob(glob.escape(sweep) + "*")
        if folder.is_dir() and is_own_experiment(folder.name, sweep)
    )


def not_a_sweep_folder(out_dir: Path) -> str | None:
    """Why a sweep may not write into `out_dir` (summary.json, config.json, ...); None when it
    may: the folder is absent, empty, or holds a file only a sweep writes."""
    from automl.data.quality import REPORT_FILE
    from automl.search.study import STUDY_FILE

    own = (STATE_FILE, STUDY_FILE, REPORT_FILE)
    try:
        if not out_dir.is_dir() or not any(out_dir.iterdir()):
            return None
    except OSError as err:
        return f"{out_dir} cannot be listed ({err.strerror})"
    if any((out_dir / name).exists() for name in own):
        return None
    return f"{out_dir} holds files and is not a sweep's folder (none of {', '.join(own)})"


def not_ray_experiments(storage: Path, sweep: str) -> str | None:
    """Why a new sweep may not delete the folders in `storage` named like its Ray experiments;
    None when each is empty or Ray Tune's (it holds tuner.pkl)."""
    try:
        for folder in own_experiments(storage, sweep):
            if any(folder.iterdir()) and not (folder / RAY_TUNER_FILE).is_file():
                return (
                    f"{folder} holds files Ray Tune did not write (no {RAY_TUNER_FILE}); "
                    f"sweep {sweep!r} would delete it"
                )
    except OSError as err:
        return f"{storage} cannot be listed ({err.strerror})"
    return None


def remove_experiment(folder: Path) -> None:
    """Delete a Ray experiment folder, its tuner.pkl last: a kill midway leaves a folder still
    known as Ray Tune's, which the next sweep may delete (`not_ray_experiments`)."""
    for child in folder.iterdir():
        if child.name != RAY_TUNER_FILE:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.rmtree(folder)
