"""Pruning operations on torch tensors: magnitude (global or per tensor), one-shot to given
counts, random masks with the same counts, and the numpy <-> torch boundary with ``core``.

The selection reproduces ``torch.nn.utils.prune`` (tested against it): ``round(amount *
remaining)`` weights, chosen by ``torch.topk(largest=False)`` over the surviving weights
concatenated in ``weights`` order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.anatomy import Anatomy

TorchMasks = dict[str, torch.Tensor]


def to_torch(masks: Mapping[str, Any]) -> TorchMasks:
    """Masks (numpy bool arrays from a run, or tensors) as CPU bool tensors."""
    return {n: m.to("cpu", torch.bool) if isinstance(m, torch.Tensor)
            else torch.from_numpy(M.as_bool(m).copy()) for n, m in masks.items()}


def layer_groups(anatomy: Anatomy) -> list[list[str]]:
    """The prunable tensors of each layer (``--scope layer`` for weights)."""
    groups: dict[int, list[str]] = {}
    for t in anatomy.tensors:
        groups.setdefault(t.layer, []).append(t.name)
    return list(groups.values())


def ones_like(weights: Mapping[str, Any]) -> TorchMasks:
    return {name: torch.ones(tuple(w.shape), dtype=torch.bool) for name, w in weights.items()}


def magnitude_prune(
    weights: Mapping[str, Any],
    masks: Mapping[str, Any],
    amount: float,
    scope: str = "global",
    groups: list[list[str]] | None = None,
) -> TorchMasks:
    """Prune ``amount`` (a fraction) of the *remaining* weights with the smallest magnitude.

    ``scope="global"`` ranks all tensors together, ``"tensor"`` each tensor on its own. The
    selection reproduces ``torch.nn.utils.prune.global_unstructured`` /
    ``l1_unstructured``: ``round(amount * remaining)`` weights, chosen by ``torch.topk``
    (``largest=False``) over the surviving weights concatenated in ``weights`` order.
    ``scope="layer"`` ranks each of ``groups`` (the tensors of one layer) on its own.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    if scope == "layer":
        if groups is None:
            raise ValueError("scope 'layer' needs the groups of tensor names")
        out: TorchMasks = {}
        for g in groups:
            out.update(magnitude_prune({n: weights[n] for n in g}, {n: masks[n] for n in g},
                                       amount, "global"))
        return {n: out[n] for n in weights}
    names = list(weights)
    if scope == "tensor":
        masks = to_torch(masks)
        return {n: _prune_vector(weights[n], masks[n], amount) for n in names}
    if scope != "global":
        raise ValueError(f"scope must be 'global', 'tensor' or 'layer', got {scope!r}")
    flat_w = torch.cat([weights[n].detach().reshape(-1).float().cpu() for n in names])
    masks = to_torch(masks)
    flat_m = torch.cat([masks[n].reshape(-1).cpu() for n in names])
    new = _prune_vector(flat_w, flat_m, amount)
    out = {}
    start = 0
    for n in names:
        size = weights[n].numel()
        out[n] = new[start : start + size].reshape(weights[n].shape).clone()
        start += size
    return out


def magnitude_like(weights: Mapping[str, Any], like: Mapping[str, Any],
                   scope: str = "global", groups: list[list[str]] | None = None) -> TorchMasks:
    """One-shot magnitude pruning of ``weights`` down to the kept counts of ``like``: the
    same total (``global``), the same count in every tensor (``tensor``) or in every group of
    ``groups`` (``layer``)."""
    ones = ones_like(weights)
    like = to_torch(like)
    if scope == "layer":
        if groups is None:
            raise ValueError("scope 'layer' needs the groups of tensor names")
        out: TorchMasks = {}
        for g in groups:
            out.update(magnitude_like({n: weights[n] for n in g}, {n: like[n] for n in g}))
        return {n: out[n] for n in weights}
    if scope == "tensor":
        return {n: _prune_vector(weights[n], ones[n], 1.0 - int(like[n].sum()) / like[n].numel())
                for n in weights}
    kept, total = M.count_kept(like)
    return magnitude_prune(weights, ones, (total - kept) / total, scope)


def _prune_vector(w: torch.Tensor, m: torch.Tensor, amount: float) -> torch.Tensor:
    w = w.detach().float().cpu()
    m = m.cpu().to(torch.bool)
    alive = m.reshape(-1).nonzero().squeeze(1)  # indices of surviving weights
    k = round(amount * alive.numel())  # same rounding as torch.nn.utils.prune
    new = m.clone()
    if k:
        scores = w.reshape(-1)[alive].abs()
        drop = torch.topk(scores, k=k, largest=False).indices
        new.view(-1)[alive[drop]] = False
    return new


def random_masks_like(
    masks: Mapping[str, Any], generator: torch.Generator
) -> TorchMasks:
    """Masks with exactly the same number of kept weights per tensor, at random positions."""
    out: TorchMasks = {}
    for name, m in to_torch(masks).items():
        kept = int(m.sum())
        new = torch.zeros(m.numel(), dtype=torch.bool)
        new[torch.randperm(m.numel(), generator=generator)[:kept]] = True
        out[name] = new.reshape(m.shape)
    return out


# ----------------------------------------------------------------------------- N:M
def nm_prune(weights: Mapping[str, Any], masks: Mapping[str, Any], layouts: Mapping[str, str],
             k: int, m: int) -> TorchMasks:
    """Keep the ``k`` largest ``|w|`` of every ``m`` consecutive weights along the input
    dimension, among the weights ``masks`` still keeps (pruned ones never come back, so
    IMP's masks stay nested). ``layouts[name]``: ``linear`` or ``conv1d``."""
    from ticketlens.pruning.patterns import nm_mask

    out: TorchMasks = {}
    for name, mask in to_torch(masks).items():
        scores = weights[name].detach().abs().float().cpu()
        scores = torch.where(mask, scores, torch.full_like(scores, -1.0))
        out[name] = nm_mask(scores, k, m, layouts[name]) & mask
    return out


def nm_kept_per_group(masks: Mapping[str, Any], layouts: Mapping[str, str], m: int) -> int | None:
    """``k`` when every mask holds exactly ``k`` of every ``m`` (the same ``k`` for all),
    else ``None``."""
    from ticketlens.pruning.patterns import is_nm

    masks = to_torch(masks)
    ks = {round(int(t.sum()) * m / t.numel()) for t in masks.values()}
    if len(ks) != 1:
        return None
    k = ks.pop()
    if not all(is_nm(t, k, m, layouts[n]) for n, t in masks.items()):
        return None
    return k


def random_nm_masks(shapes: Mapping[str, tuple[int, ...]], layouts: Mapping[str, str], k: int,
                    m: int, generator: torch.Generator) -> TorchMasks:
    """Random ``k`` of every ``m`` consecutive weights along the input dimension."""
    from ticketlens.pruning.patterns import nm_mask

    return {n: nm_mask(torch.rand(tuple(s), generator=generator), k, m, layouts[n])
            for n, s in shapes.items()}
