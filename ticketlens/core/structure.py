"""Between weight masks and unit masks (heads, FFN neurons, whole FFN blocks).

A unit is *alive* in a weight mask unless it is dead: a head is dead when its Q, K, V or O
slice is fully pruned (it can then contribute nothing); an FFN neuron when its input row
(or gate row) or its output column is fully pruned; an FFN block when all its neurons are.
Structured masks (as released by Prasanna et al. 2020) give heads and FFN blocks directly and
expand to weight masks by zeroing whole slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.masks import Masks


@dataclass(frozen=True)
class UnitMasks:
    """``head``: (layers, heads); ``neuron``: (layers, intermediate); ``ffn``: (layers,)."""

    head: torch.Tensor
    neuron: torch.Tensor
    ffn: torch.Tensor


def kept_fraction(masks: Masks, s) -> float:
    part = masks[s.name][s.index()]
    return float(part.float().mean()) if part.numel() else 0.0


def head_kept_fractions(anatomy: Anatomy, masks: Masks) -> torch.Tensor:
    """(layers, heads, 4): kept fraction of each head's Q, K, V, O slice (NaN if unpruned)."""
    out = torch.full((anatomy.num_layers, anatomy.num_heads, 4), float("nan"))
    for _, layer, h in anatomy.heads():
        sl = anatomy.head_slices(layer, h)
        for j, part in enumerate("qkvo"):
            if part in sl and sl[part].name in masks:
                out[layer, h, j] = kept_fraction(masks, sl[part])
    return out


def neuron_kept_fractions(anatomy: Anatomy, masks: Masks) -> torch.Tensor:
    """(layers, intermediate, 2): kept fraction of each neuron's input side (input row, and
    gate row when present, together) and output side. NaN where the side is not prunable."""
    out = torch.full((anatomy.num_layers, anatomy.intermediate, 2), float("nan"))
    for layer in range(anatomy.num_layers):
        tensors = {t.role: t for t in anatomy.layer_tensors(layer)}
        ins = [tensors[r] for r in ("ffn_in", "ffn_gate") if r in tensors and
               tensors[r].name in masks]
        if ins:
            rows = [masks[t.name].float() if t.layout == "linear" else masks[t.name].float().T
                    for t in ins]  # (intermediate, hidden) each
            out[layer, :, 0] = torch.cat(rows, dim=1).mean(dim=1)
        t = tensors.get("ffn_out")
        if t is not None and t.name in masks:
            m = masks[t.name].float()
            out[layer, :, 1] = m.mean(dim=0) if t.layout == "linear" else m.mean(dim=1)
    return out


def unit_masks(anatomy: Anatomy, masks: Masks) -> UnitMasks:
    """Alive heads, neurons and FFN blocks of a weight mask (see the module doc)."""
    return alive_units(head_kept_fractions(anatomy, masks),
                       neuron_kept_fractions(anatomy, masks))


def alive_units(heads: torch.Tensor, neurons: torch.Tensor) -> UnitMasks:
    """From kept fractions (NaN = not prunable): a unit is dead when any of its prunable
    slices is fully pruned; an FFN block when all its neurons are."""
    head_alive = ~(heads == 0).any(dim=-1)
    neuron_alive = ~(neurons == 0).any(dim=-1)
    return UnitMasks(head_alive, neuron_alive, neuron_alive.any(dim=1))


def expand_structured(anatomy: Anatomy, head: torch.Tensor, ffn: torch.Tensor) -> Masks:
    """Weight masks from structured masks: a pruned head loses its Q, K, V rows and O columns;
    a pruned FFN block loses its whole input and output matrices."""
    masks = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in anatomy.tensors}
    for _, layer, h in anatomy.heads():
        if not bool(head[layer, h]):
            for s in anatomy.head_slices(layer, h).values():
                masks[s.name][s.index()] = False
    for layer in range(anatomy.num_layers):
        if not bool(ffn[layer]):
            for t in anatomy.layer_tensors(layer):
                if t.role in ("ffn_in", "ffn_gate", "ffn_out"):
                    masks[t.name][:] = False
    return masks
