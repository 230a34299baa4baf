"""``ticketlens export RUN -o DIR``: the ticket as an HF model folder (sliced where whole
heads or FFN neurons are removable; see ``ticketlens.exporter``)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `ticketlens find`")
    p.add_argument("-o", "--out", required=True, help="folder to write (must be new or empty)")
    p.add_argument("--round", type=int, default=None,
                   help="round to export (default: the ticket; 0 = the dense model)")
    p.add_argument("--slice", action=argparse.BooleanOptionalAction, default=True,
                   help="remove dead heads and FFN neurons physically (a smaller model, "
                        "loaded by ticketlens.load_pruned); --no-slice keeps the dense shapes "
                        "with zeros baked in")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.exporter import export_run

    res = export_run(ns.run, ns.out, round=ns.round, slice=ns.slice, overwrite=ns.overwrite)
    if ns.json:
        json.dump(res.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    loader = ("AutoModel*.from_pretrained or ticketlens.load_pruned" if res.stock_loadable
              else "ticketlens.load_pruned (the config cannot describe its smaller layers)")
    print(f"wrote {res.path}: round {res.round} at sparsity {res.sparsity:.1%}, "
          f"{'sliced' if res.sliced else 'not sliced'}")
    print(f"  heads {res.heads_kept}/{res.heads_total}, FFN neurons "
          f"{res.neurons_kept}/{res.neurons_total}; parameters {res.parameters:,} of "
          f"{res.dense_parameters:,} dense ({res.file_bytes / 1e6:.2f} MB file)")
    print(f"  load with {loader}")
    return 0
