"""Ray's storage folder is written whole-file: a kill mid-copy cannot leave a torn state file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs

from automl.search.storage import whole_file_storage


def test_storage_folder_never_holds_a_half_written_file(tmp_path: Path) -> None:
    """Ray copies its saved state into the storage folder in the background; a kill during
    that copy left a truncated file, and Ray's restore then started the experiment over."""
    target = tmp_path / "search_gen_state-1.json"
    target.write_bytes(b"old state")
    fs = whole_file_storage()
    stream = fs.open_output_stream(str(target))
    stream.write(b"new state, half")
    assert target.read_bytes() == b"old state"  # a kill now leaves the old version whole
    stream.write(b" and the rest")
    stream.close()
    assert target.read_bytes() == b"new state, half and the rest"
    source = tmp_path / "staging"
    source.mkdir()
    (source / "experiment_state-1.json").write_text("{}")
    pyarrow.fs.copy_files(str(source), str(tmp_path / "copy"), destination_filesystem=fs)
    assert [p.name for p in (tmp_path / "copy").iterdir()] == ["experiment_state-1.json"]


def test_a_copy_that_fails_part_way_leaves_the_old_file(tmp_path: Path) -> None:
    """A write that raises (a full disk), or a stream dropped unclosed, must not put the part
    written in place of the file, nor leave the part behind."""
    target = tmp_path / "callback-states-1.pkl"
    target.write_bytes(b"old state")
    fs = whole_file_storage()
    stream = fs.open_output_stream(str(target))
    stream.write(b"new state, half")
    del stream  # dropped, as a failed copy drops it
    assert target.read_bytes() == b"old state"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_an_empty_experiment_state_never_replaces_the_stored_one(tmp_path: Path) -> None:
    """Copied while Ray was still writing it, the newest experiment state was stored empty
    (seen once in a kill-and-resume test): the resume then read no JSON."""
    fs = whole_file_storage()
    state = tmp_path / "experiment_state-2026.json"
    state.write_text('{"trial_data": []}')
    fs.open_output_stream(str(state)).close()  # nothing written
    assert state.read_text() == '{"trial_data": []}'
    fs.open_output_stream(str(tmp_path / "experiment_state-new.json")).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.name]  # no empty one made
    other = tmp_path / "marker"  # another file may be empty
    fs.open_output_stream(str(other)).close()
    assert other.read_bytes() == b""


def test_a_resume_drops_the_partial_copies_a_kill_left(tmp_path: Path) -> None:
    from automl.search.storage import drop_partial_copies, partial_name

    trial = tmp_path / "run_sweep_trial_a" / "checkpoint_000001"
    trial.mkdir(parents=True)
    left = [tmp_path / partial_name("experiment_state-1.json"), trial / partial_name("last.bin")]
    kept = [tmp_path / ".notes.partial", trial / "best.safetensors"]  # not this module's
    for path in left + kept:
        path.write_bytes(b"x")
    drop_partial_copies(tmp_path)
    assert [p.exists() for p in left + kept] == [False, False, True, True]


def test_a_checkpoint_ray_lets_go_of_stays_while_the_stored_state_names_it(
    tmp_path: Path,
) -> None:
    """Ray deletes a trial's older checkpoint when a newer one comes, but stores the state that
    names the newer one later: a kill in between left a state naming a deleted folder."""
    import pickle

    fs = whole_file_storage()
    older = tmp_path / "run_sweep_trial_a" / "checkpoint_000001"
    older.mkdir(parents=True)
    other = tmp_path / "not_a_checkpoint"
    other.mkdir()
    fs.delete_dir(str(other))
    assert not other.exists()  # deleted at once
    fs.delete_dir(str(older))
    assert older.is_dir()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-other" / "run_b" / "checkpoint_000001"
    elsewhere.mkdir(parents=True)
    fs.delete_dir(str(elsewhere))  # another experiment's, in the same process
    state = str(tmp_path / "experiment_state-2.json")
    with fs.open_output_stream(state) as f:  # Ray's state pickles the path, hex-encoded
        f.write(json.dumps({"manager": pickle.dumps(str(older)).hex()}).encode())
    assert older.is_dir()  # the stored state still names it
    with fs.open_output_stream(str(tmp_path / "experiment_state-1.json")) as f:
        f.write(b"{}")  # an earlier session's file, uploaded again by a resumed run
    assert older.is_dir()  # Ray restores from the newest file, which names it
    with fs.open_output_stream(state) as f:
        f.write(json.dumps({"manager": "checkpoint_000002"}).encode())
    assert not older.exists() and elsewhere.is_dir()


def test_an_interrupted_round_resumed_under_another_storage_is_refused(tmp_path: Path) -> None:
    """Resumed with a new `paths.storage` (moving to a cluster's shared folder), the round Ray
    had saved under the old one started afresh: a full budget again, its finished trials gone
    from the records and the export."""
    import pytest
    from conftest import compose_sweep_config

    from automl.config.schema import ConfigError
    from automl.search.plan import plan_sweep
    from automl.search.state import RAY_TUNER_FILE, SweepState

    old, new = tmp_path / "old-ray", tmp_path / "shared-ray"
    (old / "smoke").mkdir(parents=True)
    (old / "smoke" / RAY_TUNER_FILE).write_bytes(b"saved by Ray")
    SweepState(phase="running", storage=str(old)).save(tmp_path / "outputs" / "smoke")
    given = ("experiment=smoke", "sweep.resume=true")
    with pytest.raises(ConfigError) as err:
        plan_sweep(compose_sweep_config(tmp_path, *given, f"paths.storage={new}"))
    assert str(err.value) == (
        f"config: paths.storage: the interrupted round 0 of sweep smoke is in {old}; resume it "
        f"with the storage it started in (paths.storage={old}), then change it for a later round, "
        "or move that folder away to start the round afresh"
    )
    assert not new.exists()


def test_only_this_sweeps_checkpoints_are_dropped(tmp_path: Path) -> None:
    """After the export the other trials' checkpoints go: under this sweep's Ray folder, and in
    an earlier round's folder (another `paths.storage` then) marked with this output folder;
    never a copy's original, whose records the copy still holds."""
    import types

    from automl.search.state import mark_owner
    from automl.search.sweep import _drop_checkpoints

    out, copy_of = tmp_path / "outputs" / "smoke", tmp_path / "original" / "smoke"
    here, earlier, original = tmp_path / "ray", tmp_path / "old-ray", tmp_path / "original-ray"
    folders = []
    for storage, owner in ((here, out), (earlier, out), (original, copy_of)):
        mark_owner(storage / "smoke", "id", owner)
        folders.append(storage / "smoke" / "trial_1" / "checkpoint_000001")
        folders[-1].mkdir(parents=True)
    _drop_checkpoints([str(f) for f in folders], types.SimpleNamespace(storage=here, out_dir=out))
    assert [f.is_dir() for f in folders] == [False, False, True]


def test_a_fresh_sweep_leaves_an_unmarked_ray_run_in_a_storage_of_the_users(
    tmp_path: Path,
) -> None:
    """A Ray Tune run of another tool, named as the sweep, in a shared `paths.storage`: a fresh
    sweep counted it as its own (it holds tuner.pkl) and deleted it. Inside the sweep's own
    output folder (the default storage) such a folder is its own, as before."""
    import pytest
    from conftest import compose_sweep_config

    from automl.config.schema import ConfigError
    from automl.search.plan import plan_sweep
    from automl.search.state import RAY_TUNER_FILE, SweepState

    shared = tmp_path / "ray_results"
    (shared / "smoke" / "trial_0").mkdir(parents=True)
    (shared / "smoke" / RAY_TUNER_FILE).write_bytes(b"another tool's")
    with pytest.raises(ConfigError, match="no sweep marked as its own"):
        plan_sweep(compose_sweep_config(tmp_path, "experiment=smoke", f"paths.storage={shared}"))
    assert (shared / "smoke" / "trial_0").is_dir()
    # a state older than the marks (no sweep id): its unmarked folders are its own
    SweepState(phase="finished").save(tmp_path / "outputs" / "smoke")
    plan_sweep(compose_sweep_config(tmp_path, "experiment=smoke", f"paths.storage={shared}"))
    # inside the sweep's own folder (the default storage): its own, whatever its state says
    SweepState(phase="finished", sweep_id="ours").save(tmp_path / "outputs" / "smoke")
    own = tmp_path / "outputs" / "smoke" / "ray" / "smoke"
    own.mkdir(parents=True)
    (own / RAY_TUNER_FILE).write_bytes(b"unmarked")
    assert plan_sweep(compose_sweep_config(tmp_path, "experiment=smoke")).storage == own.parent
