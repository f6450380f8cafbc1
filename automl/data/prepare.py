"""Load, split and tokenize once: what every trial of a sweep (or one `automl-train`) trains on."""

from __future__ import annotations

import logging
import time

from automl.config.schema import Config
from automl.data.load import load_task_data
from automl.data.tokenized import PreparedData, tokenize
from automl.model.load import load_tokenizer

log = logging.getLogger("automl.train")


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
