"""Keeping pruned weights exactly zero while training.

Masks are applied to the parameters themselves (no forward hooks, no ``weight_orig``): the
forward pass costs what the dense one costs. Two multiplications per step keep pruned weights
at exactly zero under AdamW: the gradients are masked after backward (so Adam's moments of
pruned weights stay zero), and the weights are masked again after the optimizer step (so
weight decay or any optimizer quirk cannot regrow them).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ticketlens.pruning.ops import to_torch


class MaskEnforcer:
    """Holds float masks aligned with the model's prunable parameters."""

    def __init__(self, model: torch.nn.Module, masks: Mapping[str, torch.Tensor]):
        params = dict(model.named_parameters())
        missing = [n for n in masks if n not in params]
        if missing:
            raise KeyError(f"mask names a parameter the model lacks: {missing[0]}")
        self.names = list(masks)
        self.params = [params[n] for n in self.names]
        tm = to_torch(masks)  # numpy masks from a run, or tensors
        self.masks = [tm[n].to(device=params[n].device, dtype=params[n].dtype)
                      for n in self.names]

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        torch._foreach_mul_(self.params, self.masks)

    @torch.no_grad()
    def apply_to_grads(self) -> None:
        pairs = [(p.grad, m) for p, m in zip(self.params, self.masks, strict=True)
                 if p.grad is not None]
        if pairs:
            grads, masks = zip(*pairs, strict=True)
            torch._foreach_mul_(list(grads), list(masks))


def prunable_weights(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {n: params[n].detach() for n in names}
