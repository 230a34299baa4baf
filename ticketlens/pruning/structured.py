"""Structured pruning: whole attention heads and FFN neurons, ranked by importance.

A round of ``find --granularity head|neuron|unit`` prunes ``rate`` of the remaining units of
each kind (heads and neurons are ranked separately: their scores are not comparable), by

- ``magnitude``: the L2 norm of the unit's weight slices in the trained weights (a head: its
  Q, K, V rows and O columns, K and V shared within a grouped-query group; a neuron: its input
  and gate rows and its output column);
- ``gradient``: Michel et al. 2019's importance, the expected absolute gradient of the loss
  with respect to a gate that multiplies the unit's output (``I_h = E_x |dL/dxi_h|``),
  accumulated over training batches and normalised per layer by its L2 norm (their
  ``normalize_scores_by_layer``, reference code ``pmichel31415/are-16-heads-really-better-
  than-1``).

Selection is global across layers (``scope="global"``) or per layer (``"layer"``): the
``round(amount * alive)`` lowest-scoring alive units go, ties to the lower index (stable
sort). Unit masks expand to weight masks by :func:`ticketlens.core.structure.expand_units`
(grouped-query K/V slices only when their whole group is pruned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import ConfigError

if TYPE_CHECKING:
    from ticketlens.pruning.setup import Setup

KINDS = {"head": ("head",), "neuron": ("neuron",), "unit": ("head", "neuron")}


@dataclass(frozen=True)
class Units:
    """Unit masks, True = kept: ``head`` (layers, heads), ``neuron`` (layers, ffn)."""

    head: np.ndarray
    neuron: np.ndarray

    @classmethod
    def all(cls, anatomy: Anatomy) -> Units:
        return cls(np.ones((anatomy.num_layers, anatomy.num_heads), bool),
                   np.ones((anatomy.num_layers, anatomy.intermediate), bool))

    def get(self, kind: str) -> np.ndarray:
        return self.head if kind == "head" else self.neuron

    def replace(self, kind: str, value: np.ndarray) -> Units:
        return Units(value, self.neuron) if kind == "head" else Units(self.head, value)

    def sparsity(self, kinds: Iterable[str]) -> dict[str, float]:
        return {k: float(1.0 - self.get(k).mean()) if self.get(k).size else 0.0
                for k in kinds}

    def weight_masks(self, anatomy: Anatomy) -> dict[str, np.ndarray]:
        from ticketlens.core.structure import expand_units

        return expand_units(anatomy, head=self.head, neuron=self.neuron)


def check_granularity(anatomy: Anatomy, granularity: str) -> None:
    """A one-line ``ConfigError`` when the model's prunable tensors cannot do it."""
    if granularity == "weight":
        return
    roles = {t.role for t in anatomy.tensors}
    if "head" in KINDS[granularity] and not (
            anatomy.num_heads and "o" in roles and ({"q", "k", "v"} <= roles or "qkv" in roles)):
        raise ConfigError(f"--granularity {granularity}: the prunable tensors of this "
                          f"{anatomy.family} model hold no complete attention heads (Q, K, V "
                          "and O); check --include/--exclude, or use --granularity neuron")
    if "neuron" in KINDS[granularity] and not (
            anatomy.intermediate and "ffn_out" in roles and "ffn_in" in roles):
        raise ConfigError(f"--granularity {granularity}: the prunable tensors of this "
                          f"{anatomy.family} model hold no complete FFN neurons (input and "
                          "output); check --include/--exclude, or use --granularity head")


# ----------------------------------------------------------------------------- importance
def magnitude_importance(anatomy: Anatomy, weights: Mapping[str, Any],
                         kinds: Iterable[str]) -> dict[str, np.ndarray]:
    """L2 norm of each unit's weight slices (masked trained weights)."""
    def sq(name: str) -> np.ndarray:
        return weights[name].detach().float().cpu().numpy() ** 2 if isinstance(
            weights[name], torch.Tensor) else np.asarray(weights[name], np.float64) ** 2

    cache: dict[str, np.ndarray] = {}

    def part(s) -> float:
        if s.name not in cache:
            cache[s.name] = sq(s.name)
        return float(cache[s.name][s.index()].sum())

    out: dict[str, np.ndarray] = {}
    kinds = tuple(kinds)
    if "head" in kinds:
        h = np.zeros((anatomy.num_layers, anatomy.num_heads))
        for _, layer, head in anatomy.heads():
            h[layer, head] = sum(part(s) for s in anatomy.head_slices(layer, head).values())
        out["head"] = np.sqrt(h)
    if "neuron" in kinds:
        n = np.zeros((anatomy.num_layers, anatomy.intermediate))
        for layer in range(anatomy.num_layers):
            for t in anatomy.layer_tensors(layer):
                if t.role not in ("ffn_in", "ffn_gate", "ffn_out"):
                    continue
                w = cache.get(t.name)
                if w is None:
                    w = cache[t.name] = sq(t.name)
                # sum over the hidden axis, leaving one value per neuron
                hidden_axis = int((t.layout == "linear") != (t.role == "ffn_out"))
                n[layer] += w.sum(axis=hidden_axis)
        out["neuron"] = np.sqrt(n)
    return out


def _module_of(model: torch.nn.Module, param_name: str) -> torch.nn.Module:
    return model.get_submodule(param_name.rsplit(".", 1)[0])


class UnitGates:
    """Gates of 1.0 on every head's output (the input of the attention output projection,
    head by head) and every FFN neuron's output (the input of the FFN output projection),
    as forward pre-hooks: ``model(...)`` is unchanged, and ``dL/dgate`` is Michel et al.'s
    importance signal. Use as a context manager."""

    def __init__(self, model: torch.nn.Module, anatomy: Anatomy, kinds: Iterable[str]):
        self.model, self.a, self.kinds = model, anatomy, tuple(kinds)
        dev = next(model.parameters()).device
        L = anatomy.num_layers
        self.head = torch.ones(L, anatomy.num_heads, device=dev, requires_grad=True) \
            if "head" in self.kinds else None
        self.neuron = torch.ones(L, anatomy.intermediate, device=dev, requires_grad=True) \
            if "neuron" in self.kinds else None
        self._handles: list[Any] = []

    def __enter__(self) -> UnitGates:
        for t in self.a.tensors:
            if t.role == "o" and self.head is not None:
                self._hook(t.name, self._head_gate(t.layer))
            elif t.role == "ffn_out" and self.neuron is not None:
                self._hook(t.name, self._neuron_gate(t.layer))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str, fn: Callable) -> None:
        mod = _module_of(self.model, name)
        self._handles.append(mod.register_forward_pre_hook(lambda m, args: (fn(args[0]),
                                                                            *args[1:])))

    def _head_gate(self, layer: int) -> Callable:
        d = self.a.head_dim

        def gate(x: torch.Tensor) -> torch.Tensor:
            assert self.head is not None
            return x * self.head[layer].to(x.dtype).repeat_interleave(d)
        return gate

    def _neuron_gate(self, layer: int) -> Callable:
        def gate(x: torch.Tensor) -> torch.Tensor:
            assert self.neuron is not None
            return x * self.neuron[layer].to(x.dtype)
        return gate


def gradient_importance(model: torch.nn.Module, anatomy: Anatomy, kinds: Iterable[str],
                        batches: Iterable[Mapping[str, torch.Tensor]],
                        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None
                        ) -> dict[str, np.ndarray]:
    """Michel et al. 2019: sum over batches of |dL/dgate| for every unit, each layer's scores
    divided by their L2 norm. The model's weights and gradients are left as they were (eval
    mode while scoring, as in their reference code's ``compute_heads_importance``)."""
    kinds = tuple(kinds)
    was_training = model.training
    model.eval()
    grads_before = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)  # only the gates need gradients
    acc = {k: None for k in kinds}
    try:
        with UnitGates(model, anatomy, kinds) as gates:
            for batch in batches:
                loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
                gs = torch.autograd.grad(loss, [g for g in (gates.head, gates.neuron)
                                                if g is not None])
                for k, g in zip([k for k in ("head", "neuron") if k in kinds], gs,
                                strict=True):
                    a = g.detach().abs().double().cpu()
                    acc[k] = a if acc[k] is None else acc[k] + a
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(grads_before[n])
        model.train(was_training)
    out = {}
    for k, v in acc.items():
        if v is None:
            raise ValueError("gradient importance needs at least one batch")
        norm = v.pow(2).sum(-1, keepdim=True).sqrt()
        out[k] = (v / torch.where(norm > 0, norm, torch.ones_like(norm))).numpy()
    return out


def model_scores(model: torch.nn.Module, setup: Setup, kinds: Iterable[str],
                 seed: int) -> dict[str, np.ndarray]:
    """Unit scores of ``model``'s weights as they are now, by ``--importance``: the
    magnitude of the prunable weights, or the gradient over ``--importance-batches``
    training batches drawn with ``seed``."""
    kinds = tuple(kinds)
    names = setup.anatomy.names
    if setup.cfg.prune.importance == "magnitude":
        params = dict(model.named_parameters())
        return magnitude_importance(setup.anatomy, {n: params[n].detach() for n in names},
                                    kinds)
    from ticketlens.data.batching import batch_stream
    from ticketlens.pruning import objectives
    from ticketlens.pruning.train import to_device

    make = objectives.batch_fn(setup, setup.train, seed)
    stream = batch_stream(setup.train, setup.cfg.train.batch_size, seed)
    device = next(model.parameters()).device
    batches = (to_device(make(next(stream)), device)
               for _ in range(setup.cfg.prune.importance_batches))
    return gradient_importance(model, setup.anatomy, kinds, batches)


def state_scores(model: torch.nn.Module, setup: Setup, kinds: Iterable[str],
                 state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                 seed: int) -> dict[str, np.ndarray]:
    """Unit scores of the trained weights ``state`` under ``masks`` (gradient importance
    loads them into ``model`` first)."""
    kinds = tuple(kinds)
    if setup.cfg.prune.importance == "magnitude":
        return magnitude_importance(setup.anatomy, {n: state[n] for n in setup.anatomy.names},
                                    kinds)
    from ticketlens.pruning.masking import MaskEnforcer

    model.load_state_dict(state)
    MaskEnforcer(model, masks).apply_to_weights()
    return model_scores(model, setup, kinds, seed)


# ----------------------------------------------------------------------------- selection
def prune_units(scores: np.ndarray, alive: np.ndarray, amount: float,
                scope: str = "global") -> np.ndarray:
    """Drop ``round(amount * alive)`` of the alive units with the lowest ``scores`` (in each
    layer, a row, with ``scope="layer"``); ties go to the lower (layer, index)."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    alive = np.asarray(alive, bool)
    new = alive.copy()
    rows = [slice(None)] if scope == "global" else [slice(i, i + 1)
                                                     for i in range(alive.shape[0])]
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    for row in rows:
        a, s = alive[row].reshape(-1), np.asarray(scores, np.float64)[row].reshape(-1)
        idx = np.flatnonzero(a)
        k = round(amount * idx.size)
        if k:
            drop = idx[np.argsort(s[idx], kind="stable")[:k]]
            flat = new[row].reshape(-1).copy()
            flat[drop] = False
            new[row] = flat.reshape(new[row].shape)
    return new


def prune_units_to(scores: np.ndarray, keep: int | np.ndarray, scope: str = "global"
                   ) -> np.ndarray:
    """A one-shot unit mask keeping the ``keep`` highest-scoring units (an int: over all
    layers; an array: per layer, with ``scope="layer"``)."""
    scores = np.asarray(scores, np.float64)
    alive = np.ones(scores.shape, bool)
    if scope == "layer":
        keep = np.broadcast_to(np.asarray(keep), (scores.shape[0],))
        for i in range(scores.shape[0]):
            drop = scores.shape[1] - int(keep[i])
            alive[i, np.argsort(scores[i], kind="stable")[:drop]] = False
        return alive
    drop = scores.size - int(keep)
    flat = alive.reshape(-1)
    flat[np.argsort(scores.reshape(-1), kind="stable")[:drop]] = False
    return flat.reshape(scores.shape)


def random_units_like(units: Units, generator: np.random.Generator) -> Units:
    """The same number of kept units of each kind in every layer, at random positions."""
    def per_layer(m: np.ndarray) -> np.ndarray:
        out = np.zeros_like(m)
        for i in range(m.shape[0]):
            out[i, generator.permutation(m.shape[1])[:int(m[i].sum())]] = True
        return out
    return Units(per_layer(units.head), per_layer(units.neuron))
