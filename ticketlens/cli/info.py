"""``ticketlens info RUN``: rounds table, controls and verdict (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--network", action="store_true", help="also the ticket's surviving "
                   "network: units cut off from input or output, components, strongest path")


def summary(run) -> dict:
    """The JSON shape of ``info --json``."""
    m = run.manifest
    return {
        "run": str(run.path), "status": m.status, "format_version": m.format_version,
        "model": {"name": m.model.name, "source": m.model.source, "family": m.model.family,
                  "num_prunable": m.model.num_prunable},
        "task": m.task.name, "metric": run.metric, "seed": run.seed,
        "rewind": m.rewind.to_dict() if m.rewind else None, "ticket_round": m.ticket_round,
        "rounds": [{"round": r.index, "sparsity": r.sparsity, "metrics": dict(r.metrics),
                    "steps": r.steps, "wall_time_s": r.wall_time_s} for r in run.rounds],
        "controls": {k: c.to_dict() for k, c in run.controls.items()},
        "verdict": run.verdict.to_dict() if run.verdict else None,
    }


def run(ns: argparse.Namespace) -> int:
    from ticketlens.core.run import control_label, open_run

    r = open_run(ns.run)
    data = summary(r)
    if ns.network:
        from ticketlens.analysis.graph import network_graph

        data["network"] = network_graph(r.anatomy, r.mask()).to_dict()
    if ns.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = Console(highlight=False)
    m, metric = r.manifest, r.metric
    rw = m.rewind
    rewind = "?" if rw is None else rw.mode + (f" @ step {rw.step}" if rw.mode == "step" else "")
    prunable = f"{m.model.num_prunable:,}" if m.model.num_prunable is not None else "?"
    con.print(f"[bold]{escape(str(r.path))}[/bold]  {escape(m.model.name)} "
              f"({escape(m.model.family)}, {prunable} prunable weights) on "
              f"{escape(m.task.name)}, seed {r.seed}, rewind {rewind}, status {m.status}")
    t = Table(title="IMP rounds")
    for col in ("round", "sparsity", metric, "dev loss", "steps", "time"):
        t.add_column(escape(col), justify="right")
    for rd in r.rounds:
        mark = " *" if rd.index == m.ticket_round else ""
        t.add_row(f"{rd.index}{mark}", f"{rd.sparsity:.1%}",
                  f"{rd.metrics.get(metric, float('nan')):.4f}",
                  f"{rd.metrics.get('loss', float('nan')):.4f}", str(rd.steps),
                  f"{rd.wall_time_s:.1f}s")
    con.print(t)
    if r.controls:
        c = Table(title="controls (at the ticket's sparsity)")
        for col in ("control", "sparsity", metric):
            c.add_column(escape(col), justify="right")
        for name, arm in r.controls.items():
            c.add_row(escape(control_label(name)), f"{arm.sparsity:.1%}",
                      f"{arm.metrics.get(metric, float('nan')):.4f}")
        con.print(c)
    if ns.network:
        n = data["network"]
        con.print(f"surviving network: {n['num_units']} units, {n['num_edges']:,} edges, "
                  f"{n['components']} component(s) (largest {n['largest_component']}); cut "
                  f"off from the output (removable at no cost): "
                  f"{', '.join(n['cut_from_output'][:12]) or 'none'}"
                  f"{' …' if len(n['cut_from_output']) > 12 else ''}; cut off from the input "
                  f"(constant): {', '.join(n['cut_from_input'][:12]) or 'none'}; strongest "
                  f"path: {' → '.join(n['strongest_path'])}")
    v = r.verdict
    if v:
        colour = {"WINNING TICKET": "green", "INCONCLUSIVE": "yellow"}.get(v.label, "red")
        con.print(f"[{colour}]{v.label}[/{colour}]: {escape(v.reason)}")
    else:
        con.print("no verdict yet (the run is incomplete: run the same `find` to resume)")
    return 0
