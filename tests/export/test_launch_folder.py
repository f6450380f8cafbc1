"""`automl-export` run from another folder than the sweep: the sweep's relative paths (a model
folder, the data) name files from where it ran, so the command says where to run it instead
of looking the folder up on the Hub (23 s of retries offline, then a message about the network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl.export.reexport import ExportError, check_run_from_launch_folder, launch_folder


def test_the_launch_folder_is_found_from_the_sweep_folder_and_its_output_dir(
    tmp_path: Path,
) -> None:
    assert launch_folder(tmp_path / "outputs" / "tix", "outputs") == tmp_path
    assert launch_folder(tmp_path / "runs" / "cpu" / "tix", "runs/cpu") == tmp_path
    assert launch_folder(tmp_path / "tix", ".") == tmp_path
    assert launch_folder(tmp_path / "elsewhere" / "tix", "outputs") is None  # moved or copied
    assert launch_folder(tmp_path / "outputs" / "tix", str(tmp_path / "outputs")) is None


def test_a_relative_model_folder_from_another_folder_names_the_launch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models" / "my-bert").mkdir(parents=True)
    sweep_dir = tmp_path / "outputs" / "tix"
    sweep_dir.mkdir(parents=True)
    base = {
        "paths": {"output_dir": "outputs"},
        "model": {"source": "pretrained", "name_or_path": "models/my-bert"},
        "data": {"path": None},
    }
    monkeypatch.chdir(tmp_path)
    check_run_from_launch_folder(sweep_dir, base)  # from where it ran: fine
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ExportError, match=f"models/my-bert is relative to {tmp_path}, where"):
        check_run_from_launch_folder(sweep_dir, base)
    base["model"] = {"source": "pretrained", "name_or_path": "org/hub-model"}  # no such folder
    check_run_from_launch_folder(sweep_dir, base)  # anywhere: a hub id, left to transformers
    (tmp_path / "saved-dataset").mkdir()  # a `save_to_disk` folder, named relatively
    base["data"] = {"source": "hf", "hf_name": "saved-dataset"}
    with pytest.raises(ExportError, match="saved-dataset is relative to"):
        check_run_from_launch_folder(sweep_dir, base)


def test_a_base_model_changed_since_the_sweeps_export_is_refused(tmp_path: Path) -> None:
    """Sweep `v2` tuned on `outputs/v1/best`, then `v1` re-run: `automl-export outputs/v2`
    rebuilt v2's trial on v1's new weights, unsaid, and recorded their hash as its base."""
    import json

    from automl.config.schema import ModelConfig
    from automl.export.portable import base_model_name
    from automl.export.reexport import check_base_unchanged

    base = tmp_path / "v1" / "best"
    base.mkdir(parents=True)
    (base / "config.json").write_text('{"model_type": "bert"}')
    (base / "model.safetensors").write_bytes(b"weights of the first v1")
    model = ModelConfig(source="pretrained", name_or_path=str(base))
    sweep = tmp_path / "v2"
    (sweep / "best").mkdir(parents=True)
    recorded = {"base_model_details": base_model_name(model)}
    (sweep / "best" / "provenance.json").write_text(json.dumps(recorded))
    best, trial = {"model": str(base), "lr": 0.1}, {"model": str(base), "lr": 0.2}
    check_base_unchanged(sweep, model, trial, best)  # as it was: the export may go on
    (base / "model.safetensors").write_bytes(b"weights of the re-run v1")
    # the choice an absolute path, as the summary keeps it (the provenance's is made portable)
    with pytest.raises(ExportError, match=rf"^model.name_or_path: {base}: its files changed"):
        check_base_unchanged(sweep, model, trial, best)
    # a trial of another model choice (another folder named `best`): not this export's base
    check_base_unchanged(sweep, model, {"model": "outputs/b/best"}, best)
    (sweep / "best" / "provenance.json").unlink()  # no export recorded a hash: none to judge by
    check_base_unchanged(sweep, model, trial, best)


def test_a_searched_models_settings_changed_since_the_sweep_are_refused(tmp_path: Path) -> None:
    """A searched model choice is rebuilt from its conf/model file as it is now: a max_length
    edited since gave an export tokenizing otherwise than its weights trained, unsaid."""
    import json
    from dataclasses import asdict

    from automl.config.schema import ModelConfig
    from automl.export.reexport import check_model_settings_unchanged

    sweep = tmp_path / "v2"
    (sweep / "best").mkdir(parents=True)
    then = ModelConfig(source="tiny", max_length=48)
    recorded = {
        "config": {"model": {**asdict(then), "name_or_path": "elsewhere"}},
        "hyperparameters": {"model": "tiny_bert", "lr": 0.2},
    }
    (sweep / "best" / "provenance.json").write_text(json.dumps(recorded))
    trial = {"model": "tiny_bert", "lr": 0.1}
    check_model_settings_unchanged(sweep, then, trial)  # as it was (its path apart)
    now = ModelConfig(source="tiny", max_length=64)
    with pytest.raises(ExportError, match=r"^model tiny_bert: max_length is 64 now, 48 when"):
        check_model_settings_unchanged(sweep, now, trial)
    # best/ holds another choice's export (`--trial T --out SWEEP/best`): nothing to judge by
    check_model_settings_unchanged(sweep, ModelConfig(), {"model": "minilm"})
    check_model_settings_unchanged(sweep, now, {"lr": 0.1})  # no model searched
