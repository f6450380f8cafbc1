"""The model as a search dimension: choices load before any compute, `blocks` follows the
chosen model, and a recorded choice rebuilds the same model section everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import IntDistribution

from automl.config.search_space import SearchSpace, load_search_space
from automl.config.space_params import SearchSpaceError
from automl.model.choices import model_config, model_section, tokenization_key
from automl.model.load import ModelError, load_model_config, num_blocks_of
from automl.search.plan import describe_param
from automl.search.trial import apply_overrides

CONFIG: dict[str, Any] = {
    "model": {"source": "package", "max_length": 96, "trust_remote_code": False},
    "train": {"learning_rate": 2e-3, "epochs": 3},
    "peft": {"lora_rank": 8, "frozen_layers": 0},
}
MODELS = "model: {type: categorical, choices: [tiny_bert, minilm]}\n"
FROZEN = "peft.frozen_layers: {type: int, low: 0, high: blocks}\n"


def _blocks(choice: str) -> int:
    return num_blocks_of(load_model_config(model_config(choice, CONFIG["model"])))


def _load(tmp_path: Path, text: str) -> SearchSpace:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_search_space(
        str(path), config=CONFIG, num_blocks=6, search_dir=tmp_path, blocks_of=_blocks
    )


def test_frozen_depth_is_bounded_by_the_chosen_models_block_count(tmp_path: Path) -> None:
    space = _load(tmp_path, MODELS + FROZEN)
    assert space.models == ("tiny_bert", "minilm")
    frozen = space.params[1]
    assert frozen.distribution({"model": "tiny_bert"}) == (
        "peft.frozen_layers[model=tiny_bert]", IntDistribution(0, 2)
    )  # fmt: skip
    assert frozen.distribution({"model": "minilm"})[1] == IntDistribution(0, 6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, int] = {}
    for _ in range(30):
        values = space.suggest(study.ask())
        seen[values["model"]] = max(seen.get(values["model"], 0), values["peft.frozen_layers"])
    assert seen["tiny_bert"] <= 2 and seen["minilm"] > 2  # minilm's deeper range is used
    # the plan shows each model's range, not the base one (the smallest model's) no trial uses
    assert describe_param(frozen, space.models) == (
        "model=tiny_bert: int [0, 2]; model=minilm: int [0, 6]"
    )
    # a branch for one model only: the others take the base range, which is shown
    rate = "train.learning_rate: {type: float, low: 0.001, high: 0.01, when: [{if: {model: minilm}, low: 0.0001, high: 0.001}]}\n"  # noqa: E501
    one = _load(tmp_path, MODELS + rate).params[1]
    assert describe_param(one, ("tiny_bert", "minilm")) == (
        "float [0.001, 0.01] (model=minilm: float [0.0001, 0.001])"
    )


def test_blocks_in_a_model_branch_is_that_models_block_count(tmp_path: Path) -> None:
    """It was the config model's: minilm's branch became 0..6 under any config model, and a
    tiny_bert branch's `high: blocks` (2) was refused against the config's 6-block model."""
    frozen = _load(
        tmp_path,
        MODELS + "peft.frozen_layers: {type: int, low: 0, high: 1, when: "
        "[{if: {model: tiny_bert}, high: blocks}, {if: {model: minilm}, low: 2, high: blocks}]}\n",
    ).params[1]
    assert frozen.distribution({"model": "tiny_bert"})[1] == IntDistribution(0, 2)
    assert frozen.distribution({"model": "minilm"})[1] == IntDistribution(2, 6)
    with pytest.raises(SearchSpaceError, match=r"blocks` needs if: \{model: \.\.\.\}"):
        _load(
            tmp_path,
            MODELS + "peft.lora_rank: {type: categorical, choices: [0, 8]}\n"
            "peft.frozen_layers: {type: int, low: 0, high: 1, when: "
            "[{if: {peft.lora_rank: 0}, high: blocks}]}\n",
        )


def test_an_unsearched_depth_must_fit_every_model_choice(tmp_path: Path) -> None:
    """`peft.frozen_layers=4` with tiny_bert (2 blocks) among the choices failed in every trial
    that drew tiny_bert."""
    path = tmp_path / "space.yaml"
    path.write_text(MODELS + "train.learning_rate: {type: float, low: 0.001, high: 0.01}\n")
    deep = {**CONFIG, "peft": {**CONFIG["peft"], "frozen_layers": 4}}
    with pytest.raises(SearchSpaceError) as err:
        load_search_space(
            str(path), config=deep, num_blocks=6, search_dir=tmp_path, blocks_of=_blocks
        )
    assert "model: 'tiny_bert' has 2 blocks, fewer than peft.frozen_layers=4" in str(err.value)
    shallow = {**CONFIG, "peft": {**CONFIG["peft"], "frozen_layers": 2}}
    load_search_space(
        str(path), config=shallow, num_blocks=6, search_dir=tmp_path, blocks_of=_blocks
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FROZEN + MODELS, "model: list it before peft.frozen_layers"),
        # a depth of its own above the model was checked against the config's 6-block model
        ("peft.frozen_layers: {type: int, low: 0, high: 4}\n" + MODELS,
         "model: list it first, before peft.frozen_layers: ranges follow the model drawn"),
        ("model: {type: categorical, choices: [tiny_bert, ./no-such-model]}\n",
         "model: choices[1] ('./no-such-model'): model.name_or_path"),
        ("model: {type: categorical, choices: [tiny_bert, tiny_bert]}\n", "listed twice"),
        ("model: {type: categorical, choices: []}\n", "non-empty list"),
        ("model: {type: int, low: 0, high: 1}\n", "must be {type: categorical"),
        ("model: {type: categorical, choices: [tiny_bert], when: []}\n", "field 'when'"),
        (MODELS + "peft.frozen_layers: {type: int, low: 0, high: blocks, when: "
         "[{if: {model: minilm}, low: 1}]}\n", "already branches on the model"),
        (MODELS + "peft.frozen_layers: {type: int, low: 3, high: blocks}\n",
         "peft.frozen_layers: low (3) must be <= high (2)"),
        # a depth of its own applies to every choice, not only to the config's (6-block) model
        (MODELS + "peft.frozen_layers: {type: int, low: 0, high: 4}\n",
         "peft.frozen_layers: high (4) must be between 0 and 2: the smallest of its models has 2"),
        (MODELS + "peft.frozen_layers: {type: int, low: 0, high: 3, when: "
         "[{if: {model: minilm}, high: 6}]}\n", "high (3) must be between 0 and 2: model "
         "tiny_bert has 2 blocks"),  # the base range reaches tiny_bert alone
        (MODELS + "peft.lora_rank: {type: categorical, choices: [0, 8]}\n"
         "peft.frozen_layers: {type: int, low: 0, high: 1, when: "
         "[{if: {peft.lora_rank: 0}, high: 4}]}\n", "high (4) must be between 0 and 2"),
    ],
)  # fmt: skip
def test_bad_model_choices_fail_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SearchSpaceError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_a_config_name_and_a_folder_become_whole_model_sections(tmp_path: Path) -> None:
    tiny = model_section("tiny_bert", CONFIG["model"])
    assert tiny["source"] == "tiny" and tiny["tiny_layers"] == 2 and tiny["max_length"] == 64
    folder = model_section("./models/mine", CONFIG["model"])
    assert folder["source"] == "pretrained" and folder["name_or_path"] == "./models/mine"
    assert folder["max_length"] == 96  # the user's setting, not a model's
    merged = apply_overrides(
        {"model": dict(CONFIG["model"]), "peft": {"frozen_layers": 0}},
        {"model": "tiny_gpt2", "peft.frozen_layers": 1},
    )
    assert merged["model"]["tiny_arch"] == "gpt2" and merged["peft"]["frozen_layers"] == 1
    again = apply_overrides(merged, {"model": "tiny_gpt2"})  # reproduce applies it twice
    assert again["model"] == merged["model"]


def test_models_with_the_same_tokenizer_share_one_tokenization() -> None:
    base = CONFIG["model"]
    bert, gpt2, minilm = (model_config(c, base) for c in ("tiny_bert", "tiny_gpt2", "minilm"))
    assert tokenization_key(bert) == tokenization_key(gpt2)  # same borrowed tokenizer, length
    assert tokenization_key(bert) != tokenization_key(minilm)  # 64 vs 128 tokens
    folder = model_config("/models/a", base)
    assert tokenization_key(folder) != tokenization_key(model_config("/models/b", base))


def test_an_unloadable_choice_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="no such folder"):
        _blocks("./no-such-model")


def test_a_frozen_depth_branch_of_one_model_is_checked_against_that_model(tmp_path: Path) -> None:
    space = _load(tmp_path, MODELS + "peft.frozen_layers: {type: int, low: 0, high: 2, when: "
                  "[{if: {model: minilm}, high: 6}]}\n")  # fmt: skip
    frozen = space.params[1]
    assert frozen.distribution({"model": "minilm"})[1] == IntDistribution(0, 6)
    assert frozen.distribution({"model": "tiny_bert"})[1] == IntDistribution(0, 2)


def test_a_base_frozen_range_no_model_reaches_is_not_checked(tmp_path: Path) -> None:
    """Each model has a branch of its own: the base range is never used, and a malformed
    `when:` is still one line."""
    text = MODELS + ("peft.frozen_layers: {type: int, low: 0, high: 6, when: "
                     "[{if: {model: tiny_bert}, high: 2}, "
                     "{if: {model: minilm}, high: 6}]}\n")  # fmt: skip
    frozen = _load(tmp_path, text).params[1]
    assert frozen.distribution({"model": "tiny_bert"})[1] == IntDistribution(0, 2)
    for bad in ("when: 5", "when: [{if: {model: [tiny_bert]}, high: 2}]"):
        with pytest.raises(SearchSpaceError) as err:
            _load(tmp_path, MODELS + f"peft.frozen_layers: {{type: int, low: 0, high: 2, {bad}}}\n")
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("source: tiny\nmax_lenght: 256\n", "max_lenght"),
        ("max_length: long\n", "max_length: "),
        ("- minilm\n", "expected a mapping"),
    ],
)
def test_a_model_config_file_with_a_typo_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, culprit: str
) -> None:
    """A misspelt key in a conf/model file a search space chooses was a TypeError traceback."""
    import automl.model.choices as choices

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "mybert.yaml").write_text(text)
    (folder / "tiny_bert.yaml").write_text((choices.MODEL_CONF_DIR / "tiny_bert.yaml").read_text())
    monkeypatch.setattr(choices, "MODEL_CONF_DIR", folder)
    with pytest.raises(ValueError, match=r"^model/mybert\.yaml: ") as err:
        model_section("mybert", CONFIG["model"])
    assert culprit in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SearchSpaceError, match=r"choices\[1\] \('mybert'\): model/mybert\.yaml"):
        _load(tmp_path, "model: {type: categorical, choices: [tiny_bert, mybert]}\n")


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("source: tiny\ntiny_hidden: 30\ntiny_heads: 4\n", "model.tiny_hidden: must be a multiple"),
        ("source: tiny\ntiny_arch: bart\n", "model.tiny_arch: 'bart' is not one of bert, gpt2"),
        ("source: packge\n", "model.source: 'packge' is not one of"),
        ("source: tiny\nname_or_path: roberta-base\n", "model.name_or_path: is not read"),
        ("source: tiny\ntiny_layers: [2\n", "model/mybert.yaml: not valid YAML"),
    ],
    ids=["heads-do-not-divide", "unknown-arch", "unknown-source", "unread-setting", "bad-yaml"],
)
def test_a_model_choice_the_config_rules_refuse_fails_the_plan_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, culprit: str
) -> None:
    """`model=mybert` on the command line was refused; as a search-space choice the same file
    passed the plan and failed every trial that drew it (bad YAML: a traceback)."""
    from conftest import compose_sweep_config

    import automl.model.choices as choices
    from automl.search.plan import load_space

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "mybert.yaml").write_text(text)
    (folder / "tiny_bert.yaml").write_text((choices.MODEL_CONF_DIR / "tiny_bert.yaml").read_text())
    monkeypatch.setattr(choices, "MODEL_CONF_DIR", folder)
    space = tmp_path / "space.yaml"
    space.write_text("model: {type: categorical, choices: [tiny_bert, mybert]}\n")
    conf = compose_sweep_config(tmp_path, "experiment=smoke", f"search_space={space}")
    with pytest.raises(SearchSpaceError) as err:
        load_space(conf)
    message = str(err.value)
    assert "choices[1] ('mybert')" in message and culprit in message, message
    assert "\n" not in message
