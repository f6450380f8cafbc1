"""The model: a pre-trained base (or a tiny one from a config), its classification head (a
classifier checkpoint's rows by label name), its frozen depth, LoRA adapters via peft, parameter
counts, and the trainable tensors that checkpoints hold."""

from automl.model.build import build_model, count_parameters, find_blocks
from automl.model.load import (
    ModelError,
    ModelInfo,
    check_model,
    load_model_config,
    load_tokenizer,
    num_blocks_of,
)
from automl.model.state import load_trainable_state, merged_for_export, trainable_state

__all__ = [
    "ModelError", "ModelInfo", "build_model", "check_model", "count_parameters", "find_blocks",
    "load_model_config", "load_tokenizer", "load_trainable_state", "merged_for_export",
    "num_blocks_of", "trainable_state",
]  # fmt: skip
