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
        "run": str(run.path), "status": m.get("status"), "format_version": m["format_version"],
        "model": {k: m["model"].get(k) for k in ("name", "source", "family", "num_prunable")},
        "task": m.get("task", {}).get("name"), "metric": run.metric, "seed": run.seed,
        "rewind": m.get("rewind"), "ticket_round": m.get("ticket_round"),
        "rounds": [{"round": r.index, "sparsity": r.sparsity, "metrics": r.metrics,
                    "steps": r.steps, "wall_time_s": r.wall_time_s} for r in run.rounds],
        "controls": run.controls, "verdict": run.verdict,
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
    from rich.table import Table

    con = Console(highlight=False)
    metric = data["metric"]
    con.print(f"[bold]{r.path}[/bold]  {data['model']['name']} ({data['model']['family']}, "
              f"{data['model']['num_prunable']:,} prunable weights) on {data['task']}, "
              f"seed {data['seed']}, rewind {data['rewind']['mode']}"
              f"{' @ step ' + str(data['rewind']['step']) if data['rewind']['mode'] == 'step' else ''}"
              f", status {data['status']}")
    t = Table(title="IMP rounds")
    for col in ("round", "sparsity", metric, "dev loss", "steps", "time"):
        t.add_column(col, justify="right")
    for rd in data["rounds"]:
        mark = " *" if rd["round"] == data["ticket_round"] else ""
        t.add_row(f"{rd['round']}{mark}", f"{rd['sparsity']:.1%}",
                  f"{rd['metrics'].get(metric, float('nan')):.4f}",
                  f"{rd['metrics'].get('loss', float('nan')):.4f}", str(rd["steps"]),
                  f"{rd['wall_time_s']:.1f}s")
    con.print(t)
    if data["controls"]:
        c = Table(title="controls (at the ticket's sparsity)")
        for col in ("control", "sparsity", metric):
            c.add_column(col, justify="right")
        for name, v in data["controls"].items():
            c.add_row(control_label(name), f"{v['sparsity']:.1%}",
                      f"{v['metrics'].get(metric, float('nan')):.4f}")
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
    v = data["verdict"]
    if v:
        word = "[green]WINNING TICKET[/green]" if v["winning"] else "[red]NO WINNING TICKET[/red]"
        con.print(f"{word}: {v['reason']}")
    else:
        con.print("no verdict yet (the run is incomplete: run the same `find` to resume)")
    return 0
