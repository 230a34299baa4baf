"""Everything a search needs before its first step: task, tokenizer, model, anatomy, schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core import hub as core_hub
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.config import FindConfig, Rewind, Steps
from ticketlens.core.errors import ConfigError, ModelError
from ticketlens.data import synthetic
from ticketlens.data.batching import TensorData
from ticketlens.data.tasks import TaskData, load_task
from ticketlens.data.tokenizer import TextTokenizer, builtin_tokenizer, fit_word_tokenizer
from ticketlens.models.anatomy import anatomy_of
from ticketlens.models.load import PRESETS, LoadedModel, build_preset, load_pretrained

DEFAULT_PRESET_STEPS = "300it"
DEFAULT_PRETRAINED_STEPS = "3ep"


@dataclass
class Setup:
    cfg: FindConfig
    task: TaskData
    tokenizer: TextTokenizer
    loaded: LoadedModel
    anatomy: Anatomy
    train: TensorData
    dev: TensorData
    total_steps: int
    lr: float
    rewind: Rewind  # resolved: mode init | step | lr
    rewind_step: int
    objective: str = "classification"
    steps_per_epoch: int = 1  # optimizer steps in one pass over the training data

    @property
    def metric(self) -> str:
        return self.task.metric if self.objective == "classification" else "perplexity"

    @property
    def model(self) -> Any:
        return self.loaded.model


def prepare(cfg: FindConfig) -> Setup:
    objective = cfg.model.objective
    probe: list[bool] = []  # the hub is probed at most once per search, when needed

    def hub_offline() -> bool:
        if not probe:
            probe.append(core_hub.hub_offline())
        return probe[0]

    task = load_task(cfg.data, objective, hub_offline=hub_offline)
    name = cfg.model.model
    if name in PRESETS:
        if task.source == "builtin":
            tokenizer = builtin_tokenizer()
        else:
            texts = task.train.texts + (task.train.pairs or [])
            tokenizer = fit_word_tokenizer(texts)
        loaded = build_preset(name, vocab_size=tokenizer.vocab_size,
                              num_labels=task.num_labels, pad_id=tokenizer.pad_id,
                              seed=cfg.seed, objective=objective)
    else:
        local = None if Path(name).is_dir() or name.endswith(".gguf") else hub_offline()
        loaded = load_pretrained(name, num_labels=task.num_labels, objective=objective,
                                 local_only=local,
                                 seed=cfg.seed)
        if loaded.tokenizer_file is None:
            raise ModelError(f"{name}: no tokenizer found (neither tokenizer.json nor files "
                             "AutoTokenizer can turn into a fast tokenizer)")
        tokenizer = TextTokenizer.from_file(loaded.tokenizer_file, kind="model")
        if objective == "classification":
            # decoders classify at the last non-pad token: the model must know our padding
            loaded.model.config.pad_token_id = tokenizer.pad_id
    anatomy = anatomy_of(loaded.model, cfg.model.include, cfg.model.exclude)
    if objective == "mlm" and tokenizer.mask_id is None:
        raise ConfigError("--objective mlm needs a tokenizer with a mask token")

    def encode(split) -> TensorData:
        return TensorData(tokenizer.encode(split.texts, split.pairs, cfg.data.max_length),
                          split.labels, regression=task.regression)

    train, dev = encode(task.train), encode(task.dev)
    per_epoch = math.ceil(len(train) / cfg.train.batch_size)
    steps = cfg.train.steps
    if steps == "auto":
        if loaded.pretrained:
            steps = DEFAULT_PRETRAINED_STEPS
        elif task.source == "builtin":
            steps = synthetic.TASKS[task.name].default_steps
        else:
            steps = DEFAULT_PRESET_STEPS
    total = Steps.parse(steps).resolve(per_epoch)
    if total < 0 or (total == 0 and not loaded.pretrained):
        raise ConfigError("--steps must be at least 1 (0, no training, needs a pretrained "
                          "model)")
    if total == 0 and cfg.prune.early_bird:
        raise ConfigError("--early-bird draws masks during training; --steps 0 trains nothing")
    if total == 0 and cfg.train.distill:
        raise ConfigError("--distill is a training loss; --steps 0 trains nothing")
    if cfg.train.lr:
        lr = cfg.train.lr
    elif loaded.pretrained:
        lr = 2e-5
    elif task.source == "builtin":
        lr = synthetic.TASKS[task.name].default_lr
    else:
        lr = 1e-3

    rewind = Rewind.parse(cfg.prune.rewind)
    if rewind.mode == "auto":
        rewind = (Rewind("init") if loaded.pretrained
                  else Rewind("step", Steps(float(max(1, round(0.05 * total))), "it")))
    rewind_step = rewind.at.resolve(per_epoch) if rewind.mode == "step" else 0
    if rewind.mode == "step" and rewind_step >= total:
        raise ConfigError(f"--rewind {rewind} is at or past the end of training ({total} steps)")
    world_min = cfg.train.grad_accum
    if cfg.train.batch_size < world_min:
        raise ConfigError("--batch-size must be at least --grad-accum")
    return Setup(cfg, task, tokenizer, loaded, anatomy, train, dev, total, lr, rewind,
                 rewind_step, objective, per_epoch)
