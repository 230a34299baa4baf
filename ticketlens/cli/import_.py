"""``ticketlens import --from FORMAT PATH... --out RUN``: masks made by other tools."""

from __future__ import annotations

import argparse

# the same tuple as ticketlens.importers.FORMATS (a test checks), kept here so that
# `ticketlens --help` does not import torch
FORMATS = ("bert-experiments", "torch-prune", "safetensors", "npz")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="mask files, or bert-experiments folders")
    p.add_argument("--from", dest="fmt", required=True, choices=FORMATS, help="the format")
    p.add_argument("-o", "--out", required=True,
                   help="run directory (one file) or folder of runs (several)")
    p.add_argument("--model", default="", help="architecture of weight-level masks: a preset, "
                   "model folder or cached HF id")
    p.add_argument("--task", default="", help="task name to record (default: the file name)")
    p.add_argument("--seed", type=int, default=None, help="seed to record")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.importers import import_masks

    written = import_masks(ns.fmt, ns.paths, ns.out, model=ns.model, task=ns.task,
                           seed=ns.seed)
    for w in written:
        print(w)
    print(f"imported {len(written)} run{'s' if len(written) != 1 else ''}; compare them with: "
          f"ticketlens compare {ns.out}")
    return 0
