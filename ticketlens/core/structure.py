"""Between weight masks and unit masks (heads, FFN neurons, whole FFN blocks).

What a fully pruned slice does to a unit (checked by forward passes in
``tests/test_structure.py``), from most to least alive:

- ``ALIVE``: no slice of the unit is fully pruned;
- ``BLIND`` (heads): the Q or the K slice is fully pruned, V and O are not: the attention
  pattern no longer depends on the query-key match (uniform when K is pruned, or Q is pruned
  and has no bias; a fixed preference over keys when Q keeps a bias), but the head still adds
  a mix of V to the residual stream;
- ``CONSTANT``: the V slice (heads) or the input row, or gate row (neurons), is fully pruned:
  the unit adds an input-independent vector (``W_O,h b_V,h``; ``act(b_in) W_out[:, n]``), zero
  without biases; it carries no information and an export folds it into the output bias;
- ``DEAD``: the O slice (heads) or the output column (neurons) is fully pruned: the unit adds
  exactly nothing.

A unit is *dead* in the sense of every view (survival, ``compare --by head``, export) when
it is ``CONSTANT`` or ``DEAD``; an FFN block when all its neurons are. Structured masks (as
released by Prasanna et al. 2020, or drawn by ``find --granularity``) expand to weight masks
by zeroing whole slices; with grouped-query attention a K/V slice shared by several query
heads is pruned only when all of them are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.masks import Masks, as_bool

ALIVE, BLIND, CONSTANT, DEAD = 0, 1, 2, 3
STATE_NAMES = ("alive", "blind", "constant", "dead")


@dataclass(frozen=True)
class UnitMasks:
    """``head``: (layers, heads); ``neuron``: (layers, intermediate); ``ffn``: (layers,):
    True where the unit is alive (``ALIVE`` or ``BLIND``)."""

    head: np.ndarray
    neuron: np.ndarray
    ffn: np.ndarray


@dataclass(frozen=True)
class UnitStates:
    """Per-unit state codes (``ALIVE``, ``BLIND``, ``CONSTANT``, ``DEAD``): ``head`` (layers,
    heads), ``neuron`` (layers, intermediate)."""

    head: np.ndarray
    neuron: np.ndarray

    def alive(self) -> UnitMasks:
        neuron = self.neuron <= BLIND
        return UnitMasks(self.head <= BLIND, neuron, neuron.any(axis=1))

    def counts(self) -> dict[str, dict[str, int]]:
        return {kind: {STATE_NAMES[c]: int((arr == c).sum()) for c in range(4)}
                for kind, arr in (("head", self.head), ("neuron", self.neuron))}


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


def unit_states(anatomy: Anatomy, masks: Masks) -> UnitStates:
    """The state of every head and neuron of a weight mask (see the module doc)."""
    return states_from_fractions(head_kept_fractions(anatomy, masks),
                                 neuron_kept_fractions(anatomy, masks))


def states_from_fractions(heads: np.ndarray, neurons: np.ndarray) -> UnitStates:
    """From kept fractions (NaN = not prunable; heads ``qkvo``, neurons ``in, out``)."""
    gone = heads == 0
    head = np.full(heads.shape[:2], ALIVE, dtype=np.int8)
    head[gone[..., 0] | gone[..., 1]] = BLIND
    head[gone[..., 2]] = CONSTANT
    head[gone[..., 3]] = DEAD
    ngone = neurons == 0
    neuron = np.full(neurons.shape[:2], ALIVE, dtype=np.int8)
    neuron[ngone[..., 0]] = CONSTANT
    neuron[ngone[..., 1]] = DEAD
    return UnitStates(head, neuron)


def alive_units(heads: np.ndarray, neurons: np.ndarray) -> UnitMasks:
    """From kept fractions (NaN = not prunable): a head is dead when its V or O slice is fully
    pruned (an attention-blind head, Q or K pruned, still adds a mix of V); a neuron when its
    input or output side is; an FFN block when all its neurons are."""
    return states_from_fractions(heads, neurons).alive()


def expand_units(anatomy: Anatomy, head: np.ndarray | None = None,
                 neuron: np.ndarray | None = None, ffn: np.ndarray | None = None) -> Masks:
    """Weight masks from unit masks (True = kept): a pruned head loses its Q rows and O
    columns, and its K and V rows when every query head sharing them (grouped-query
    attention) is pruned too; a pruned neuron its input (and gate) row and output column; a
    pruned FFN block its whole input and output matrices. ``None``: all kept."""
    L, H, n_ffn = anatomy.num_layers, anatomy.num_heads, anatomy.intermediate
    head = np.ones((L, H), bool) if head is None else as_bool(head)
    neuron = np.ones((L, n_ffn), bool) if neuron is None else as_bool(neuron)
    if ffn is not None:
        neuron = neuron & as_bool(ffn)[:, None]
    if head.shape != (L, H) or neuron.shape != (L, n_ffn):
        raise ValueError(f"unit masks of shape {head.shape} / {neuron.shape} do not fit "
                         f"{L} layers x {H} heads / {n_ffn} neurons")
    masks = {t.name: np.ones(t.shape, dtype=bool) for t in anatomy.tensors}
    group = H // anatomy.num_kv_heads if H else 1
    for _, layer, h in anatomy.heads():
        if bool(head[layer, h]):
            continue
        g = h // group
        shared_gone = not head[layer, g * group:(g + 1) * group].any()
        for part, s in anatomy.head_slices(layer, h).items():
            if part in ("q", "o") or shared_gone:
                masks[s.name][s.index()] = False
    for layer in range(L):
        off = np.flatnonzero(~neuron[layer])
        if not off.size:
            continue
        for t in anatomy.layer_tensors(layer):
            if t.role not in ("ffn_in", "ffn_gate", "ffn_out"):
                continue
            # the neuron axis: rows of linear ffn_in/gate, columns of linear ffn_out
            axis = int((t.layout == "linear") == (t.role == "ffn_out"))
            idx = [slice(None), slice(None)]
            idx[axis] = off
            masks[t.name][tuple(idx)] = False
    return masks


def expand_structured(anatomy: Anatomy, head: np.ndarray, ffn: np.ndarray) -> Masks:
    """Weight masks from structured masks (heads and whole FFN blocks, Prasanna et al.'s
    format): :func:`expand_units` with no neuron mask."""
    return expand_units(anatomy, head=head, ffn=ffn)
