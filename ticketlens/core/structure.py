"""Between weight masks and unit masks (heads, FFN neurons, whole FFN blocks).

A unit is *alive* in a weight mask unless it is dead: a head is dead when its Q, K, V or O
slice is fully pruned (it can then contribute nothing); an FFN neuron when its input row
(or gate row) or its output column is fully pruned; an FFN block when all its neurons are.
Structured masks (as released by Prasanna et al. 2020) give heads and FFN blocks directly and
expand to weight masks by zeroing whole slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.masks import Masks, as_bool


@dataclass(frozen=True)
class UnitMasks:
    """``head``: (layers, heads); ``neuron``: (layers, intermediate); ``ffn``: (layers,)."""

    head: np.ndarray
    neuron: np.ndarray
    ffn: np.ndarray


def kept_fraction(masks: Masks, s) -> float:
    part = as_bool(masks[s.name])[s.index()]
    return float(part.mean()) if part.size else 0.0


def head_kept_fractions(anatomy: Anatomy, masks: Masks) -> np.ndarray:
    """(layers, heads, 4): kept fraction of each head's Q, K, V, O slice (NaN if unpruned)."""
    out = np.full((anatomy.num_layers, anatomy.num_heads, 4), np.nan)
    for _, layer, h in anatomy.heads():
        sl = anatomy.head_slices(layer, h)
        for j, part in enumerate("qkvo"):
            if part in sl and sl[part].name in masks:
                out[layer, h, j] = kept_fraction(masks, sl[part])
    return out


def neuron_kept_fractions(anatomy: Anatomy, masks: Masks) -> np.ndarray:
    """(layers, intermediate, 2): kept fraction of each neuron's input side (input row, and
    gate row when present, together) and output side. NaN where the side is not prunable."""
    out = np.full((anatomy.num_layers, anatomy.intermediate, 2), np.nan)
    for layer in range(anatomy.num_layers):
        tensors = {t.role: t for t in anatomy.layer_tensors(layer)}
        ins = [tensors[r] for r in ("ffn_in", "ffn_gate") if r in tensors and
               tensors[r].name in masks]
        if ins:
            rows = [as_bool(masks[t.name]) if t.layout == "linear" else
                    as_bool(masks[t.name]).T for t in ins]  # (intermediate, hidden) each
            out[layer, :, 0] = np.concatenate(rows, axis=1).mean(axis=1)
        t = tensors.get("ffn_out")
        if t is not None and t.name in masks:
            m = as_bool(masks[t.name])
            out[layer, :, 1] = m.mean(axis=0) if t.layout == "linear" else m.mean(axis=1)
    return out


def unit_masks(anatomy: Anatomy, masks: Masks) -> UnitMasks:
    """Alive heads, neurons and FFN blocks of a weight mask (see the module doc)."""
    return alive_units(head_kept_fractions(anatomy, masks),
                       neuron_kept_fractions(anatomy, masks))


def alive_units(heads: np.ndarray, neurons: np.ndarray) -> UnitMasks:
    """From kept fractions (NaN = not prunable): a unit is dead when any of its prunable
    slices is fully pruned; an FFN block when all its neurons are."""
    head_alive = ~(heads == 0).any(axis=-1)
    neuron_alive = ~(neurons == 0).any(axis=-1)
    return UnitMasks(head_alive, neuron_alive, neuron_alive.any(axis=1))


def expand_structured(anatomy: Anatomy, head: np.ndarray, ffn: np.ndarray) -> Masks:
    """Weight masks from structured masks: a pruned head loses its Q, K, V rows and O columns;
    a pruned FFN block loses its whole input and output matrices."""
    head, ffn = as_bool(head), as_bool(ffn)
    masks = {t.name: np.ones(t.shape, dtype=bool) for t in anatomy.tensors}
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
