"""A model that runs code of its own (`model.trust_remote_code=true`): the sweep trains it, and
everything after training loads it the same way. The export's test score, its registration in
MLflow and `automl-export` loaded it without the user's opt-in, so a whole sweep ended in
transformers' refusal after its last trial; `automl-evaluate` asks for the opt-in itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config, mlflow_uri

pytestmark = pytest.mark.slow  # a sweep

CONFIG_CODE = """\
from transformers import BertConfig


class CustomConfig(BertConfig):
    model_type = "custom_bert"
"""
MODEL_CODE = """\
from transformers import BertForSequenceClassification, BertModel

from .configuration_custom import CustomConfig


class CustomModel(BertModel):
    config_class = CustomConfig


class CustomForSequenceClassification(BertForSequenceClassification):
    config_class = CustomConfig
"""
AUTO_MAP = {
    "AutoConfig": "configuration_custom.CustomConfig",
    "AutoModel": "modeling_custom.CustomModel",
    "AutoModelForSequenceClassification": "modeling_custom.CustomForSequenceClassification",
}


def _custom_code_model(folder: Path, tokenizer: Any) -> None:
    """A tiny BERT whose config and classes live in the folder's own Python files."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "configuration_custom.py").write_text(CONFIG_CODE)
    (folder / "modeling_custom.py").write_text(MODEL_CODE)
    saved = json.loads((folder / "config.json").read_text())
    saved.update(model_type="custom_bert", auto_map=AUTO_MAP)
    (folder / "config.json").write_text(json.dumps(saved))


def test_a_model_with_its_own_code_is_exported_scored_and_registered(
    tmp_path: Path,
    tokenizer: Any,
    easy_csv: Any,
    shared_ray: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from automl.cli.evaluate import main as evaluate
    from automl.export.reexport import reexport
    from automl.search.sweep import run_sweep

    shared_ray()
    _custom_code_model(tmp_path / "custom", tokenizer)
    data = easy_csv(rows=120)
    monkeypatch.chdir(tmp_path)
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "data=csv", f"data.path={data}", "model=hf",
        f"model.name_or_path={tmp_path / 'custom'}", "model.trust_remote_code=true",
        "sweep.num_samples=1", "train.epochs=1", "peft.lora_rank=0",
    )  # fmt: skip
    outcome = run_sweep(conf)
    assert outcome.export_dir is not None and outcome.summary["test_accuracy"] is not None
    assert (outcome.export_dir / "modeling_custom.py").is_file()  # the code goes with it
    # no path of this machine (transformers 5 no longer writes the base model's _name_or_path)
    assert str(tmp_path) not in (outcome.export_dir / "config.json").read_text()
    assert outcome.summary["outcome"] == "finished"
    again = reexport(tmp_path / "outputs" / "smoke", out_dir=tmp_path / "again")
    assert json.loads((again / "test_evaluation.json").read_text())["num_examples"] > 0
    # automl-evaluate runs the folder's code only when told to
    monkeypatch.setattr(sys, "argv", ["automl-evaluate", str(outcome.export_dir), str(data)])
    with pytest.raises(SystemExit) as exited:
        evaluate()
    assert exited.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "its model runs code of its own (auto_map in config.json); trust it to load it "
            "(automl-evaluate --trust-remote-code)"
        )
    )
    evaluate([str(outcome.export_dir), str(data), "--trust-remote-code"])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["num_examples"] == 120
    uri = mlflow_uri(tmp_path)
    evaluate(["models:/smoke@champion", str(data), "--trust-remote-code", "--tracking-uri", uri])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["num_examples"] == 120


def test_a_model_with_its_own_code_names_the_setting_that_runs_it(
    tmp_path: Path, tokenizer: Any
) -> None:
    """transformers' refusal did not name this project's setting."""
    from automl.config.schema import ModelConfig
    from automl.model.load import ModelError, load_model_config

    _custom_code_model(tmp_path / "custom", tokenizer)
    cfg = ModelConfig(source="pretrained", name_or_path=str(tmp_path / "custom"))
    with pytest.raises(ModelError) as err:
        load_model_config(cfg)
    message = str(err.value)
    assert (
        message.endswith("(to run its code: model.trust_remote_code=true)") and "\n" not in message
    )
