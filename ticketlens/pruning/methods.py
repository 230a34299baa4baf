"""One-shot pruners (``pruning.oneshot``) inside a run: ``find --method``, ``--pattern`` and the
``--compare-methods`` controls.

- ``find --method magnitude|wanda|sparsegpt``: round 0 trains dense; round 1 prunes the
  trained dense model in one shot, every prunable matrix to ``--target-sparsity`` (or to the
  ``--pattern``), with ``--calibration`` training examples; the pruned weights (SparseGPT's
  updated ones) are evaluated as they are (the round's ``extra["oneshot"]["metrics"]``, *no
  retraining*), then the mask is trained from the rewind point like a ticket: round 1 is the
  ticket. With ``--steps 0`` (a pretrained model, no training) round 0 is the model as
  loaded and round 1 the pruned weights as the method leaves them (SparseGPT's updated
  weights), evaluated as they are.
- ``--pattern N:M``: the target sparsity is ``1 - N/M``. A ``--target-sparsity`` left at its
  default (0.8) is set to it; any other value that differs is refused. IMP reaches the pattern
  by :func:`ticketlens.pruning.rules.nm_schedule` (k of every M per round, the last round
  exactly N:M); the one-shot methods prune to N:M directly.
- ``--compare-methods``: informative controls ``method_<name>`` that prune the trained dense
  model with that method at the ticket's sparsity (uniform per matrix, as in the papers) and
  pattern, and train from the ticket's start.

Calibration examples are the first ``count`` of ``torch.randperm(len(train), generator=
torch.Generator().manual_seed(seed))`` with ``seed = derive_seed(run seed, "calibration")``
(:func:`ticketlens.pruning.oneshot.pick_calibration`); the record holds the count, the seed,
the indices (up to :data:`MAX_RECORDED_INDICES`) and their SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import FindConfig, PruneConfig
from ticketlens.core.errors import ConfigError
from ticketlens.pruning import ops
from ticketlens.pruning.arms import derive_seed
from ticketlens.pruning.patterns import Pattern, parse_pattern

MAX_RECORDED_INDICES = 1024
DEFAULT_TARGET = PruneConfig().target_sparsity


def resolve_config(cfg: FindConfig) -> FindConfig:
    """``cfg`` with the target sparsity an N:M ``--pattern`` implies (see the module doc)."""
    p = cfg.prune
    pattern = parse_pattern(p.pattern)
    if pattern is None or abs(p.target_sparsity - pattern.sparsity) < 1e-9:
        return cfg
    if abs(p.target_sparsity - DEFAULT_TARGET) > 1e-9:
        raise ConfigError(f"--pattern {pattern} prunes {pattern.sparsity:g} of the weights; "
                          f"--target-sparsity {p.target_sparsity:g} contradicts it (leave it "
                          "out or give the same value)")
    return dataclasses.replace(cfg, prune=dataclasses.replace(
        p, target_sparsity=pattern.sparsity))


def check(cfg: FindConfig, setup: Any) -> None:
    """Refuse, in one line and before any training, what the methods cannot do."""
    p = cfg.prune
    pattern = parse_pattern(p.pattern)
    oneshot = p.method != "imp"
    for on, what in ((oneshot, f"--method {p.method}"), (pattern is not None,
                                                          f"--pattern {p.pattern}")):
        if on and p.granularity != "weight":
            raise ConfigError(f"{what} prunes weights; it cannot be combined with "
                              f"--granularity {p.granularity}")
        if on and p.early_bird:
            raise ConfigError(f"{what} cannot be combined with --early-bird")
    if pattern is not None:
        for t in setup.anatomy.tensors:
            cols = t.shape[1] if t.layout == "linear" else t.shape[0]
            if len(t.shape) != 2 or cols % pattern.m:
                raise ConfigError(f"--pattern {pattern}: {t.name} has {cols} inputs, not a "
                                  f"multiple of M={pattern.m}")
    if (oneshot or p.compare_with) and p.calibration > len(setup.train):
        raise ConfigError(f"--calibration {p.calibration} is more than the {len(setup.train)} "
                          "examples of the training split")


def layouts(anatomy: Any) -> dict[str, str]:
    return {t.name: t.layout for t in anatomy.tensors}


def ticket_pattern(ctx: Any, ticket: int) -> Pattern | None:
    """The ticket's ``k:M`` when the run has an N:M ``--pattern`` (``k`` = N at the last
    round; more with ``--stop-on-drop`` at an earlier one), else ``None``."""
    pattern = parse_pattern(ctx.cfg.prune.pattern)
    if pattern is None:
        return None
    k = ops.nm_kept_per_group(ctx.mask(ticket), layouts(ctx.s.anatomy), pattern.m)
    return Pattern(k, pattern.m) if k is not None and k < pattern.m else None


def calibration(ctx: Any) -> Any:
    """The run's calibration examples (:class:`~ticketlens.pruning.oneshot.Calibration`)."""
    from ticketlens.pruning.oneshot import calibration_batches

    s = ctx.s
    return calibration_batches(s.train, ctx.cfg.prune.calibration,
                               derive_seed(ctx.cfg.seed, "calibration"),
                               pad_id=s.tokenizer.pad_id)


def calibration_record(cal: Any, num_examples: int) -> dict[str, Any]:
    """What the manifest records about the calibration examples (enough to redraw them)."""
    idx = list(cal.indices)
    rec: dict[str, Any] = {
        "count": len(idx), "seed": cal.seed, "split": "train", "examples_in_split": num_examples,
        "tokens": cal.tokens,
        "how": "torch.randperm(examples_in_split, generator=torch.Generator().manual_seed("
               "seed))[:count]",
        "sha256": hashlib.sha256(",".join(map(str, idx)).encode()).hexdigest()}
    if len(idx) <= MAX_RECORDED_INDICES:
        rec["indices"] = idx
    return rec


def prune_dense(ctx: Any, method: str, sparsity: float | None, pattern: Pattern | None
                ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]:
    """Prune the trained dense model (round 0) with ``method`` in one shot; evaluate the
    pruned weights without retraining. Returns the masks, the record's ``extra``:
    ``{"oneshot": {method, pattern, sparsity, metrics, seconds, peak memory, layers},
    "calibration": calibration_record}``, and the pruned weights (the whole state dict;
    SparseGPT's updated weights), which a run without training (``--steps 0``) keeps as
    they are."""
    from ticketlens.pruning.oneshot import oneshot_prune

    dense = dict(ctx.load_weights(0))
    base = ctx.trainer.base
    base.load_state_dict(dense)
    cal = calibration(ctx)
    res = oneshot_prune(base, ctx.s.anatomy, ctx.names, cal.batches, method,
                        None if pattern is not None else sparsity, pattern)
    pruned = {**dense, **{n: w.detach().to("cpu", dense[n].dtype) for n, w in
                          res.weights.items()}}
    metrics = ctx.evaluate_state(pruned)
    masks = ops.to_torch(res.masks)
    figures = res.to_dict()
    layers = [{k: s[k] for k in ("name", "density", "tokens", "rel_error")}
              for s in figures.pop("stats")]
    figures.update(sparsity=M.sparsity(masks), metrics=metrics, layers=layers)
    return masks, {"oneshot": figures,
                   "calibration": calibration_record(cal, len(ctx.s.train))}, pruned


def start_after_oneshot(ctx: Any, ticket: int, pruned: dict[str, torch.Tensor]
                        ) -> dict[str, torch.Tensor] | Any:
    """Where an arm pruned in one shot starts: with training, the ticket's start (the rewind
    point, masked); with ``--steps 0`` the pruned weights themselves, so the arm is the
    method's own output (for SparseGPT the reconstruction update is kept)."""
    return pruned if ctx.s.total_steps == 0 else ctx.start_state(ticket)
