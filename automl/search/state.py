"""What a sweep needs to resume after a kill, or to be extended once finished.

Ray Tune restores an interrupted experiment (`Tuner.restore`), but cannot add trials to a
finished one. So a sweep runs in rounds: round 0 is the Ray experiment `<sweep>`, an extension
is a new Ray experiment `<sweep>-r<k>` whose Optuna study is the same one (a journal file
beside the summary), so the sampler keeps the whole history. This file records the phase and
the trials of the rounds already ended.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from automl.config.paths import read_json_object, write_text_atomic
from automl.config.schema import ConfigError

log = logging.getLogger(__name__)

STATE_FILE = "sweep_state.json"
RAY_TUNER_FILE = "tuner.pkl"  # Ray Tune writes it into an experiment folder as a Tuner is made
# which sweep a Ray experiment folder belongs to: a shared `paths.storage` holds the folders of
# every sweep of the same name, from any output folder
OWNER_FILE = "automl_sweep.json"


PHASES = ("new", "running", "exporting", "finished")


@dataclass
class SweepState:
    phase: str = "new"  # one of PHASES
    round: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)  # trials of ended rounds
    # what its trials learn from (search/identity.py); empty in states from before 2026-12-05
    started_with: dict[str, Any] = field(default_factory=dict)
    # how the current round's Ray experiment was set up (`round_settings`): resumed after a
    # kill, Ray restores it with these; empty in states from before 2026-12-06
    round_settings: dict[str, Any] = field(default_factory=dict)
    # the sweep's MLflow parent run, reopened on resume; "" while it ran untracked, None in
    # states from before 2026-12-06
    mlflow_run_id: str | None = None
    # this sweep's id, in each of its Ray experiment folders (OWNER_FILE); "" before 2026-12-06
    sweep_id: str = ""
    # seconds of the round's time budget spent in sittings a stop (Ctrl-C, SIGTERM) ended
    round_spent_s: float = 0.0
    # the Ray folder (paths.storage) the current round's experiment is in; "" before 2026-12-06
    # (evening)
    storage: str = ""
    # wall seconds of the sweep's sittings so far (kept up to date as this one runs), so a
    # resumed sweep's wall_s is the whole sweep's, not its last sitting's
    wall_s: float = 0.0

    def sitting_started(self, at: float) -> float:
        """This sitting began `at` (time.time()): each save from here counts it in `wall_s`.
        Returns the earlier sittings' seconds."""
        self._sitting = (self.wall_s, at)
        return self.wall_s

    @classmethod
    def load(cls, out_dir: Path) -> SweepState:
        """The saved state, or a new one where there is none. A file that is no sweep state
        (edited by hand, another tool's) is one line; keys it does not know are left out."""
        path = out_dir / STATE_FILE
        if not path.is_file():
            return cls()
        saved = read_json_object(path, ("phase",), "a sweep's state", ConfigError)
        for name, kind in _STATE_TYPES.items():  # a value of another type failed later, as
            if name not in saved:  # a TypeError traceback mid-resume
                continue
            value = saved[name]
            wrong = not isinstance(value, kind) or isinstance(value, bool)
            if wrong or (name == "records" and not all(isinstance(r, dict) for r in value)):
                raise ConfigError(
                    f"{path}: {name}: {json.dumps(value)[:80]} is not what a sweep's state "
                    "holds there (edited by hand?)"
                )
        if saved["phase"] not in PHASES:
            raise ConfigError(f"{path}: phase: {saved['phase']!r} is not one of {list(PHASES)}")
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})

    def round_budget_s(self, configured: float | None) -> float | None:
        """The current round's time budget: the one it was started with (a restored round
        keeps it), else the configured one."""
        return self.round_settings.get("sweep.time_budget_s", configured)

    def extends(self, num_samples: int) -> bool:
        """Whether resuming with `num_samples` adds a round: the sweep ended with fewer trials."""
        return self.phase == "finished" and num_samples > len(self.records)

    def save(self, out_dir: Path) -> None:
        """Atomically (write, then rename), so a kill never leaves half a file."""
        out_dir.mkdir(parents=True, exist_ok=True)
        sitting: tuple[float, float] | None = getattr(self, "_sitting", None)
        if sitting is not None:  # (the earlier sittings' seconds, when this one began)
            self.wall_s = round(sitting[0] + time.time() - sitting[1], 1)
        write_text_atomic(out_dir / STATE_FILE, json.dumps(asdict(self), indent=2))


# what each saved field must be (`SweepState.load`)
_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "phase": str, "round": int, "records": list, "started_with": dict, "round_settings": dict,
    "mlflow_run_id": (str, type(None)), "sweep_id": str, "round_spent_s": (int, float),
    "storage": str, "wall_s": (int, float),
}  # fmt: skip


def round_settings(conf: Any) -> dict[str, Any]:
    """The settings a round's Ray experiment is built with and keeps when `Tuner.restore`
    resumes it after a kill (its TuneConfig and failure config: budget, concurrency, trial
    count, the searcher's sampler, the ASHA scheduler); new values apply from the next round."""
    s, pruner = conf.sweep, conf.pruner
    uses_asha = "asha" in pruner.name
    return {
        "sweep.num_samples": s.num_samples,  # Ray restores the round's trial count
        "sweep.time_budget_s": s.time_budget_s,
        "sweep.max_concurrent": s.max_concurrent,
        "sweep.max_failures": s.max_failures,
        "sampler.name": conf.sampler.name,
        "sampler.seed": conf.sampler.seed,
        "sampler.n_startup_trials": conf.sampler.n_startup_trials,
        "ASHA": (
            f"grace {pruner.asha_grace_period}, reduction {pruner.asha_reduction_factor:g}"
            if uses_asha else "off"
        ),
    }  # fmt: skip


def settings_kept(before: SweepState, conf: Any) -> str:
    """For a resume of an interrupted round: the settings it goes on with that differ from
    this command's ('sweep.time_budget_s 60 (not 120)'), or ''."""
    if before.phase != "running" or not before.round_settings:
        return ""
    now = round_settings(conf)
    kept = [
        f"{key} {_shown(value)} (not {_shown(now[key])})"
        for key, value in before.round_settings.items()
        if key in now and value != now[key]
    ]
    return ", ".join(kept)


def _shown(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def restorable(experiment_dir: Path) -> bool:
    """Whether Ray saved the experiment, so `Tuner.restore` can resume it (Ray's own
    `Tuner.can_restore` looks for the same file; this one needs no Ray import, for the plan)."""
    return (experiment_dir / RAY_TUNER_FILE).is_file()


def experiment_name(sweep: str, round_: int) -> str:
    return sweep if round_ == 0 else f"{sweep}-r{round_}"


def own_experiments(storage: Path, sweep: str, rounds: int) -> list[Path]:
    """The Ray experiment folders of this sweep's rounds 0..`rounds` that exist in `storage` (a
    fresh start deletes them). Only those: `<sweep>-r<k>` past the sweep's own rounds may be
    another sweep's, one named so (`bert-r1` beside `bert`), and is never this sweep's to delete."""
    folders = (storage / experiment_name(sweep, k) for k in range(rounds + 1))
    return [folder for folder in folders if folder.is_dir()]


def round_clash(storage: Path, sweep: str, next_round: int | None = None) -> str | None:
    """Why this sweep would share a Ray experiment folder with another sweep in `storage`
    (only a shared `paths.storage` holds several sweeps): its name is another sweep's round, or
    the round it is about to start (`next_round`, an extension) is a folder already there."""
    named_like_a_round = re.fullmatch(r"(.+)-r(\d+)", sweep)
    if named_like_a_round and (storage / named_like_a_round[1]).is_dir():
        other, k = named_like_a_round[1], named_like_a_round[2]
        return f"{sweep!r} is also the Ray experiment of round {k} of sweep {other!r} there"
    folder = storage / experiment_name(sweep, next_round) if next_round else None
    if folder is not None and folder.exists():
        return f"{folder} is not a round of this sweep (another sweep's?); move it away"
    return None


LOCK_FILE = ".sweep.lock"  # held by the driver running the sweep (`sweep_lock`)
# 0.1 s apart: `check_not_running` holds the lock for an instant (its probe says a running
# sweep before the data are read; the lock itself is taken after them, so a sweep refused on
# its data writes nothing, not even its folder)
LOCK_TRIES = 10


def storage_lock_file(sweep: str) -> str:
    """The lock a sweep holds in a `paths.storage` of its choosing: two sweeps of one name
    from two output folders, started together, each found no other's mark there (none was
    written yet), and the later one deleted the earlier one's live Ray experiment."""
    return f".{sweep}.sweep.lock"


def state_text(out_dir: Path) -> str | None:
    """The sweep's state file as it is on disk (None: none): a plan made from it is stale once
    it differs."""
    try:
        return (out_dir / STATE_FILE).read_text(encoding="utf-8")
    except OSError:
        return None


@contextlib.contextmanager
def sweep_lock(out_dir: Path, sweep: str, lock_file: str = LOCK_FILE) -> Iterator[None]:
    """One driver per sweep folder. The same command started twice (a scheduler's requeue while
    the first job still runs, a second terminal) made the second delete the first's Optuna
    study and live Ray experiment as a fresh start, or restore it again as a resume, and both
    wrote the summary, the export and the MLflow runs. An advisory lock (flock) on a file in
    the folder, released when the driver ends, however it ends. Also taken on a shared
    `paths.storage` (`storage_lock_file`)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock to take
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle = _lock_file_opened(out_dir / lock_file)
    except OSError as err:
        log.warning("sweep %s: %s cannot be locked (%s): not guarded against a second driver",
                    sweep, out_dir / lock_file, err.strerror)  # fmt: skip
        yield
        return
    with handle:
        for tries_left in reversed(range(LOCK_TRIES)):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    # a filesystem without flock (Lustre without -o flock, some FUSE/CIFS
                    # mounts; NFS, for a lock file opened read-only)
                    log.warning("sweep %s: %s cannot be locked (%s): not guarded against a "
                                "second driver", sweep, out_dir, err.strerror)  # fmt: skip
                    yield
                    return
                if not tries_left:
                    handle.seek(0)
                    raise _running(sweep, handle, out_dir) from None
                time.sleep(0.1)  # held for an instant by another start's probe, perhaps
        if handle.writable():  # who holds it, for the next driver's refusal
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()}")
            handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_not_running(out_dir: Path, sweep: str, lock_file: str = LOCK_FILE) -> None:
    """`sweep_lock`'s refusal before the data are read (it is taken after them: a large
    dataset was read and tokenized first). A probe that writes nothing, held for an instant;
    where the lock cannot be probed, `sweep_lock` decides."""
    try:
        import fcntl

        handle = open(out_dir / lock_file, encoding="utf-8")
    except (ImportError, OSError):  # not POSIX, or no lock file: nobody holds it
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _running(sweep, handle, out_dir) from None
            return
        fcntl.flock(handle, fcntl.LOCK_UN)


def _running(sweep: str, lock: TextIO, out_dir: Path) -> ConfigError:
    holder = lock.read().strip() or "another process"
    return ConfigError(
        f"config: sweep.name: sweep {sweep} is running in {holder} ({out_dir}): wait for it to "
        "end, or give this run another sweep.name"
    )


def _lock_file_opened(path: Path) -> TextIO:
    """The lock file, to write who holds it; read-only where it is another user's (a shared
    storage: flock needs no write, where the filesystem allows it)."""
    try:
        return open(path, "a+", encoding="utf-8")
    except PermissionError:
        return open(path, encoding="utf-8")


def not_a_sweep_folder(out_dir: Path) -> str | None:
    """Why a sweep may not write into `out_dir` (summary.json, config.json, ...); None when it
    may: the folder is absent, empty, or holds a file only a sweep writes."""
    from automl.data.quality import REPORT_FILE
    from automl.search.study import STUDY_FILE

    named = (STATE_FILE, STUDY_FILE, REPORT_FILE)
    own = (*named, LOCK_FILE)  # the lock alone: a sweep refused after taking it
    try:
        if not out_dir.is_dir() or not any(out_dir.iterdir()):
            return None
    except OSError as err:
        return f"{out_dir} cannot be listed ({err.strerror})"
    if any((out_dir / name).exists() for name in own):
        return None
    return f"{out_dir} holds files and is not a sweep's folder (none of {', '.join(named)})"


def own_storage(storage: Path, out_dir: Path) -> bool:
    """Whether the Ray storage lies inside the sweep's own folder (the default, `<out>/ray`):
    the folder's lock holds it, and an experiment there that no sweep marked is this one's."""
    return storage.resolve().is_relative_to(out_dir.resolve())


def finish_again(trials: int) -> str:
    """The overrides that run a finished sweep's export (and registration) again and nothing
    else: `sweep.resume=true` alone starts a new round where the sweep holds fewer trials than
    its num_samples (a time budget cut it: `SweepState.extends`)."""
    return f"sweep.resume=true sweep.num_samples={trials}"


def not_ray_experiments(
    storage: Path, sweep: str, rounds: int = 0, sweep_id: str = "", *, unmarked_ours: bool = False
) -> str | None:
    """Why a sweep may not delete (start fresh) or resume the folders in `storage` of its Ray
    experiments; None when each is empty, or Ray Tune's (it holds tuner.pkl) and marked as
    this sweep's or an abandoned one's: a second output folder's sweep of the same name on a
    shared storage deleted the first's experiment, or resumed its trials as its own. A folder
    no sweep marked (a sweep marks its own before Ray writes) is this one's only where
    `unmarked_ours`: its storage is inside its output folder, or its state is older than the
    marks; in a shared storage it is another tool's Ray Tune run, deleted by a fresh start."""
    try:
        for folder in own_experiments(storage, sweep, rounds):
            written = [f for f in folder.iterdir() if f.name != OWNER_FILE]
            if written and not (folder / RAY_TUNER_FILE).is_file():
                return (
                    f"{folder} holds files Ray Tune did not write (no {RAY_TUNER_FILE}); "
                    f"sweep {sweep!r} would delete it"
                )
            owner = _owner(folder)
            if written and owner is None and not unmarked_ours:
                return (
                    f"{folder} is a Ray Tune experiment no sweep marked as its own (another "
                    f"tool's run, or a sweep's from before 2026-12-06); sweep {sweep!r} would "
                    "delete it: move it, name this sweep differently (sweep.name=...), or give "
                    "it its own paths.storage"
                )
            if owner and owner.get("sweep_id") != sweep_id and not _abandoned(owner):
                where = owner.get("output_dir") or "another output folder"
                return (
                    f"{folder} is the Ray experiment of the sweep {sweep!r} in {where}, not this "
                    "one's; name this sweep differently (sweep.name=...), give it its own "
                    "paths.storage, or delete that folder if its sweep is gone"
                )
    except OSError as err:
        return f"{storage} cannot be listed ({err.strerror})"
    return None


def holds_output(storage: Path, sweep: str, rounds: int, out_dir: Path) -> str | None:
    """Why the Ray experiment folders of rounds 0..`rounds` would hold the sweep's own output
    folder (`paths.storage` = the outputs folder): a fresh start deleted its own state and
    study with them, then failed with a traceback."""
    for k in range(rounds + 1):
        folder = (storage / experiment_name(sweep, k)).resolve()
        if folder == out_dir or folder in out_dir.parents:
            return (
                f"the Ray experiment folder {folder} would hold the sweep's own folder "
                f"{out_dir}, which a fresh start deletes; give paths.storage a folder of its own"
            )
    return None


def mark_owner(experiment_dir: Path, sweep_id: str, out_dir: Path) -> None:
    """Say whose Ray experiment folder this is (`not_ray_experiments` reads it)."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    record = {"sweep_id": sweep_id, "output_dir": str(out_dir), "host": socket.gethostname()}
    write_text_atomic(experiment_dir / OWNER_FILE, json.dumps(record, indent=2))


def _abandoned(owner: dict[str, Any]) -> bool:
    """Whether the sweep that marked a folder is provably gone: its output folder, on this
    machine, records no sweep or another one (started afresh since). An output folder of
    another machine (the same path may exist here too) is not provably gone."""
    out = owner.get("output_dir")
    host = owner.get("host")  # absent in marks of the first version (2026-12-06 morning)
    if (host is not None and host != socket.gethostname()) or not out or not Path(out).is_dir():
        return False
    if not (Path(out) / STATE_FILE).is_file():
        return True
    try:
        recorded = SweepState.load(Path(out)).sweep_id
    except (OSError, ValueError):  # ConfigError too: not provably gone
        return False
    return bool(recorded) and recorded != owner.get("sweep_id")


def marked_for(experiment_dir: Path, out_dir: Path) -> bool:
    """Marked by a sweep in this output folder on this machine (a copy elsewhere at the same
    path, on a storage both machines mount, is another sweep)."""
    owner = _owner(experiment_dir) or {}
    out = owner.get("output_dir")
    here = owner.get("host") == socket.gethostname()
    return here and isinstance(out, str) and Path(out).resolve() == out_dir.resolve()


def checkpoint_here(recorded: str, storage: Path) -> str:
    """The checkpoint a record names (<storage>/<experiment>/<trial>/<checkpoint>, an absolute
    path) as found under this sweep's `storage`: a sweep folder moved or copied since records
    the original's paths, and a copy's own is used even where the original's still exists (it
    may be changed or deleted by the original's sweep); a path found nowhere here stays as it is."""
    if not recorded or Path(recorded).resolve().is_relative_to(storage.resolve()):
        return recorded
    parts = Path(recorded).parts
    here = storage.resolve().joinpath(*parts[-3:]) if len(parts) > 3 else None
    return str(here) if here is not None and here.is_dir() else recorded


def _owner(folder: Path) -> dict[str, Any] | None:
    path = folder / OWNER_FILE
    if not path.is_file():
        return None  # a folder from before 2026-12-06, or killed before it was marked
    try:
        return read_json_object(path)
    except (OSError, ValueError):
        return {"sweep_id": None}  # unreadable: not provably this sweep's


def remove_experiment(folder: Path) -> None:
    """Delete a Ray experiment folder, its tuner.pkl last: a kill midway leaves a folder still
    known as Ray Tune's, which the next sweep may delete (`not_ray_experiments`). A link goes,
    not what it points to (its target was emptied, then the link failed to go); no folder,
    nothing to do."""
    if folder.is_symlink():
        folder.unlink()
        return
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.name not in (RAY_TUNER_FILE, OWNER_FILE):  # still whose it is, to the end
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.rmtree(folder)
