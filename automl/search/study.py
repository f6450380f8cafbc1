"""The sweep's Optuna study, kept in a journal file beside the summary so it outlives any one
Ray experiment (resume, extension, the report's importance plot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STUDY_FILE = "optuna.journal"


def study_storage(out_dir: Path) -> Any:
    """The Optuna study lives in a journal file, so it outlives any one Ray experiment."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    out_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(out_dir / STUDY_FILE)))


def existing_study(storage: Any, study_name: str) -> Any | None:
    """The sweep's Optuna study in `storage`, or None when it holds no study of that name."""
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


def fail_stale_trials(storage: Any, study_name: str) -> int:
    """Optuna trials still RUNNING belong to a killed driver: mark them FAIL, count them."""
    from optuna.trial import TrialState

    study = existing_study(storage, study_name)
    if study is None:
        return 0
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(stale)
