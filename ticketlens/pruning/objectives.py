"""What a phase trains and how it is judged: batches and metrics per objective.

- ``classification``: the task's labels; the task's metric (accuracy, or F1 / MCC); for a
  regression task (STS-B) one output trained with mean squared error, judged by Pearson.
- ``mlm`` / ``clm``: masked or causal language modelling on the task's texts; perplexity on
  dev (lower is better). MLM masking is drawn from a generator seeded per phase, and the dev
  masking from a fixed seed, so every round and control is scored on the same masked tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ticketlens.data.batching import TensorData, collate, lm_collate
from ticketlens.models.load import uses_token_types
from ticketlens.pruning.metrics import classification_metrics, regression_metrics
from ticketlens.pruning.train import evaluate, evaluate_lm

DEV_MASKING_SEED = 1234


def batch_fn(setup: Any, data: TensorData, seed: int) -> Callable[[list[int]], dict]:
    objective = setup.objective
    tok = setup.tokenizer
    types = uses_token_types(setup.model.config)
    g = torch.Generator().manual_seed(seed)
    specials = tuple(i for t in ("[CLS]", "[SEP]", "<s>", "</s>", "<|endoftext|>")
                     if (i := tok.tok.token_to_id(t)) is not None)

    def make(idx: list[int]) -> dict:
        if objective == "classification":
            b = collate(data, idx, tok.pad_id)
        else:
            b = lm_collate(data, idx, tok.pad_id, objective, g, tok.mask_id, tok.vocab_size,
                           specials)
        if not types:
            b.pop("token_type_ids")
        return b

    return make


def evaluate_metrics(acc: Any, model: torch.nn.Module, setup: Any,
                     batch_size: int) -> dict[str, float]:
    dev = setup.dev
    fn = batch_fn(setup, dev, DEV_MASKING_SEED)
    if setup.objective == "classification":
        preds, loss = evaluate(acc, model, dev, batch_size=batch_size,
                               pad_id=setup.tokenizer.pad_id, batch_fn=fn)
        if dev.regression:
            return {**regression_metrics(preds, torch.tensor(dev.labels)), "loss": loss}
        return {**classification_metrics(preds, torch.tensor(dev.labels), setup.task.metric),
                "loss": loss}
    loss = evaluate_lm(acc, model, dev, batch_size=batch_size, batch_fn=fn,
                       causal=setup.objective == "clm")
    return {"perplexity": math.exp(min(loss, 50.0)), "loss": loss}
