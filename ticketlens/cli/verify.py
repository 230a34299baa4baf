"""``ticketlens verify RUN...``: read every file of a run and check it (exit 2 on the first
problem, one line naming the file); says which files it checked and whether their SHA-256
matched the manifest."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories or folders of runs")
    p.add_argument("--json", action="store_true", help="print what was checked as JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.checks import verify
    from ticketlens.core.run import find_runs

    results = [verify(p) for arg in ns.runs for p in find_runs(arg)]
    if ns.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        print()
        return 0
    for r in results:
        print(f"ok: {r.run}: {r.summary()}")
    return 0
