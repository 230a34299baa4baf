"""``ticketlens find``: iterative magnitude pruning with rewinding, controls and a verdict."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ticketlens.cli.args import add_find_flags, find_config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", help="run directory to write (or resume); default: "
                   "runs/<task>-<model>-s<seed>")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an existing run at --out and start again")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_find_flags(p)


def default_out(cfg) -> Path:
    task = Path(cfg.data.task).stem
    model = Path(cfg.model.model.rstrip("/")).name
    return Path("runs") / f"{task}-{model}-s{cfg.seed}"


def run(ns: argparse.Namespace) -> int:
    cfg = find_config_from_args(ns)
    out = Path(ns.out) if ns.out else default_out(cfg)
    if ns.quiet or ns.json:  # also the loading / download bars of transformers and datasets
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from ticketlens.pruning.imp import find
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.train import process_rank

    reporter = Reporter() if (ns.quiet or ns.json) else RichReporter()
    find(cfg, out, reporter=reporter, overwrite=ns.overwrite)
    if process_rank() != 0:
        return 0  # several processes (torchrun): rank 0 reports
    from ticketlens.core.run import open_run

    v = open_run(out).verdict
    if ns.json:
        json.dump({"run": str(out), **(v.to_dict() if v else {})}, sys.stdout, indent=2)
        print()
    elif ns.quiet:
        print(f"{v.state if v else 'no verdict'}: {v.reason if v else ''}")
    else:
        reporter.line(f"look at it: ticketlens info {out}")
    return 0
