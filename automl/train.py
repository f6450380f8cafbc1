"""`automl-train`: fine-tune once with the composed config and print one JSON line of results.

automl-train                                  # MiniLM + chatterbot topics, LoRA rank 8
automl-train experiment=smoke                 # tiny model, seconds
automl-train train.learning_rate=5e-5 peft.lora_rank=0 peft.frozen_layers=2
"""

from __future__ import annotations

import json
import logging
import time

from automl.cli import hydra_app
from automl.config import Config
from automl.data import PreparedData, load_task_data, tokenize
from automl.modeling import ModelError, load_model_config, load_tokenizer, num_blocks_of
from automl.training import run_trial

log = logging.getLogger("automl.train")


def check_model(conf: Config) -> int:
    """Validate the model settings from its config alone (no weights); return its block count."""
    blocks = num_blocks_of(load_model_config(conf.model))
    if conf.peft.frozen_layers > blocks:
        raise ModelError(
            f"peft.frozen_layers: {conf.peft.frozen_layers} is more than "
            f"the model's {blocks} blocks"
        )
    return blocks


def prepare_data(conf: Config) -> PreparedData:
    """Load, split and tokenize the data once."""
    started = time.perf_counter()
    task = load_task_data(conf.data)
    tokenizer = load_tokenizer(conf.model)
    data = tokenize(task, tokenizer, conf.model.max_length)
    log.info(
        "data: %s — %d train / %d val, %d classes (%.1f s)",
        data.description, len(data.train), len(data.val), len(data.label_names),
        time.perf_counter() - started,
    )  # fmt: skip
    return data


def train(conf: Config) -> dict[str, object]:
    check_model(conf)
    data = prepare_data(conf)
    result = run_trial(conf, data)
    summary = result.summary()
    print(json.dumps(summary), flush=True)
    return summary


main = hydra_app(train)

if __name__ == "__main__":
    main()
