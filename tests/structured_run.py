"""A structured run for the view tests, written through ``RunWriter`` from a sample run: its
ticket has one head in each state and neurons of each state, unit sparsity on every round, an
early-bird record."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
from conftest import SAMPLE_MASKS

from ticketlens.core.masks import sparsity, sparsity_per_tensor
from ticketlens.core.run import RunWriter, open_run

# the ticket's head states (the rest stay alive): L0H0 blind (Q pruned), L0H1 constant
# (V pruned), L1H2 dead (O pruned), L2H3 dead (Q and O pruned)
HEADS = {"L0H0": ("q",), "L0H1": ("v",), "L1H2": ("o",), "L2H3": ("q", "o")}
STATES = {"L0H0": "blind", "L0H1": "constant", "L1H2": "dead", "L2H3": "dead"}
# layer 0: neurons 0-2 constant (input rows pruned), 3-7 dead (output columns pruned)
CONSTANT_NEURONS, DEAD_NEURONS = range(0, 3), range(3, 8)
EARLY_BIRD = {"every": 4, "epsilon": 0.1, "window": 3,
              "draws": [{"step": 4, "distance": None}, {"step": 8, "distance": 0.31},
                        {"step": 12, "distance": 0.08}, {"step": 16, "distance": 0.05},
                        {"step": 20, "distance": 0.02}],
              "stopped_at": 20, "dense_steps": 64, "steps_saved": 44}


def make_structured_run(dst: Path, *, early_bird: bool = True) -> Path:
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", dst)
    run = open_run(dst)
    a, ticket = run.anatomy, run.ticket_round
    # from round 0 (all kept), as a structured ticket's weights are its units' expansion: the
    # sample ticket's own 95% unstructured mask leaves heads and neurons dead by itself
    masks = {n: np.array(m, dtype=bool) for n, m in run.mask(0).items()}
    for unit, parts in HEADS.items():
        layer, head = (int(x) for x in unit[1:].split("H"))
        for part in parts:
            s = a.head_slices(layer, head)[part]
            masks[s.name][s.index()] = False
    for t in a.layer_tensors(0):
        if t.role == "ffn_in":
            masks[t.name][list(CONSTANT_NEURONS), :] = False
        elif t.role == "ffn_out":
            masks[t.name][:, list(DEAD_NEURONS)] = False
    w = RunWriter(dst)
    w.mask(ticket, masks)
    m = run.manifest
    head = np.ones((a.num_layers, a.num_heads), bool)
    head[1, 2] = head[2, 3] = head[0, 1] = False
    neuron = np.ones((a.num_layers, a.intermediate), bool)
    neuron[0, :8] = False
    rounds = []
    for r in m.rounds:
        share = r.index / m.rounds[-1].index
        units = w.units(r.index, head, neuron) if r.index == ticket else None
        if r.index == ticket:  # the mask written above: its counts recorded (readers check)
            r = dataclasses.replace(r, sparsity=sparsity(masks),
                                    sparsity_per_tensor=sparsity_per_tensor(masks))
        rounds.append(dataclasses.replace(
            r, units=units, unit_sparsity={"head": round(0.25 * share, 4),
                                           "neuron": round(0.5 * share, 4)}))
    m = dataclasses.replace(m, rounds=tuple(rounds))
    if early_bird:
        m = m.with_extra(early_bird=EARLY_BIRD)
    w.manifest(m)
    return dst
