"""Which heads and FFN neurons a ticket can lose physically, and the constants they leave.

A head is *removable* when it adds nothing that depends on the input:
- its O slice is fully pruned (it adds exactly nothing), or
- its V slice is fully pruned: every position's value is then the bias ``b_V,h`` and the
  attention weights sum to one, so the head adds the constant ``W_O,h @ b_V,h``, which is
  folded into O's bias (a head of a model with V biases but no O bias is kept).
A head whose Q or K alone is pruned still adds a (uniform) mix of V: it is kept. With
grouped-query attention V is per key/value head, so a V-dead group loses all its query
heads; a K/V head goes when all the query heads of its group go.

An FFN neuron ``n`` is removable when its output column is fully pruned, or when its output
``h_n`` is a constant ``c`` (then ``c * W_out[:, n]`` is folded into the output bias):
- ``act(W_in x + b_in)``: input row pruned, ``c = act(b_in[n])``;
- gated, ``act(W_g x + b_g) * (W_in x + b_in)``: gate row pruned gives ``act(b_g[n])``
  times the up value, so ``c = 0`` when ``act(b_g[n]) == 0`` (SiLU without gate bias);
  up row pruned gives ``c = 0`` when ``b_in[n] == 0``; both pruned ``c = act(b_g) * b_in``.
Any other neuron is kept.

Shapes: a layer's heads are (num_heads,), neurons (intermediate,); folds are (hidden,).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ticketlens.core.anatomy import Anatomy, Slice, TensorInfo

# the FFN activation's attribute on the module that holds the FFN input projection
# (BERT's intermediate, DistilBERT's ffn, GPT-2's mlp, Llama's mlp)
ACTIVATION_ATTRS = ("intermediate_act_fn", "activation", "act", "act_fn")


@dataclass(frozen=True)
class LayerUnits:
    """The units one layer keeps physically, in their new order (original indices).

    ``heads`` are query heads grouped by their K/V head (``kv_heads``, same order); ``padded``
    lists removed heads and neurons kept only to keep GQA groups even or a layer non-empty:
    their output slices are zeroed, so they add nothing."""

    heads: tuple[int, ...]
    kv_heads: tuple[int, ...]
    neurons: tuple[int, ...]
    padded_heads: tuple[int, ...] = ()
    padded_neurons: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, list[int]]:
        return {k: list(getattr(self, k)) for k in ("heads", "kv_heads", "neurons",
                                                     "padded_heads", "padded_neurons")}

    @classmethod
    def from_dict(cls, d: Mapping[str, list[int]]) -> LayerUnits:
        return cls(*(tuple(int(i) for i in d.get(k, ())) for k in (
            "heads", "kv_heads", "neurons", "padded_heads", "padded_neurons")))


@dataclass(frozen=True)
class LayerPlan:
    units: LayerUnits
    attn_fold: torch.Tensor | None  # (hidden,) added to O's bias
    ffn_fold: torch.Tensor | None   # (hidden,) added to the FFN output bias
    removed_heads: int
    removed_neurons: int


def _pruned(masks: Mapping[str, np.ndarray], s: Slice) -> bool:
    """Whether the slice is fully pruned (a tensor the run did not prune never is)."""
    return s.name in masks and not np.asarray(masks[s.name])[s.index()].any()


def _dead_units(masks: Mapping[str, np.ndarray], t: TensorInfo, unit_axis: int) -> np.ndarray:
    """(units,) True where every weight of a unit (a row or column along ``unit_axis``) is
    pruned."""
    if t.name not in masks:
        return np.zeros(t.shape[unit_axis], dtype=bool)
    return ~np.asarray(masks[t.name], dtype=bool).any(axis=1 - unit_axis)


def _out_axis(t: TensorInfo) -> int:
    return 0 if t.layout == "linear" else 1


def _columns(w: torch.Tensor, t: TensorInfo, s: Slice) -> torch.Tensor:
    """The (hidden, k) block of an output projection ``w`` that reads slice ``s``."""
    block = w[s.index()]
    return block if t.layout == "linear" else block.T


def plan_layer(model: torch.nn.Module, anatomy: Anatomy, masks: Mapping[str, np.ndarray],
               layer: int) -> LayerPlan:
    """The removable heads and neurons of ``layer`` and their folded constants.

    ``anatomy`` is the model's full anatomy (every attention and FFN matrix: it locates the
    modules); ``masks`` the run's masks (tensors it lacks count as unpruned)."""
    params = dict(model.named_parameters())
    roles = {t.role: t for t in anatomy.layer_tensors(layer)}
    heads, kv_heads, attn_fold, n_heads_removed = _plan_heads(params, anatomy, masks, layer,
                                                              roles)
    neurons, padded_n, ffn_fold, n_neurons_removed = _plan_neurons(model, params, anatomy,
                                                                   masks, roles)
    return LayerPlan(LayerUnits(heads[0], kv_heads, neurons, heads[1], padded_n),
                     attn_fold, ffn_fold, n_heads_removed, n_neurons_removed)


def _bias(params: Mapping[str, torch.nn.Parameter], weight: str) -> torch.Tensor | None:
    return params.get(weight[: -len("weight")] + "bias")


def _plan_heads(params, anatomy: Anatomy, masks, layer: int, roles):
    H, KV = anatomy.num_heads, anatomy.num_kv_heads
    group = H // KV
    o = roles["o"]
    w_o = params[o.name].detach()
    o_bias = _bias(params, o.name)
    fold = torch.zeros(anatomy.hidden, dtype=w_o.dtype)
    removed = []
    for h in range(H):
        sl = anatomy.head_slices(layer, h)
        o_dead, v_dead = _pruned(masks, sl["o"]), _pruned(masks, sl["v"])
        if not (o_dead or v_dead):
            continue
        c = torch.zeros_like(fold)
        if v_dead and not o_dead:
            v = sl["v"]
            b_v = _bias(params, v.name)
            if b_v is not None:  # V's bias along its output axis
                c = _columns(w_o, o, sl["o"]) @ b_v.detach()[v.start:v.stop]
        if o_bias is None and bool(c.any()):
            continue  # a constant with nowhere to go: keep the head
        fold += c
        removed.append(h)
    gone = set(removed)
    kept_by_group = [[h for h in range(g * group, (g + 1) * group) if h not in gone]
                     for g in range(KV)]
    if not any(kept_by_group):  # a layer keeps one (silent) head: modules stay non-empty
        kept_by_group[0] = [0]
    width = max(len(k) for k in kept_by_group)
    order, padded, kv_kept = [], [], []
    for g, kept in enumerate(kept_by_group):
        if not kept:
            continue
        # GQA: every kept K/V head serves the same number of query heads; pad with removed
        # heads of the group (their O slices are zeroed when applied)
        extra = [h for h in range(g * group, (g + 1) * group)
                 if h in gone and h not in kept][: width - len(kept)]
        order.extend(sorted(kept + extra))
        padded.extend(h for h in extra if h in gone)
        kv_kept.append(g)
    padded.extend(h for h in kept_by_group[0] if h in gone and h not in padded)
    used = fold if o_bias is not None and bool(fold.any()) else None
    return (tuple(order), tuple(sorted(padded))), tuple(kv_kept), used, len(gone)


def _activation(model: torch.nn.Module, t: TensorInfo):
    """The activation the FFN applies to ``t``'s output (None when not found)."""
    holder = model.get_submodule(t.name.rsplit(".", 2)[0])  # the FFN module
    for name in ACTIVATION_ATTRS:
        fn = getattr(holder, name, None)
        if callable(fn):
            return fn
    return None


def _plan_neurons(model, params, anatomy: Anatomy, masks, roles):
    n_all = anatomy.intermediate
    t_in, t_gate, t_out = roles["ffn_in"], roles.get("ffn_gate"), roles["ffn_out"]
    out_dead = _dead_units(masks, t_out, 1 - _out_axis(t_out))
    in_dead = _dead_units(masks, t_in, _out_axis(t_in))
    gate_dead = (_dead_units(masks, t_gate, _out_axis(t_gate)) if t_gate is not None
                 else np.zeros(n_all, dtype=bool))
    w_out = params[t_out.name].detach()
    w_out = w_out if t_out.layout == "linear" else w_out.T  # (hidden, intermediate)
    out_bias = _bias(params, t_out.name)
    dtype = w_out.dtype
    b_in = _bias(params, t_in.name)
    b_in = b_in.detach() if b_in is not None else torch.zeros(n_all, dtype=dtype)
    act = _activation(model, t_gate or t_in)
    with torch.no_grad():
        if t_gate is None:
            # input row pruned: h_n = act(b_in[n]) for every input
            if act is None:
                value, has_const = torch.zeros(n_all, dtype=dtype), torch.zeros(n_all, dtype=bool)
            else:
                value, has_const = act(b_in), torch.from_numpy(in_dead)
            removable = torch.from_numpy(out_dead) | has_const
        else:
            b_g = _bias(params, t_gate.name)
            b_g = b_g.detach() if b_g is not None else torch.zeros(n_all, dtype=dtype)
            a_g = act(b_g) if act is not None else None
            g_dead, u_dead = torch.from_numpy(gate_dead), torch.from_numpy(in_dead)
            if a_g is None:
                zero = u_dead & (b_in == 0)
                value, has_const = torch.zeros(n_all, dtype=dtype), zero
            else:
                zero = (g_dead & (a_g == 0)) | (u_dead & (b_in == 0))
                has_const = zero | (g_dead & u_dead)
                value = torch.where(zero, torch.zeros_like(a_g), a_g * b_in)
            removable = torch.from_numpy(out_dead) | has_const
        value = torch.where(torch.from_numpy(out_dead) | ~removable,
                            torch.zeros_like(value), value)
        fold = w_out @ value  # (hidden,)
    if out_bias is None and bool(fold.any()):
        # constants with nowhere to go: keep the neurons that carry one
        removable &= value == 0
        fold = torch.zeros_like(fold)
    kept = [int(n) for n in torch.nonzero(~removable).flatten()]
    padded = []
    if not kept:  # one silent neuron keeps the FFN's matrices non-empty
        kept, padded = [0], [0]
    return (tuple(kept), tuple(padded), fold if bool(fold.any()) else None,
            int(removable.sum()))
