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
    p.add_argument("--format", default="hf", choices=("hf", "compressed-tensors", "onnx"),
                   help="hf: a Hugging Face folder (float weights, the mask baked in); "
                   "compressed-tensors: int8/int4 packed through the compressed-tensors "
                   "library (from_pretrained loads it where it is installed); onnx: the "
                   "sliced model for onnxruntime (default: %(default)s)")
    p.add_argument("--quant", default="none", choices=("none", "int8", "int4"),
                   help="weights of the prunable matrices: compressed-tensors int8 (per "
                   "output channel) or int4 (per --group); onnx int8 (onnxruntime's dynamic "
                   "int8) (default: %(default)s)")
    p.add_argument("--group", type=int, default=64, help="int4 group size: 32, 64 or 128 "
                   "(default: %(default)s)")
    p.add_argument("--slice", action=argparse.BooleanOptionalAction, default=None,
                   help="remove dead heads and FFN neurons physically (a smaller model, "
                        "loaded by ticketlens.load_pruned); --no-slice keeps the dense shapes "
                        "with zeros baked in")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.exporter.formats import check_combination

    check_combination(ns.format, ns.quant, ns.slice if ns.format == "compressed-tensors"
                      else None)
    if ns.format != "hf":
        return _run_format(ns)
    from ticketlens.exporter import export_run

    res = export_run(ns.run, ns.out, round=ns.round, slice=ns.slice is not False,
                     overwrite=ns.overwrite)
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


def _run_format(ns: argparse.Namespace) -> int:
    from ticketlens.exporter.formats import export_format

    res = export_format(ns.run, ns.out, format=ns.format, quant=ns.quant, group=ns.group,
                        round=ns.round, slice=ns.slice, overwrite=ns.overwrite)
    if ns.json:
        json.dump(res.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    q = {"none": "float32", "int8": "int8", "int4": f"int4 (groups of {res.group})"}[res.quant]
    print(f"wrote {res.path} ({res.format}): round {res.round} at sparsity "
          f"{res.sparsity:.1%}, {q} weights, {'sliced' if res.sliced else 'not sliced'}; "
          f"{res.file_bytes / 1e6:.2f} MB ({', '.join(res.files)})")
    print(f"  checked against ticketlens' model of this variant: max |logit diff| "
          f"{res.max_abs_diff:.2g}")
    loader = ("AutoModelFor*.from_pretrained (with compressed-tensors installed)"
              if res.format == "compressed-tensors" else
              "onnxruntime.InferenceSession(DIR/model.onnx)")
    print(f"  load with {loader}")
    return 0
