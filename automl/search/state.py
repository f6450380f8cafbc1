"""What a sweep needs to resume after a kill, or to be extended once finished.

Ray Tune restores an interrupted experiment (`Tuner.restore`), but cannot add trials to a
finished one. So a sweep runs in rounds: round 0 is the Ray experiment `<sweep>`, an extension
is a new Ray experiment `<sweep>-r<k>` whose Optuna study is the same one (a journal file
beside the summary), so the sampler keeps the whole history. This file records the phase and
the trials of the rounds already ended.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "sweep_state.json"


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
        tmp = out_dir / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(out_dir / STATE_FILE)


def experiment_name(sweep: str, round_: int) -> str:
    return sweep if round_ == 0 else f"{sweep}-r{round_}"


def is_own_experiment(folder: str, sweep: str) -> bool:
    """A Ray experiment folder of this sweep (`<sweep>` or `<sweep>-r<k>`), never another
    sweep's that shares the storage and merely starts with the same name (`<sweep>-roberta`)."""
    return re.fullmatch(re.escape(sweep) + r"(-r\d+)?", folder) is not None
