"""Load, split and tokenize once: what every trial of a sweep (or one `automl-train`) trains on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from automl.config.schema import Config, ModelConfig
from automl.data import quality
from automl.data.fingerprint import data_fingerprint
from automl.data.load import load_task_data
from automl.data.task import TaskData
from automl.data.tokenized import PreparedData, tokenize
from automl.model.choices import tokenization_key
from automl.model.load import ModelError, display_name, load_model_config, load_tokenizer

log = logging.getLogger("automl.train")


def prepare_data(conf: Config) -> PreparedData:
    """Load, split and tokenize the data once."""
    data, _ = prepare_data_for_models(conf, {})
    return data


def prepare_data_for_models(
    conf: Config,
    models: Mapping[str, ModelConfig],
    check_loaded: Callable[[TaskData, dict[str, Any]], None] | None = None,
) -> tuple[PreparedData, dict[str, PreparedData]]:
    """The data for `conf.model`, and for each model choice of a search space (`models`, by
    choice) the same split tokenized its way: once per distinct tokenizer and max_length.
    `check_loaded` judges the loaded rows and their fingerprint before any tokenizing (a
    resume's check that the data is the data it started on)."""
    started = time.perf_counter()
    task = load_task_data(conf.data)
    fingerprint = data_fingerprint(task)  # hashes every row: once, for all tokenizations
    if check_loaded is not None:
        check_loaded(task, fingerprint)
    quality.enforce_before_tokens(task, conf.data.quality, conf.data.min_class_examples)
    tokenizer = load_tokenizer(conf.model)
    data = tokenize(task, tokenizer, conf.model.max_length, fingerprint)
    log.info(
        "data: %s — %d train / %d val / %d test, %d classes (%.1f s)",
        data.description, len(data.train), len(data.val),
        len(data.test) if data.test is not None else 0, len(data.label_names),
        time.perf_counter() - started,
    )  # fmt: skip
    if conf.data.quality != "off":
        data.quality = check_quality(conf, task, data, tokenizer)
    # each tokenization once, with its largest token id (for every model that reads it)
    shared = {tokenization_key(conf.model): (data, top_token_id(data))}
    check_ids_fit(conf.model, shared[tokenization_key(conf.model)][1])
    by_choice = {}
    for choice, model in models.items():
        key = tokenization_key(model)
        if key not in shared:
            log.info("data: tokenizing again for model %s", choice)
            tokenized = tokenize(task, load_tokenizer(model), model.max_length, fingerprint)
            tokenized.quality = data.quality
            shared[key] = (tokenized, top_token_id(tokenized))
        by_choice[choice], top = shared[key]
        if model != conf.model:
            check_ids_fit(model, top)
    return data, by_choice


def top_token_id(data: PreparedData) -> int:
    """The largest token id the splits hold, the pad id counted."""
    splits = [s for s in (data.train, data.val, data.test) if s is not None]
    ids = (max(x) for s in splits for x in s.input_ids if x)
    return max(data.pad_token_id, max(ids, default=-1))


def check_ids_fit(cfg: ModelConfig, top: int) -> None:
    """Token ids past the model's embeddings (`top`: the largest; tokens added to a tokenizer
    whose model was not resized) failed every trial with an IndexError in the embedding: one
    line, before any compute. Only where the config names its vocabulary's size."""
    size = getattr(load_model_config(cfg), "vocab_size", None)
    if not isinstance(size, int) or isinstance(size, bool):
        return
    if top >= size:
        raise ModelError(
            f"model.name_or_path: {display_name(cfg)}: its tokenizer gives token id {top}, past "
            f"the model's {size} embeddings (tokens added to the tokenizer, the model not "
            "resized?)"
        )


def check_quality(conf: Config, task: TaskData, data: PreparedData, tokenizer: Any) -> dict:
    """The data-quality report (data/quality.py), logged in a few lines; with
    `data.quality=fail` a problem stops the run here, before any compute."""
    lengths = _untruncated_lengths(task, data, tokenizer, conf.model.max_length)
    report = quality.assess(task, lengths, conf.model.max_length, conf.data.min_class_examples)
    first, *rest = quality.summary_lines(report)
    log.info("%s", first)
    for line in rest:
        log.warning("%s", line)
    quality.enforce(report, conf.data.quality)
    return report


def _untruncated_lengths(
    task: TaskData, data: PreparedData, tokenizer: Any, max_length: int
) -> dict[str, np.ndarray]:
    """Token lengths before truncation: only the texts cut at `max_length` are tokenized again."""
    out = {}
    for name, split in quality.splits_of(task).items():
        tokenized = getattr(data, name)
        lengths = tokenized.lengths.copy()
        cut = np.flatnonzero(lengths >= max_length)
        if cut.size:
            ids = tokenizer([split.texts[i] for i in cut], truncation=False)["input_ids"]
            lengths[cut] = [len(x) for x in ids]
        out[name] = lengths
    return out
