"""`automl-train`: fine-tune once with the composed config and print one JSON line of results.

automl-train                                  # MiniLM + chatterbot topics, LoRA rank 8
automl-train experiment=smoke                 # tiny model, seconds
automl-train train.learning_rate=5e-5 peft.lora_rank=0 peft.frozen_layers=2
"""

from __future__ import annotations

import json
import logging

from automl.cli.app import hydra_app, multirun_job
from automl.config.schema import Config, ConfigError
from automl.config.values import unread_run_settings

log = logging.getLogger("automl.train")


def train(conf: Config) -> dict[str, object]:
    # torch and transformers load here, not on import: a Ctrl-C while they do is one line
    from automl.data.prepare import prepare_data
    from automl.model.build import check_lora_targets
    from automl.model.load import check_model, load_model_config
    from automl.train.device import pick_device
    from automl.train.loop import run_trial

    if conf.sweep.dry_run:  # it would train at once
        raise ConfigError(
            "config: sweep.dry_run: automl-sweep's check without compute; automl-train has "
            "none (it trains at once): run automl-sweep sweep.dry_run=true to check a config"
        )
    pick_device(conf.train.device)  # `cuda` without one: refused before the data is read
    config = load_model_config(conf.model)
    blocks = check_model(conf, config)
    lora = conf.peft.lora_rank > 0 and conf.peft.frozen_layers < blocks
    if lora:  # as the sweep's plan does
        check_lora_targets(conf.model, conf.peft, config, conf.peft.frozen_layers > 0)
    for note in unread_run_settings(conf, lora_possible=lora, sweep=False):
        log.warning(note)
    data = prepare_data(conf)
    # the test split is for exported models only; the best epoch is chosen as a sweep's trial
    # chooses it (sweep.metric, sweep.mode)
    result = run_trial(conf, data.without_test(), metric=conf.sweep.metric, mode=conf.sweep.mode)
    summary = result.summary()
    print(json.dumps(summary), flush=True)
    return summary


def diverged(summary: dict[str, object]) -> str | None:
    """Why the training left no model worth keeping (exit 1); None when it completed. In a
    multirun (`-m`), which job."""
    if summary["status"] == "completed":
        return None
    job = multirun_job()
    return f"training diverged{'' if job is None else f' (job {job})'}: {summary.get('message')}"


main = hydra_app(train, diverged)


if __name__ == "__main__":
    main()
