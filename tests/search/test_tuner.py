"""The sweep's searcher survives a resumed trial that the Optuna journal already finished."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from automl.search.tuner import JournalSafeOptunaSearch

SPACE = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}


def _searcher(cls: type, storage: optuna.storages.BaseStorage) -> OptunaSearch:
    searcher = cls(space=SPACE, metric="m", mode="max", storage=storage, study_name="s")
    assert searcher.suggest("t1") is not None
    return searcher


@pytest.mark.parametrize("cls", [OptunaSearch, JournalSafeOptunaSearch])
def test_a_result_for_a_trial_the_journal_finished(cls: type, tmp_path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal")))
    searcher = _searcher(cls, storage)
    # the journal says the trial finished (the driver told it before it was killed) ...
    study = optuna.load_study(study_name="s", storage=storage)
    study.tell(study.trials[0].number, 0.5)
    # ... and Ray, restored from an older checkpoint, resumes it and reports its last epoch again
    result = {"m": 0.5, "training_iteration": 3}
    if cls is OptunaSearch:
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            searcher.on_trial_result("t1", result)
    else:
        searcher.on_trial_result("t1", result)  # ignored: the study already holds the value
        searcher.on_trial_complete("t1", result)
        assert [t.value for t in optuna.load_study(study_name="s", storage=storage).trials] == [0.5]


@pytest.mark.parametrize("cls", [OptunaSearch, JournalSafeOptunaSearch])
def test_the_end_of_a_trial_the_journal_finished(
    cls: type, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ray restarts a trial that had ended (its end came after Ray's last save); it ends at
    once, without a result, and its end is told again."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal")))
    searcher = _searcher(cls, storage)
    optuna.load_study(study_name="s", storage=storage).tell(0, 0.5)
    searcher.on_trial_complete("t1", {"m": 0.5})
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Cannot tell a COMPLETE trial" in w for w in warned) == (cls is OptunaSearch)
    assert [t.value for t in optuna.load_study(study_name="s", storage=storage).trials] == [0.5]


@pytest.mark.parametrize("cls", [OptunaSearch, JournalSafeOptunaSearch])
def test_an_epoch_repeated_after_a_resume_is_no_warning(cls: type, tmp_path: Path) -> None:
    """A trial resumed after a kill repeats the epoch Ray had not checkpointed: Optuna keeps
    the first value of that step and warned (a UserWarning in the middle of the sweep's log)."""
    import warnings

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal")))
    searcher = _searcher(cls, storage)
    searcher.on_trial_result("t1", {"m": 0.4, "training_iteration": 77})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        searcher.on_trial_result("t1", {"m": 0.45, "training_iteration": 77})
    said = [str(w.message) for w in caught if "already reported" in str(w.message)]
    assert bool(said) == (cls is OptunaSearch)
    trial = optuna.load_study(study_name="s", storage=storage).trials[0]
    assert trial.intermediate_values == {77: 0.4}  # the study keeps what it was told first


@pytest.mark.parametrize("moved", [False, True])
def test_a_restored_searcher_keeps_its_study_in_the_journal_it_is_given(
    tmp_path: Path, moved: bool
) -> None:
    """Ray pickles the searcher with the journal's absolute path: a sweep folder copied and
    resumed mid-round told the copy's trials to the original's journal (moved away: a
    FileNotFoundError). Given the folder's journal as this driver sees it, it keeps to that."""
    import shutil

    from automl.search.study import study_storage

    original, copy = tmp_path / "a", tmp_path / "b"
    searcher = _searcher(JournalSafeOptunaSearch, study_storage(original))
    searcher.on_trial_result("t1", {"m": 0.4, "training_iteration": 1})
    searcher.save(str(tmp_path / "searcher.pkl"))  # Ray's save of the searcher, mid-round
    before = (original / "optuna.journal").read_bytes()
    shutil.copytree(original, copy)
    if moved:
        shutil.rmtree(original)
    # what Ray restores: the searcher pickled when the round began, then its saved state
    restored = JournalSafeOptunaSearch(
        space=SPACE, metric="m", mode="max", storage=study_storage(tmp_path / "c"),
        study_name="s",
    )  # fmt: skip
    restored.use_storage(study_storage(copy))
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_result("t1", {"m": 0.5, "training_iteration": 2})
    restored.on_trial_complete("t1", {"m": 0.5})
    assert restored.suggest("t2") is not None
    trials = optuna.load_study(study_name="s", storage=study_storage(copy)).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "RUNNING"]
    assert trials[0].value == 0.5 and trials[0].intermediate_values == {1: 0.4, 2: 0.5}
    if not moved:  # the original's journal as it was
        assert (original / "optuna.journal").read_bytes() == before
    else:
        assert not original.exists()
