"""``ticketlens report PATH... -o report.html``: one self-contained, shareable HTML file."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="run directories or folders of runs")
    p.add_argument("-o", "--out", default="report.html", help="HTML file to write")
    p.add_argument("--export", action="append", default=[], metavar="DIR",
                   help="a folder written by `ticketlens export` from one of the runs: its "
                        "sizes go into that run's section (repeatable)")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.core.io import write_bytes_atomic
    from ticketlens.core.run import find_runs, open_run
    from ticketlens.report.html import build_report
    from ticketlens.report.structured import read_exports

    runs = [open_run(p) for arg in ns.paths for p in find_runs(arg)]
    text = build_report(runs, read_exports(ns.export, runs))
    write_bytes_atomic(ns.out, text.encode("utf-8"))
    print(f"wrote {ns.out} ({len(text.encode('utf-8')) / 1e6:.1f} MB, {len(runs)} runs)")
    return 0
