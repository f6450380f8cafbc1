"""The sweep's Optuna study, kept in a journal file beside the summary so it outlives any one
Ray experiment (resume, extension, the report's importance plot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def fail_stale_trials(
    storage: Any, study_name: str, requeue_points: bool = False, drop_waiting: bool = False
) -> int:
    """Optuna trials still RUNNING belong to a killed driver, or to a round's end that cut them
    (pending, or before their first epoch): mark them FAIL, count them. `requeue_points`: an
    enqueued point (a warm start's) among them is enqueued again, so a later round runs it
    (an extension round enqueues no warm points). `drop_waiting`: the points still waiting
    fail too, where the round starting afresh enqueues every warm point itself (else each
    ran twice)."""
    from optuna.trial import TrialState

    study = existing_study(storage, study_name)
    if study is None:
        return 0
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        point = trial.system_attrs.get("fixed_params")
        if requeue_points and isinstance(point, dict):
            study.enqueue_trial(point, user_attrs=trial.user_attrs)
    if drop_waiting:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(stale)


def tell_unreported(
    storage: Any, study_name: str, scored: Sequence[tuple[Mapping[str, Any], list[float]]]
) -> int:
    """Give the study the values of trials Ray ended without telling the searcher (the time
    budget ran out while they trained): each still-RUNNING Optuna trial whose parameters are
    those of a scored trial (`scored`: its {dotted_key: value} and objective values) is told
    them, so the sampler, the importance plot and a resumed sweep learn from its best epoch
    instead of a failure. Returns how many were told."""
    from optuna.trial import TrialState

    from automl.search.trial import overrides_from_trial

    study = existing_study(storage, study_name)
    if study is None:
        return 0
    left = list(scored)
    told = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        params = overrides_from_trial(trial.params)
        match = next((i for i, (p, _) in enumerate(left) if dict(p) == params), None)
        if match is not None:
            study.tell(trial.number, left.pop(match)[1])
            told += 1
    return told
