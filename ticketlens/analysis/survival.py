"""Survival: what a ticket keeps of each head and neuron, dead units, the sparsity profile.

``survival(run, round=None)`` -> :class:`SurvivalResult` for one round;
``sparsity_profile(run)`` -> :class:`ProfileResult`, per layer and weight type across rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ticketlens.analysis.inputs import RunsOrMasks, check_by, one_input, one_run
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.result import Result
from ticketlens.core.structure import (
    ALIVE,
    BLIND,
    STATE_NAMES,
    head_kept_fractions,
    neuron_kept_fractions,
    states_from_fractions,
)

ROLE_LABEL = {"q": "Q", "k": "K", "v": "V", "qkv": "QKV", "o": "O", "ffn_in": "FFN in",
              "ffn_gate": "FFN gate", "ffn_out": "FFN out", "other": "other"}


@dataclass(frozen=True)
class HeadSurvival(Result):
    unit: str
    layer: int
    head: int
    q: float
    k: float
    v: float
    o: float
    kept: float  # over all of the head's weights
    dead: bool  # V or O fully pruned: adds nothing input-dependent (core.structure)
    state: str = "alive"  # alive | blind | constant | dead (core.structure)


@dataclass(frozen=True)
class LayerNeurons(Result):
    layer: int
    kept_in: np.ndarray  # (intermediate,) kept fraction of each neuron's input side
    kept_out: np.ndarray  # (intermediate,)
    dead: int  # input or output side fully pruned
    alive: int
    constant: int = 0  # of the dead: input side pruned (adds a constant vector)

    def histogram(self, bins: int = 10) -> list[int]:
        kept = np.nanmean(np.stack([self.kept_in, self.kept_out]), axis=0)
        return np.histogram(kept, bins=bins, range=(0.0, 1.0))[0].tolist()


@dataclass(frozen=True)
class LayerStates(Result):
    """How many of a layer's heads and FFN neurons are in each state (``core.structure``):
    heads alive / blind / constant / dead, neurons alive / constant / dead. ``dead_heads``
    and ``dead_neurons`` count the constant and the dead together (gone in every view)."""

    layer: int
    heads: dict[str, int]
    neurons: dict[str, int]

    @property
    def dead_heads(self) -> int:
        return self.heads["constant"] + self.heads["dead"]

    @property
    def dead_neurons(self) -> int:
        return self.neurons["constant"] + self.neurons["dead"]

    def _data(self) -> dict[str, Any]:
        return {"layer": self.layer, "heads": dict(self.heads), "neurons": dict(self.neurons)}


@dataclass(frozen=True)
class SurvivalResult(Result):
    round: int
    sparsity: float
    num_layers: int
    num_heads: int
    heads: tuple[HeadSurvival, ...]
    neurons: tuple[LayerNeurons, ...]
    layer_sparsity: tuple[float, ...]  # per layer over all its prunable weights

    @property
    def dead_heads(self) -> list[str]:
        return [h.unit for h in self.heads if h.dead]

    @property
    def blind_heads(self) -> list[str]:
        """Heads whose Q or K is fully pruned but not V or O: they attend without looking
        and still add a mix of V."""
        return [h.unit for h in self.heads if h.state == "blind"]

    def layer_states(self) -> tuple[LayerStates, ...]:
        """Per layer: heads and neurons counted by state."""
        out = []
        for n in self.neurons:
            heads = dict.fromkeys(STATE_NAMES, 0)
            for h in self.heads:
                if h.layer == n.layer:
                    heads[h.state] += 1
            out.append(LayerStates(n.layer, heads, {"alive": n.alive, "constant": n.constant,
                                                    "dead": n.dead - n.constant}))
        return tuple(out)

    def state_counts(self) -> dict[str, dict[str, int]]:
        """Over the whole model: ``{"head": {state: n}, "neuron": {state: n}}``."""
        out: dict[str, dict[str, int]] = {"head": dict.fromkeys(STATE_NAMES, 0),
                                          "neuron": {"alive": 0, "constant": 0, "dead": 0}}
        for ls in self.layer_states():
            for kind, counts in (("head", ls.heads), ("neuron", ls.neurons)):
                for state, n in counts.items():
                    out[kind][state] += n
        return out

    def state_grid(self) -> np.ndarray:
        """(layers, heads) state codes of :mod:`ticketlens.core.structure`."""
        grid = np.zeros((self.num_layers, self.num_heads), dtype=np.int8)
        for h in self.heads:
            grid[h.layer, h.head] = STATE_NAMES.index(h.state)
        return grid

    def head_grid(self, field: str = "kept") -> np.ndarray:
        """(layers, heads) array of a :class:`HeadSurvival` field."""
        grid = np.full((self.num_layers, self.num_heads), np.nan)
        for h in self.heads:
            grid[h.layer, h.head] = float(getattr(h, field))
        return grid

    def head(self, unit: str) -> HeadSurvival:
        return next(h for h in self.heads if h.unit == unit)

    def _data(self) -> dict[str, Any]:
        return {
            "round": self.round, "sparsity": self.sparsity,
            "heads": list(self.heads),
            "dead_heads": self.dead_heads,
            "blind_heads": self.blind_heads,
            "state_counts": self.state_counts(),
            "neurons": [{"layer": n.layer, "dead": n.dead, "alive": n.alive,
                         "constant": n.constant,
                         "kept_histogram": n.histogram()} for n in self.neurons],
            "layer_sparsity": list(self.layer_sparsity),
        }


def _head_weight_counts(anatomy: Anatomy) -> np.ndarray:
    """(4,) number of weights in one head's Q, K, V, O slices (the same for every head)."""
    sl = anatomy.head_slices(0, 0)
    shapes = anatomy.shapes
    out = np.zeros(4)
    for j, part in enumerate("qkvo"):
        if part in sl:
            s = sl[part]
            other = shapes[s.name][1 - s.dim]
            out[j] = (s.stop - s.start) * other
    return out


def survival(run: RunsOrMasks, *, by: str = "unit",
             round: int | None = None) -> SurvivalResult:
    """Per-head and per-neuron survival (``by="unit"``, the only level) of one ticket: a run
    at ``round`` (default: the ticket; -1 the last round), or typed masks (their result's
    ``round`` is -1), in any form :mod:`ticketlens.analysis.inputs` reads."""
    check_by(by, ("unit",), what="survival")
    item = one_input(run, what="survival")
    anatomy = item.anatomy
    r = item.round_index(round)
    masks = item.mask(r)
    hk_t, nk_t = head_kept_fractions(anatomy, masks), neuron_kept_fractions(anatomy, masks)
    states = states_from_fractions(hk_t, nk_t)  # computed once, from the fractions below
    hk = hk_t  # (L, H, 4)
    weights = _head_weight_counts(anatomy)
    heads = []
    for name, layer, h in anatomy.heads():
        f = hk[layer, h]
        present = ~np.isnan(f)
        kept = float((f[present] * weights[present]).sum() / weights[present].sum()) \
            if present.any() else float("nan")
        code = int(states.head[layer, h])
        heads.append(HeadSurvival(name, layer, h, *(float(x) for x in f), kept=kept,
                                  dead=code > BLIND, state=STATE_NAMES[code]))
    nk = nk_t  # (L, I, 2)
    neurons = tuple(
        LayerNeurons(layer, nk[layer, :, 0], nk[layer, :, 1],
                     int((states.neuron[layer] > BLIND).sum()),
                     int((states.neuron[layer] == ALIVE).sum()),
                     int((states.neuron[layer] == STATE_NAMES.index("constant")).sum()))
        for layer in range(anatomy.num_layers))
    layer_sparsity = []
    for layer in range(anatomy.num_layers):
        ts = [t.name for t in anatomy.layer_tensors(layer)]
        kept = sum(int(np.count_nonzero(masks[n])) for n in ts)
        total = sum(int(np.size(masks[n])) for n in ts)
        layer_sparsity.append(1 - kept / total if total else float("nan"))
    total_kept = sum(int(np.count_nonzero(m)) for m in masks.values())
    total = sum(int(np.size(m)) for m in masks.values())
    return SurvivalResult(r, 1 - total_kept / total, anatomy.num_layers, anatomy.num_heads,
                          tuple(heads), neurons, tuple(layer_sparsity))


@dataclass(frozen=True)
class ProfileResult(Result):
    """Sparsity per layer and weight type (Q, K, V, O, FFN in, FFN out) across rounds."""

    rounds: tuple[int, ...]
    layers: tuple[int, ...]
    roles: tuple[str, ...]
    sparsity: np.ndarray  # (rounds, layers, roles), NaN where a layer has no such tensor

    def _data(self) -> dict[str, Any]:
        return {"rounds": list(self.rounds), "layers": list(self.layers),
                "roles": [ROLE_LABEL.get(r, r) for r in self.roles],
                "sparsity": self.sparsity}  # NaN (no such tensor) -> None


def sparsity_profile(run: RunsOrMasks, *, by: str = "role") -> ProfileResult:
    """Sparsity per layer and weight role (``by="role"``, the only grouping), every round,
    from the manifest's per-tensor sparsity (no mask file is read): one run."""
    check_by(by, ("role",), what="sparsity_profile")
    run = one_run(run, what="sparsity_profile", needs="the per-round sparsity it records")
    anatomy: Anatomy = run.anatomy
    roles = tuple(dict.fromkeys(t.role for t in anatomy.tensors))
    layers = tuple(sorted({t.layer for t in anatomy.tensors}))
    rounds = tuple(r.index for r in run.rounds)
    out = np.full((len(rounds), len(layers), len(roles)), np.nan)
    for i, r in enumerate(run.rounds):
        sums: dict[tuple[int, str], list[float]] = {}
        for t in anatomy.tensors:
            if t.name in r.sparsity_per_tensor:
                size = float(np.prod(t.shape))
                acc = sums.setdefault((t.layer, t.role), [0.0, 0.0])
                acc[0] += r.sparsity_per_tensor[t.name] * size
                acc[1] += size
        for (layer, role), (pruned, size) in sums.items():
            out[i, layers.index(layer), roles.index(role)] = pruned / size
    return ProfileResult(rounds, layers, roles, out)
