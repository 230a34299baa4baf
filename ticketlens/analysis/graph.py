"""The surviving network as a graph (networkx), and a graph of runs.

``network_graph(run)``: nodes are the heads and FFN neurons of the ticket plus ``input`` and
``output``. Sub-layers are stages in order (L0 attention, L0 FFN, L1 attention, ...). A unit
*reads* residual dimension d through its kept input weights (Q, K, V rows of a head; the
input/gate row of a neuron) and *writes* it through its kept output weights (O columns; the
output column). An edge joins a unit of one stage to a unit of the next with weight
``sum_d writes_u[d] * reads_v[d]``: the number of surviving two-weight paths between them.
Through the residual stream every unit reads the input and writes the output directly:
``input -> v`` when v reads anything, ``u -> output`` when u writes anything.

A unit cut off from the output (it writes nothing) is removable at no cost; one cut off from
the input (it reads nothing) computes a constant, foldable into a bias.
The *strongest path* runs from the first stage to the last through consecutive stages,
maximising the product of its edge weights.

``runs_graph(overlap_result)``: runs joined where their overlap is above chance
(``p < alpha``), weighted by Jaccard / chance, with communities (greedy modularity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from ticketlens.analysis.inputs import RunsOrMasks, check_by, one_input
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.masks import Masks, as_bool
from ticketlens.core.result import Result
from ticketlens.core.units import head_name, neuron_name

if TYPE_CHECKING:
    from ticketlens.analysis.overlap import OverlapResult


def _residual_counts(anatomy: Anatomy, masks: Masks, layer: int) -> dict[str, np.ndarray]:
    """Per stage of ``layer``: (units, hidden) kept-weight counts read and written."""
    H = anatomy.num_heads
    hidden = anatomy.hidden
    head_r = np.zeros((H, hidden))
    head_w = np.zeros((H, hidden))
    for h in range(H):
        for part, s in anatomy.head_slices(layer, h).items():
            if s.name not in masks:
                continue
            m = as_bool(masks[s.name])[s.index()].astype(np.float64)
            counts = m.sum(0) if s.dim == 0 else m.sum(1)
            if part == "o":
                head_w[h] += counts
            else:
                head_r[h] += counts
    n_r = np.zeros((anatomy.intermediate, hidden))
    n_w = np.zeros((anatomy.intermediate, hidden))
    for t in anatomy.layer_tensors(layer):
        if t.name not in masks or t.role not in ("ffn_in", "ffn_gate", "ffn_out"):
            continue
        m = as_bool(masks[t.name]).astype(np.float64)
        # as (intermediate, hidden): linear ffn_in is (I, hidden), ffn_out (hidden, I)
        rows = m if (t.layout == "linear") == (t.role != "ffn_out") else m.T
        if t.role == "ffn_out":
            n_w += rows
        else:
            n_r += rows
    return {"head_r": head_r, "head_w": head_w, "neuron_r": n_r, "neuron_w": n_w}


@dataclass(frozen=True)
class NetworkResult(Result):
    graph: nx.DiGraph
    cut_from_input: tuple[str, ...]
    cut_from_output: tuple[str, ...]
    components: tuple[tuple[str, ...], ...]  # weakly connected, input/output left out
    strongest_path: tuple[str, ...]
    strongest_path_log_weight: float
    num_units: int
    num_edges: int
    removable: tuple[str, ...] = field(default=())

    def _data(self) -> dict[str, Any]:
        return {
            "num_units": self.num_units, "num_edges": self.num_edges,
            "cut_from_input": list(self.cut_from_input),
            "cut_from_output": list(self.cut_from_output),
            "removable": list(self.removable),
            "components": len(self.components),
            "largest_component": len(self.components[0]) if self.components else 0,
            "strongest_path": list(self.strongest_path),
            "strongest_path_log_weight": self.strongest_path_log_weight,
        }


def network_graph(anatomy: Anatomy, masks: Masks) -> NetworkResult:
    g = nx.DiGraph()
    g.add_node("input", stage=-1)
    g.add_node("output", stage=10**9)
    stages: list[tuple[list[str], np.ndarray, np.ndarray]] = []
    for layer in range(anatomy.num_layers):
        c = _residual_counts(anatomy, masks, layer)
        heads = [head_name(layer, h) for h in range(anatomy.num_heads)]
        neurons = [neuron_name(layer, n) for n in range(anatomy.intermediate)]
        stages.append((heads, c["head_r"], c["head_w"]))
        stages.append((neurons, c["neuron_r"], c["neuron_w"]))
    for s, (names, reads, writes) in enumerate(stages):
        for i, n in enumerate(names):
            g.add_node(n, stage=s, reads=float(reads[i].sum()), writes=float(writes[i].sum()))
            if reads[i].any():
                g.add_edge("input", n, weight=float(reads[i].sum()))
            if writes[i].any():
                g.add_edge(n, "output", weight=float(writes[i].sum()))
    for s in range(len(stages) - 1):
        names_a, _, writes = stages[s]
        names_b, reads, _ = stages[s + 1]
        w = writes @ reads.T  # (units_a, units_b)
        ia, ib = np.nonzero(w > 0)
        g.add_edges_from((names_a[a], names_b[b], {"weight": float(w[a, b])})
                         for a, b in zip(ia.tolist(), ib.tolist()))
    units = [n for n in g if n not in ("input", "output")]
    reachable = nx.descendants(g, "input")
    reaching = nx.ancestors(g, "output")
    cut_in = tuple(u for u in units if u not in reachable)
    cut_out = tuple(u for u in units if u not in reaching)
    inner = g.subgraph(units)
    comps = sorted((tuple(sorted(c)) for c in nx.weakly_connected_components(inner)),
                   key=len, reverse=True)
    path, score = _strongest_path(g, stages)
    return NetworkResult(g, cut_in, cut_out, tuple(comps), path, score, len(units),
                         inner.number_of_edges(), tuple(sorted(set(cut_out))))


def graph(run: RunsOrMasks, *, by: str = "unit", round: int | None = None) -> NetworkResult:
    """The surviving network of heads and neurons (``by="unit"``, the only level) of one
    ticket: a run at ``round`` (default: the ticket), or typed masks, in any form
    :mod:`ticketlens.analysis.inputs` reads (``(anatomy, masks)`` too)."""
    check_by(by, ("unit",), what="graph")
    item = one_input(run, what="graph")
    return network_graph(item.anatomy, item.mask(round))


def _strongest_path(g: nx.DiGraph, stages) -> tuple[tuple[str, ...], float]:
    """Max sum of log edge weights through consecutive stages (dynamic programming)."""
    score = {n: 0.0 for n in stages[0][0] if g.has_edge("input", n)}
    back: dict[str, str] = {}
    for s in range(1, len(stages)):
        nxt: dict[str, float] = {}
        for u, su in score.items():
            for v in g.successors(u):
                if g.nodes[v].get("stage") != s:
                    continue
                cand = su + math.log(g.edges[u, v]["weight"])
                if cand > nxt.get(v, float("-inf")):
                    nxt[v] = cand
                    back[v] = u
        if not nxt:
            break
        score = nxt
    if not score:
        return (), float("-inf")
    end = max(score, key=score.__getitem__)
    path = [end]
    while path[-1] in back:
        path.append(back[path[-1]])
    return tuple(reversed(path)), float(score[end])


@dataclass(frozen=True)
class RunsGraphResult(Result):
    graph: nx.Graph
    communities: tuple[tuple[str, ...], ...]

    def _data(self) -> dict[str, Any]:
        return {"nodes": list(self.graph.nodes),
                "edges": [{"a": a, "b": b, **d} for a, b, d in self.graph.edges(data=True)],
                "communities": [list(c) for c in self.communities]}


def runs_graph(result: OverlapResult, alpha: float = 0.01) -> RunsGraphResult:
    """Runs joined where overlap is above chance; ``result`` is an OverlapResult."""
    g = nx.Graph()
    g.add_nodes_from(result.names)
    for p in result.pairs:
        if p.p_value < alpha and p.jaccard > p.jaccard_chance:
            g.add_edge(p.a, p.b, weight=p.jaccard / p.jaccard_chance, jaccard=p.jaccard,
                       p_value=p.p_value)
    if g.number_of_edges():
        comms = nx.algorithms.community.greedy_modularity_communities(g, weight="weight")
    else:
        comms = [{n} for n in g]
    return RunsGraphResult(g, tuple(tuple(sorted(c)) for c in comms))
