"""Search spaces: every bad file fails early with one line naming file and key; good ones sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from automl.config.search_space import SearchSpace, load_search_space, resolve_search_space_path
from automl.config.space_params import SearchSpaceError

SEARCH_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
CONFIG: dict[str, Any] = {
    "train": {
        "learning_rate": 2e-3,
        "epochs": 3,
        "batch_size": 16,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "seed": 0,
        "class_weights": "none",
        "sampling": "natural",
        "length_groups_per_step": 1,
        "device": "auto",
        "num_threads": None,
    },
    "peft": {"lora_rank": 8, "lora_alpha": None, "lora_dropout": 0.1, "frozen_layers": 2},
    "model": {"max_length": 128},
    "data": {"val_fraction": 0.2},
    "sweep": {"num_samples": 8},
}
RANK = "peft.lora_rank: {type: categorical, choices: [0, 4, 8]}\n"
LR_BRANCH = "train.learning_rate[peft.lora_rank=0]"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _load(
    tmp_path: Path, text: str, num_blocks: int | None = 6, name: str = "x.yaml"
) -> SearchSpace:
    path = tmp_path / name
    path.write_text(text)
    return load_search_space(str(path), config=CONFIG, num_blocks=num_blocks, search_dir=tmp_path)


LR_BRANCHED = (
    "train.learning_rate: {type: float, low: 5.0e-4, high: 5.0e-3, log: true, "
    "when: [{if: {peft.lora_rank: 0}, low: 1.0e-5, high: 1.0e-4}]}\n"
)
FIRST = "first_trials: "

BAD = [
    ("not-yaml", "train.epochs: {type: int, low: 1\n", ["not valid YAML"]),
    ("duplicate-key", "train.epochs: {type: int, low: 1, high: 2}\n" * 2, ["train.epochs"]),
    ("top-level-list", "- 1\n- 2\n", ["top level", "mapping"]),
    ("empty", "# only a comment\n", ["empty"]),
    ("non-str-key", "1: {type: int, low: 1, high: 2}\n", ["1", "keys"]),
    (
        "unknown-key",
        "train.learnig_rate: {type: float, low: 1.0e-4, high: 1.0e-3}\n",
        ["train.learnig_rate", "did you mean train.learning_rate"],
    ),
    (
        "first-trials-misspelt",
        "train.epochs: {type: int, low: 1, high: 4}\nfirst_trial:\n  - {train.epochs: 2}\n",
        ["first_trial", "did you mean first_trials"],
    ),
    ("section-key", "train: {type: int, low: 1, high: 2}\n", ["train:", "section"]),
    ("spec-not-mapping", "train.epochs: 3\n", ["train.epochs", "mapping"]),
    ("unknown-field", "train.epochs: {type: int, low: 1, hgih: 4}\n", ["hgih", "high"]),
    ("missing-type", "train.epochs: {low: 1, high: 4}\n", ["train.epochs", "type"]),
    ("unknown-type", "train.epochs: {type: integer, low: 1, high: 4}\n", ["integer", "int"]),
    (
        "field-for-other-type",
        "train.epochs: {type: int, low: 1, high: 4, choices: [1]}\n",
        ["train.epochs", "choices"],
    ),
    ("missing-low", "train.epochs: {type: int, high: 4}\n", ["train.epochs", "low"]),
    ("missing-high", "train.learning_rate: {type: float, low: 0.1}\n", ["learning_rate", "high"]),
    (
        "low-above-high",
        "train.learning_rate: {type: float, low: 0.01, high: 0.001}\n",
        ["train.learning_rate: low (0.01) must be <= high (0.001)"],
    ),
    (
        "log-low-zero",
        "train.weight_decay: {type: float, low: 0.0, high: 0.1, log: true}\n",
        ["train.weight_decay", "log", "low"],
    ),
    (
        "log-with-step",
        "train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, log: true, step: 1.0e-4}\n",
        ["train.learning_rate", "step", "log"],
    ),
    ("log-not-bool", "train.epochs: {type: int, low: 1, high: 4, log: 'yes'}\n", ["log"]),
    (
        "step-zero",
        "train.epochs: {type: int, low: 1, high: 4, step: 0}\n",
        ["train.epochs", "step"],
    ),
    ("step-misfit", "train.epochs: {type: int, low: 1, high: 4, step: 2}\n", ["step", "high"]),
    ("non-numeric-low", "train.learning_rate: {type: float, low: abc, high: 1}\n", ["low", "abc"]),
    ("fractional-int", "train.epochs: {type: int, low: 1.5, high: 4}\n", ["train.epochs", "low"]),
    ("choices-missing", "peft.lora_rank: {type: categorical}\n", ["peft.lora_rank", "choices"]),
    ("choices-empty", "peft.lora_rank: {type: categorical, choices: []}\n", ["choices"]),
    ("choices-not-list", "peft.lora_rank: {type: categorical, choices: 4}\n", ["choices"]),
    (
        "choices-duplicate",
        "peft.lora_rank: {type: categorical, choices: [4, 8, 4]}\n",
        ["peft.lora_rank", "choices", "4 is listed twice"],
    ),
    (
        "choice-not-scalar",
        "peft.lora_alpha: {type: categorical, choices: [[1, 2]]}\n",
        ["peft.lora_alpha", "choices[0]"],
    ),
    (
        "float-range-on-int-field",
        "train.epochs: {type: float, low: 1, high: 4}\n",
        ["train.epochs", "type float", "int"],
    ),
    (
        "choice-not-finite",
        "train.learning_rate: {type: categorical, choices: [1.0e-3, .inf]}\n",
        ["train.learning_rate", "choices[1] must be finite, got inf"],
    ),
    (
        "choice-type-mismatch",
        "peft.lora_rank: {type: categorical, choices: [4, eight]}\n",
        ["peft.lora_rank", "choices[1]"],
    ),
    (
        "choice-not-an-allowed-value",
        "train.sampling: {type: categorical, choices: [natural, uniform]}\n",
        ["train.sampling", "choices[1] ('uniform')", "natural, sqrt, balanced"],
    ),
    (
        "bool-is-not-int",
        "peft.lora_rank: {type: categorical, choices: [true, 4]}\n",
        ["peft.lora_rank", "choices[0]"],
    ),
    (
        "frozen-above-blocks",
        "peft.frozen_layers: {type: int, low: 0, high: 8}\n",
        ["peft.frozen_layers", "high (8)", "the model has 6 blocks"],
    ),
    (
        "frozen-negative",
        "peft.frozen_layers: {type: int, low: -1, high: 2}\n",
        ["peft.frozen_layers", "low (-1)", "the model has 6 blocks"],
    ),
    (
        "frozen-choice-above-blocks",
        "peft.frozen_layers: {type: categorical, choices: [0, 7]}\n",
        ["peft.frozen_layers", "choice (7)", "6 blocks"],
    ),
    (
        "when-not-list",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: {peft.lora_rank: 0}}\n",
        ["train.epochs", "when"],
    ),
    (
        "when-if-two-entries",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: "
        "[{if: {peft.lora_rank: 0, train.seed: 1}, high: 2}]}\n",
        ["train.epochs", "when[0]", "if"],
    ),
    (
        "when-if-missing",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: [{high: 2}]}\n",
        ["train.epochs", "when[0]", "if"],
    ),
    (
        "when-refers-later",
        "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 0}, high: 2}]}\n"
        + RANK,
        ["train.epochs", "when[0]", "peft.lora_rank", "earlier"],
    ),
    (
        "when-value-not-a-choice",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 2}, "
        "high: 2}]}\n",
        ["train.epochs", "when[0]", "peft.lora_rank=2", "choices"],
    ),
    (
        "when-value-off-the-step",  # 2, 4, 6, 8 only: a branch for 3 never applies
        "train.epochs: {type: int, low: 2, high: 8, step: 2}\n"
        "train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, "
        "when: [{if: {train.epochs: 3}, high: 1.0e-2}]}\n",
        ["train.learning_rate", "when[0]", "train.epochs=3 is never sampled", "2..8 step 2"],
    ),
    (
        "when-value-between-the-branches",  # 1..2, or 5..6 on rank 0: 3 is within neither
        "peft.lora_rank: {type: categorical, choices: [0, 8]}\n"
        "train.epochs: {type: int, low: 1, high: 2, when: [{if: {peft.lora_rank: 0}, low: 5, "
        "high: 6}]}\n"
        "train.warmup_ratio: {type: float, low: 0.0, high: 0.2, "
        "when: [{if: {train.epochs: 3}, high: 0.1}]}\n",
        ["train.warmup_ratio", "when[0]", "train.epochs=3 is never sampled", "1..2, 5..6"],
    ),
    (
        "when-on-float",
        "train.weight_decay: {type: float, low: 0.0, high: 0.1}\n"
        "train.epochs: {type: int, low: 1, high: 4, when: [{if: {train.weight_decay: 0.1}, "
        "high: 2}]}\n",
        ["train.epochs", "when[0]", "train.weight_decay", "float"],
    ),
    (
        "when-unknown-field",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 0}, "
        "log: false}]}\n",
        ["train.epochs", "when[0]", "'log'"],
    ),
    (
        "when-changes-nothing",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 0}}]}\n",
        ["train.epochs", "when[0]", "nothing"],
    ),
    (
        "when-repeated",
        RANK + "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 0}, "
        "high: 2}, {if: {peft.lora_rank: 0}, high: 3}]}\n",
        ["train.epochs", "when[1]", "repeats"],
    ),
    (
        "when-on-two-keys",  # rank 0 and batch 32 matched both: the first took it, silently
        RANK + "train.batch_size: {type: categorical, choices: [16, 32]}\n"
        "train.epochs: {type: int, low: 1, high: 4, when: [{if: {peft.lora_rank: 0}, "
        "high: 2}, {if: {train.batch_size: 32}, low: 2}]}\n",
        ["train.epochs", "when[1]", "train.batch_size", "when[0] on peft.lora_rank", "one key"],
    ),
    (
        "when-low-above-high",
        RANK + "train.learning_rate: {type: float, low: 5.0e-4, high: 5.0e-3, log: true, "
        "when: [{if: {peft.lora_rank: 0}, low: 1.0e-3, high: 1.0e-4}]}\n",
        ["train.learning_rate", "when[0]", "low (0.001) must be <= high (0.0001)"],
    ),
    (
        "when-step-with-log",
        RANK + "train.learning_rate: {type: float, low: 5.0e-4, high: 5.0e-3, log: true, "
        "when: [{if: {peft.lora_rank: 0}, step: 1.0e-4}]}\n",
        ["train.learning_rate", "when[0]", "step"],
    ),
    (
        "when-frozen-above-blocks",
        RANK + "peft.frozen_layers: {type: int, low: 0, high: 2, when: [{if: {peft.lora_rank: 0}, "
        "high: 9}]}\n",
        ["peft.frozen_layers", "when[0]", "high (9)", "6 blocks"],
    ),
    (
        "when-choices-on-float",
        RANK + "train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, "
        "when: [{if: {peft.lora_rank: 0}, choices: [1.0e-5]}]}\n",
        ["train.learning_rate", "when[0]", "choices"],
    ),
    ("first-trials-not-a-list", RANK + FIRST + "{peft.lora_rank: 0}\n",
     ["first_trials", "list of mappings"]),
    ("first-trials-unknown-key", RANK + FIRST + "[{peft.lora_rnak: 0}]\n",
     ["first_trials[0]", "peft.lora_rnak", "did you mean peft.lora_rank"]),
    ("first-trials-not-a-choice", RANK + FIRST + "[{peft.lora_rank: 0}, {peft.lora_rank: 2}]\n",
     ["first_trials[1]", "peft.lora_rank=2", "not among [0, 4, 8]"]),
    ("first-trials-outside",  # rank 0 selects the branch's range
     RANK + LR_BRANCHED + FIRST + "[{peft.lora_rank: 0, train.learning_rate: 1.0e-3}]\n",
     ["first_trials[0]", "train.learning_rate=0.001", "outside [1e-05, 0.0001]"]),
    ("first-trials-branch-without-its-key",
     RANK + LR_BRANCHED + FIRST + "[{train.learning_rate: 5.0e-5}]\n",
     ["first_trials[0]", "depends on peft.lora_rank", "give it too"]),
    ("first-trials-not-an-int",
     "train.epochs: {type: int, low: 1, high: 4}\n" + FIRST + "[{train.epochs: 2.5}]\n",
     ["first_trials[0]", "train.epochs=2.5", "integer"]),
    ("first-trials-off-step",  # a value the sampler could never propose
     "train.epochs: {type: int, low: 2, high: 8, step: 2}\n" + FIRST + "[{train.epochs: 3}]\n",
     ["first_trials[0]", "train.epochs=3", "off its step 2"]),
    # rule 10: a value the config's own rules refuse fails here, not in the trial that samples it
    ("range-end-the-config-refuses", "train.warmup_ratio: {type: float, low: 0.0, high: 1.5}\n",
     ["train.warmup_ratio: 1.5 would fail", "must be in [0, 1)"]),
    ("choice-the-config-refuses", "train.batch_size: {type: categorical, choices: [8, 0]}\n",
     ["train.batch_size: 0 would fail", "must be >= 1"]),
    ("groups-that-cannot-split-the-batch",  # CONFIG's batch of 16 rows
     "train.length_groups_per_step: {type: categorical, choices: [1, 2, 3]}\n",
     ["train.length_groups_per_step: 3 would fail", "divide the 16 examples"]),
    ("step-keys-that-fail-together",  # each passes alone (with the config's 16 and 1)
     "train.batch_size: {type: categorical, choices: [8, 12]}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 8]}\n",
     ["train.batch_size=12, train.length_groups_per_step=8 together would fail",
      "divide the 12 examples"]),
    ("step-keys-that-fail-together-in-a-branch",  # 12 only when rank 0
     RANK + "train.batch_size: {type: categorical, choices: [8, 16], "
     "when: [{if: {peft.lora_rank: 0}, choices: [8, 12]}]}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 8]}\n",
     ["train.batch_size=12, train.length_groups_per_step=8 together would fail"]),
    ("step-keys-wide-int-range",  # 8 and 128 split in two; 9 inside does not
     "train.batch_size: {type: int, low: 8, high: 128, log: true}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 2]}\n",
     ["train.batch_size=9, train.length_groups_per_step=2 together would fail"]),
    ("step-key-branched-on-a-step-key",  # 12 is drawn with the base's 8
     "train.batch_size: {type: categorical, choices: [12, 16]}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 8], "
     "when: [{if: {train.batch_size: 16}, choices: [1, 16]}]}\n",
     ["train.batch_size=12, train.length_groups_per_step=8 together would fail"]),
    ("step-keys-both-branched",  # rank 0 draws batch 12 with the groups' base 8
     RANK + "train.batch_size: {type: categorical, choices: [8, 16], "
     "when: [{if: {peft.lora_rank: 0}, choices: [12, 24]}]}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 8], "
     "when: [{if: {peft.lora_rank: 4}, choices: [1, 2]}]}\n",
     ["when peft.lora_rank=0: train.batch_size=12, train.length_groups_per_step=8 together"]),
    ("step-key-branch-inside-a-wide-condition-range",  # rank 8 is drawn: its batch 12 too
     "peft.lora_rank: {type: int, low: 0, high: 64}\n"
     "train.batch_size: {type: categorical, choices: [8, 16], "
     "when: [{if: {peft.lora_rank: 8}, choices: [12]}]}\n"
     "train.length_groups_per_step: {type: categorical, choices: [1, 8]}\n",
     ["when peft.lora_rank=8: train.batch_size=12, train.length_groups_per_step=8 together"]),
    ("no-parameters", FIRST + "[]\n", ["no parameters to search"]),
    ("groups-range-that-fails-inside",  # both ends (1, 4) divide 16; 3 inside does not
     "train.length_groups_per_step: {type: int, low: 1, high: 4}\n",
     ["train.length_groups_per_step: 3 would fail", "divide the 16 examples"]),
    # rule 1: a value settled before the trials start would be ignored (or break the trials)
    ("model-value", "model.max_length: {type: categorical, choices: [64, 256]}\n",
     ["model.max_length: is fixed for the whole sweep", "tokenized once", "`model` choice"]),
    ("data-value", "data.val_fraction: {type: float, low: 0.1, high: 0.3}\n",
     ["data.val_fraction: is fixed for the whole sweep", "loaded and split once"]),
    ("sweep-value", "sweep.num_samples: {type: int, low: 4, high: 8}\n",
     ["sweep.num_samples: is a setting of the sweep itself", "only train.* and peft.*"]),
    ("device", "train.device: {type: categorical, choices: [cpu, cuda]}\n",
     ["train.device: is set for the whole sweep (resources.gpus_per_trial), not sampled"]),
    ("branch-value-the-config-refuses",
     RANK + "train.warmup_ratio: {type: float, low: 0.0, high: 0.2, "
     "when: [{if: {peft.lora_rank: 0}, high: 1.0}]}\n",
     ["train.warmup_ratio: when peft.lora_rank=0: 1.0 would fail"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_file_fails_with_one_line_naming_file_and_culprit(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    with pytest.raises(SearchSpaceError) as info:
        _load(tmp_path, text, name="bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "bad.yaml") + ":")
    for part in expected:
        assert part in message, message


def test_an_int_log_range_with_step_one_loads_as_optuna_allows_it(tmp_path: Path) -> None:
    space = _load(tmp_path, "train.epochs: {type: int, low: 1, high: 8, log: true, step: 1}\n")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {space.suggest(study.ask())["train.epochs"] for _ in range(20)}
    assert drawn <= set(range(1, 9)) and len(drawn) > 1
    with pytest.raises(SearchSpaceError, match="step cannot be combined with log"):
        _load(tmp_path, "train.epochs: {type: int, low: 1, high: 8, log: true, step: 2}\n")


def test_blocks_without_a_block_count_fails(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match=r"bad\.yaml: peft\.frozen_layers: high: `blocks`"):
        _load(tmp_path, "peft.frozen_layers: {type: int, low: 0, high: blocks}\n", None, "bad.yaml")


def test_missing_file_lists_the_available_spaces(tmp_path: Path) -> None:
    for name in ("quick", "default"):
        (tmp_path / f"{name}.yaml").write_text(RANK)
    with pytest.raises(SearchSpaceError) as info:
        load_search_space("quikc", config=CONFIG, num_blocks=6, search_dir=tmp_path)
    message = str(info.value)
    assert (
        "quikc.yaml" in message and "default, quick" in message and "did you mean quick" in message
    )
    assert "\n" not in message


def test_resolve_names_and_paths(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(RANK)
    assert resolve_search_space_path("mine", tmp_path) == tmp_path / "mine.yaml"
    assert resolve_search_space_path(str(tmp_path / "mine.yaml"), Path("elsewhere")).is_file()
    with pytest.raises(SearchSpaceError, match="other.yml"):
        resolve_search_space_path(str(tmp_path / "other.yml"), tmp_path)
    (tmp_path / "short.yml").write_text(RANK)  # listed as available as `short`: it loads so
    assert resolve_search_space_path("short", tmp_path) == tmp_path / "short.yml"


def test_lenient_and_permitted_values(tmp_path: Path) -> None:
    space = _load(
        tmp_path,
        "train.learning_rate: {type: float, low: 1e-4, high: '1e-3', log: true}\n"  # YAML strings
        "train.weight_decay: {type: int, low: 0, high: 1}\n"  # int range on a float field
        "peft.lora_alpha: {type: categorical, choices: [null, 16.0, 32]}\n"  # None accepts all
        "train.batch_size: {type: categorical, choices: ['8', 16]}\n",  # numeric field: coerced
    )
    lr, wd, alpha, batch = space.params
    assert (lr.low, lr.high) == (1e-4, 1e-3) and isinstance(lr.low, float)
    assert (wd.low, wd.high) == (0, 1)
    assert alpha.choices == (None, 16.0, 32)
    assert batch.choices == (8, 16)


@pytest.mark.parametrize(
    "step_keys",
    [
        "train.batch_size: {type: categorical, choices: [16, 32]}\n"
        "train.length_groups_per_step: {type: categorical, choices: [1, 16]}\n",
        "train.grad_accum_steps: {type: categorical, choices: [2, 4]}\n"
        "train.length_groups_per_step: {type: categorical, choices: [1, 16]}\n",
    ],
    ids=["batch-and-groups", "accumulation-and-groups"],
)
def test_step_keys_searched_together_are_judged_on_what_trials_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step_keys: str
) -> None:
    """Groups of 16 split every step a trial draws (16 or 32 rows; 8 x 2 or 8 x 4); alone they
    would meet the config's own step of 8 rows (batch size left to the data), which none draws."""
    monkeypatch.setitem(
        CONFIG, "train", {**CONFIG["train"], "batch_size": None, "grad_accum_steps": 1}
    )
    space = _load(tmp_path, step_keys)
    assert [p.key for p in space.params][-1] == "train.length_groups_per_step"
    with pytest.raises(SearchSpaceError, match="together would fail"):
        _load(tmp_path, step_keys.replace("[1, 16]", "[1, 16, 64]"))


def test_step_keys_are_judged_on_the_pairs_trials_draw_not_every_pair(tmp_path: Path) -> None:
    """Batch 12 is drawn only with rank 0, and then with groups of 1 or 4: the pair 12 and 8
    (which would fail) is never drawn, so the space is sound."""
    space = _load(
        tmp_path,
        RANK + "train.batch_size: {type: categorical, choices: [8, 16], "
        "when: [{if: {peft.lora_rank: 0}, choices: [12]}]}\n"
        "train.length_groups_per_step: {type: categorical, choices: [1, 8], "
        "when: [{if: {peft.lora_rank: 0}, choices: [1, 4]}]}\n",
    )
    assert [p.key for p in space.params][-1] == "train.length_groups_per_step"


def test_blocks_beside_the_same_number_is_drawn_once(tmp_path: Path) -> None:
    """[0, 2, blocks] on a 2-block model: the user wrote 2 once (the space may serve models
    of other depths), so it is one choice, not a refusal; a number written twice still is."""
    text = "peft.frozen_layers: {type: categorical, choices: [0, 2, blocks]}\n"
    assert _load(tmp_path, text, num_blocks=2).params[0].choices == (0, 2)
    assert _load(tmp_path, text, num_blocks=4).params[0].choices == (0, 2, 4)
    for twice in ("[0, 2, 2, blocks]", "[0, blocks, blocks]"):
        with pytest.raises(SearchSpaceError, match="choices: 2 is listed twice"):
            _load(tmp_path, text.replace("[0, 2, blocks]", twice), num_blocks=2)


def test_wide_step_ranges_past_the_combination_cap_are_judged_at_their_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 batch sizes x 30 accumulations x 2 group counts is past the cap: the check fell
    back to each value alone against the config's batch of 16, and refused groups of 32,
    which every drawn batch (a multiple of 32) splits."""
    monkeypatch.setitem(
        CONFIG, "train", {**CONFIG["train"], "batch_size": 16, "grad_accum_steps": 1}
    )
    space = _load(
        tmp_path,
        "train.batch_size: {type: int, low: 32, high: 3200, step: 32}\n"
        "train.grad_accum_steps: {type: int, low: 1, high: 30}\n"
        "train.length_groups_per_step: {type: categorical, choices: [1, 32]}\n",
    )
    assert [p.key for p in space.params][-1] == "train.length_groups_per_step"
    with pytest.raises(SearchSpaceError, match=r"length_groups_per_step=3 together would fail"):
        _load(  # past the cap as well, and groups of 3 (inside 1..128) split no batch of 128
            tmp_path,
            "train.batch_size: {type: int, low: 128, high: 12800, step: 128}\n"
            "train.grad_accum_steps: {type: int, low: 1, high: 50}\n"
            "train.length_groups_per_step: {type: int, low: 1, high: 128}\n",
        )


def test_blocks_resolves_to_the_block_count(tmp_path: Path) -> None:
    space = _load(
        tmp_path,
        "peft.frozen_layers: {type: int, low: 0, high: blocks}\n"
        "train.seed: {type: categorical, choices: [0, 3, blocks]}\n",
        num_blocks=4,
    )
    assert space.params[0].high == 4
    assert space.params[1].choices == (0, 3, 4)
    assert space.max_value("peft.frozen_layers") == 4


SHIPPED = sorted(SEARCH_DIR.glob("*.yaml"))


def test_the_documented_spaces_ship() -> None:
    assert {"default", "quick", "full_finetune", "models"} <= {p.stem for p in SHIPPED}


def _blocks_of(choice: str) -> int:
    """What the sweep's plan passes: a model choice's block count from its config."""
    from automl.model.choices import model_config
    from automl.model.load import load_model_config, num_blocks_of

    return num_blocks_of(load_model_config(model_config(choice, {})))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_space_loads_and_samples(path: Path) -> None:
    space = load_search_space(
        str(path), config=CONFIG, num_blocks=6, search_dir=SEARCH_DIR, blocks_of=_blocks_of
    )
    assert space.params
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert set(space.suggest(trial)) == set(space.keys)


def _default() -> SearchSpace:
    return load_search_space("default", config=CONFIG, num_blocks=6, search_dir=SEARCH_DIR)


def test_suggest_uses_the_branch_exactly_when_rank_is_zero() -> None:
    space = _default()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    ranks = set()
    for _ in range(50):
        trial = study.ask()
        values = space.suggest(trial)
        ranks.add(values["peft.lora_rank"])
        full = values["peft.lora_rank"] == 0
        assert (LR_BRANCH in trial.params) == full
        assert ("train.learning_rate" in trial.params) != full
        low, high = (1e-5, 1e-4) if full else (5e-4, 5e-3)
        assert low <= values["train.learning_rate"] <= high
        assert 1 <= values["train.epochs"] <= 4 and isinstance(values["train.epochs"], int)
        assert 0 <= values["peft.frozen_layers"] <= 6
        assert 0.0 <= values["train.weight_decay"] <= 0.1
        assert space.to_overrides(trial.params) == values
    assert ranks == {0, 4, 8, 16}


def test_suggest_through_rays_wrapper() -> None:
    optuna_search = pytest.importorskip("ray.tune.search.optuna.optuna_search")
    space = _default()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        captor = optuna_search._OptunaTrialSuggestCaptor(study.ask())
        values = space.suggest(captor)
        assert space.to_overrides(captor.captured_values) == values
        # what Ray hands the trainable: captured names merged with our returned keys
        assert space.to_overrides({**captor.captured_values, **values}) == values


def test_tpe_accepts_the_branch_names() -> None:
    space = _default()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    for i in range(12):
        trial = study.ask()
        values = space.suggest(trial)
        study.tell(trial, values["train.learning_rate"] * (i + 1))
    # past the 4 start-up trials TPE models the space: each trial holds the one learning-rate
    # name its rank selects, inside that branch's range
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        full = trial.params["peft.lora_rank"] == 0
        name = LR_BRANCH if full else "train.learning_rate"
        other = "train.learning_rate" if full else LR_BRANCH
        assert name in trial.params and other not in trial.params
        low, high = (1e-5, 1e-4) if full else (5e-4, 5e-3)
        assert low <= trial.params[name] <= high


def test_to_overrides_passes_unknown_names_through() -> None:
    assert _default().to_overrides({"other": 1, LR_BRANCH: 3e-5}) == {
        "other": 1,
        "train.learning_rate": 3e-5,
    }


def test_max_value_covers_branches_and_choices(tmp_path: Path) -> None:
    space = _default()
    assert space.max_value("train.epochs") == 4
    assert space.max_value("peft.lora_rank") == 16
    assert space.max_value("train.learning_rate") == 5e-3
    branchy = _load(
        tmp_path,
        RANK + "train.epochs: {type: int, low: 1, high: 3, when: [{if: {peft.lora_rank: 0}, "
        "high: 6}]}\n",
    )
    assert branchy.max_value("train.epochs") == 6
    with pytest.raises(KeyError):
        space.max_value("train.seed")


def test_as_dict_round_trips_through_yaml(tmp_path: Path) -> None:
    space = _default()
    described = space.as_dict()
    assert described["path"] == str(space.path)
    again = _load(tmp_path, yaml.safe_dump(described["params"], sort_keys=False))
    assert again.params == space.params


def test_first_trials_are_kept_in_order_and_logged(tmp_path: Path) -> None:
    text = (
        RANK + LR_BRANCHED + "train.epochs: {type: int, low: 1, high: 4}\n"
        "first_trials:\n"
        "  - {peft.lora_rank: 0, train.learning_rate: 5.0e-5, train.epochs: 3}\n"
        "  - {train.epochs: 1}\n"
    )
    space = _load(tmp_path, text)
    assert space.keys == ("peft.lora_rank", "train.learning_rate", "train.epochs")  # not a param
    assert space.first_trials == (
        {"peft.lora_rank": 0, "train.learning_rate": 5e-5, "train.epochs": 3},
        {"train.epochs": 1},
    )
    assert space.as_dict()["first_trials"][1] == {"train.epochs": 1}
    assert "first_trials" not in _load(tmp_path, RANK, name="plain.yaml").as_dict()


def test_exponents_without_a_dot_are_numbers_everywhere(tmp_path: Path) -> None:
    """YAML 1.1 reads `5e-5` as a string; ranges took it, first_trials and `if:` refused it."""
    text = (
        "train.learning_rate: {type: categorical, choices: [1e-3, 5e-4]}\n"
        "train.weight_decay: {type: float, low: 0.0, high: 0.1, "
        "when: [{if: {train.learning_rate: 1e-3}, low: 0.0, high: 0.01}]}\n"
        "train.warmup_ratio: {type: float, low: 1e-2, high: 2e-1, log: true}\n"
        "first_trials:\n"
        "  - {train.learning_rate: 1e-3, train.weight_decay: 5e-3}\n"
    )
    space = _load(tmp_path, text)
    assert space.first_trials == ({"train.learning_rate": 1e-3, "train.weight_decay": 5e-3},)
    study = optuna.create_study()
    study.enqueue_trial({"train.learning_rate": 1e-3})
    values = space.suggest(study.ask())
    assert values["train.learning_rate"] == 1e-3 and values["train.weight_decay"] <= 0.01


def test_exponents_with_a_dot_and_no_sign_are_numbers_everywhere(tmp_path: Path) -> None:
    """`1.0e3` (a dot, no sign in the exponent) was a string to YAML 1.1 too: first_trials said
    "'1.0e3' is not among [16.0, 1000.0]" of its own choices."""
    text = (
        "peft.lora_alpha: {type: categorical, choices: [1.6e1, 1.0e3]}\n"
        "train.weight_decay: {type: float, low: 0.0, high: 0.1, "
        "when: [{if: {peft.lora_alpha: 1.0E3}, low: 0.0, high: 0.01}]}\n"
        "first_trials:\n"
        "  - {peft.lora_alpha: 1.0e3, train.weight_decay: .5e-2}\n"
    )
    space = _load(tmp_path, text)
    assert space.first_trials == ({"peft.lora_alpha": 1000.0, "train.weight_decay": 5e-3},)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.batch_size: {type: float, low: 4, high: 40}\n",
         "train.batch_size: type float does not fit the config value None (int); use type: int"),
        ("train.batch_size: {type: categorical, choices: [16.0, 32.0]}\n",
         "train.batch_size: choices[0] (16.0) does not fit the config value None (int)"),
        ("train.batch_size: {type: categorical, choices: [true, 8]}\n",
         "choices[0] (True) does not fit the config value None (int)"),
        ("peft.lora_alpha: {type: categorical, choices: [8, x]}\n",
         "peft.lora_alpha: choices[1] must be a number or `blocks`, got 'x'"),
        ("peft.target_modules: {type: categorical, choices: [query, value]}\n",
         "peft.target_modules: choices[0] ('query') does not fit the config value None (list)"),
    ],
)  # fmt: skip
def test_a_setting_left_to_auto_is_typed_by_the_schema(
    tmp_path: Path, text: str, message: str
) -> None:
    """Settings whose default is None (auto) were not type-checked: the space loaded and every
    trial failed (or a traceback)."""
    config = {**CONFIG, "train": {**CONFIG["train"], "batch_size": None},
              "peft": {**CONFIG["peft"], "target_modules": None}}  # fmt: skip
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as err:
        load_search_space(str(path), config=config, num_blocks=6, search_dir=tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    path.write_text("train.batch_size: {type: categorical, choices: [null, 8, 16]}\n")
    space = load_search_space(str(path), config=config, num_blocks=6, search_dir=tmp_path)
    assert space.params[0].choices == (None, 8, 16)  # auto, or a size


def test_null_fits_an_optional_setting_whatever_the_experiment_set_it_to(tmp_path: Path) -> None:
    """`train.batch_size: [8, null, 16]` loaded under the default experiment (batch size auto)
    and was refused under smoke's batch size 16, naming null as no value of the setting."""
    path = tmp_path / "x.yaml"
    path.write_text("train.batch_size: {type: categorical, choices: [8, null, 16]}\n")
    config = {**CONFIG, "train": {**CONFIG["train"], "batch_size": 16}}
    space = load_search_space(str(path), config=config, num_blocks=6, search_dir=tmp_path)
    assert space.params[0].choices == (8, None, 16)
    path.write_text("train.learning_rate: {type: categorical, choices: [0.001, null]}\n")
    with pytest.raises(SearchSpaceError, match=r"choices\[1\] \(None\) does not fit"):
        load_search_space(str(path), config=config, num_blocks=6, search_dir=tmp_path)
