"""Physically smaller layers: keep some heads and FFN neurons of an HF model, in place.

The same code serves export (keep the planned units of a trained model) and
:func:`ticketlens.load_pruned` (shrink a freshly built model to the stored counts, then load
the stored weights). Modules are found through the model's anatomy (``q k v o`` or GPT-2's
fused ``qkv``, ``ffn_in``/``ffn_gate``/``ffn_out``), so one routine covers BERT-style,
DistilBERT, GPT-2 and Llama-style (grouped-query) models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ticketlens.core.anatomy import Anatomy, TensorInfo
from ticketlens.models.slice_plan import LayerPlan, LayerUnits

# integer attributes of the attention modules that count heads (BERT num_attention_heads,
# GPT-2 num_heads, DistilBERT n_heads), their width (BERT all_head_size, GPT-2 split_size)
# or K/V heads (Llama num_key_value_groups = query heads per K/V head)
HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads")
HEAD_WIDTHS = ("all_head_size", "split_size")
# the config key of the FFN width, per family
FFN_WIDTH_KEY = {"bert": "intermediate_size", "distilbert": "hidden_dim", "gpt2": "n_inner",
                 "llama": "intermediate_size"}


def _rows(units: Sequence[int], d: int) -> torch.Tensor:
    """Indices of ``d``-wide blocks ``units`` along an axis: (len(units) * d,)."""
    if not units:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat([torch.arange(u * d, (u + 1) * d) for u in units])


def _select(model: torch.nn.Module, t: TensorInfo, index: torch.Tensor, side: str) -> None:
    """Keep ``index`` along the output (``side="out"``, bias too) or input side of the
    ``nn.Linear`` / GPT-2 ``Conv1D`` that owns weight ``t``."""
    module = model.get_submodule(t.name.rsplit(".", 1)[0])
    out_dim = 0 if t.layout == "linear" else 1
    dim = out_dim if side == "out" else 1 - out_dim
    w = module.weight
    module.weight = torch.nn.Parameter(w.detach().index_select(dim, index).contiguous(),
                                       requires_grad=w.requires_grad)
    if side == "out" and getattr(module, "bias", None) is not None:
        module.bias = torch.nn.Parameter(module.bias.detach().index_select(0, index).clone(),
                                         requires_grad=module.bias.requires_grad)
    n = len(index)
    if t.layout == "linear":
        setattr(module, "out_features" if side == "out" else "in_features", n)
    else:  # Conv1D: nf outputs, nx inputs
        setattr(module, "nf" if side == "out" else "nx", n)


def _attention_module(model: torch.nn.Module, roles: dict[str, TensorInfo]) -> torch.nn.Module:
    t = roles.get("q") or roles["qkv"]
    return model.get_submodule(t.name.rsplit(".", 2)[0])


def keep_units(model: torch.nn.Module, anatomy: Anatomy, layer: int,
               units: LayerUnits) -> None:
    """Shrink ``layer`` of ``model`` to ``units`` (heads in their K/V groups, neurons)."""
    d, H = anatomy.head_dim, anatomy.num_heads
    roles = {t.role: t for t in anatomy.layer_tensors(layer)}
    q_idx, kv_idx = _rows(units.heads, d), _rows(units.kv_heads, d)
    if "qkv" in roles:  # fused [Q | K | V]: the three blocks sliced alike
        _select(model, roles["qkv"], torch.cat([q_idx, H * d + kv_idx, 2 * H * d + kv_idx]),
                "out")
    else:
        _select(model, roles["q"], q_idx, "out")
        _select(model, roles["k"], kv_idx, "out")
        _select(model, roles["v"], kv_idx, "out")
    _select(model, roles["o"], q_idx, "in")
    attn = _attention_module(model, roles)
    n_heads, n_kv = len(units.heads), len(units.kv_heads)
    for name, value in ([(n, n_heads) for n in HEAD_COUNTS] +
                        [(n, n_heads * d) for n in HEAD_WIDTHS] +
                        [("num_key_value_heads", n_kv),
                         ("num_key_value_groups", n_heads // max(n_kv, 1))]):
        if isinstance(getattr(attn, name, None), int):
            setattr(attn, name, value)
    n_idx = torch.tensor(units.neurons, dtype=torch.long)
    for role in ("ffn_in", "ffn_gate"):
        if role in roles:
            _select(model, roles[role], n_idx, "out")
    _select(model, roles["ffn_out"], n_idx, "in")


@torch.no_grad()
def apply_plan(model: torch.nn.Module, anatomy: Anatomy, plans: Sequence[LayerPlan]) -> None:
    """Fold the removed units' constants into the output biases, silence padded units,
    then keep the planned units of every layer."""
    params = dict(model.named_parameters())
    for layer, plan in enumerate(plans):
        roles = {t.role: t for t in anatomy.layer_tensors(layer)}
        for role, fold in (("o", plan.attn_fold), ("ffn_out", plan.ffn_fold)):
            if fold is not None:
                params[roles[role].name[: -len("weight")] + "bias"].add_(fold)
        o, out = roles["o"], roles["ffn_out"]
        w_o, w_out = params[o.name], params[out.name]
        d = anatomy.head_dim
        for h in plan.units.padded_heads:  # O's input columns (linear) / rows (Conv1D)
            (w_o[:, h * d:(h + 1) * d] if o.layout == "linear" else
             w_o[h * d:(h + 1) * d]).zero_()
        for n in plan.units.padded_neurons:
            (w_out[:, n] if out.layout == "linear" else w_out[n]).zero_()
        keep_units(model, anatomy, layer, plan.units)


def shrink_to_counts(model: torch.nn.Module, anatomy: Anatomy,
                     layers: Sequence[LayerUnits]) -> None:
    """Give a freshly built model the stored per-layer sizes (weights are loaded after)."""
    for layer, units in enumerate(layers):
        keep_units(model, anatomy, layer, LayerUnits(
            tuple(range(len(units.heads))), tuple(range(len(units.kv_heads))),
            tuple(range(len(units.neurons)))))


def uniform_config(config, anatomy: Anatomy, layers: Sequence[LayerUnits]) -> bool:
    """Set the config's head and FFN sizes when every layer keeps the same counts and the
    family's config can say so without changing the head size; returns whether it did (then
    stock ``from_pretrained`` builds the smaller model). BERT, DistilBERT and GPT-2 derive
    the head size as hidden / heads, so for them only FFN widths can change."""
    counts = {(len(u.heads), len(u.kv_heads), len(u.neurons)) for u in layers}
    key = FFN_WIDTH_KEY.get(anatomy.family)
    if len(counts) != 1 or key is None:
        return False
    heads, kv, neurons = counts.pop()
    if (heads, kv) != (anatomy.num_heads, anatomy.num_kv_heads):
        if anatomy.family != "llama":  # Llama-style configs carry head_dim explicitly
            return False
        config.num_attention_heads, config.num_key_value_heads = heads, kv
        config.head_dim = anatomy.head_dim
    setattr(config, key, neurons)
    return True
