"""``ticketlens info RUN``: rounds table, controls and verdict (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory, or a sweep's folder (statistics over seeds)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--verify", action="store_true", help="first read every file of the run "
                   "and check it (as `ticketlens verify`): exit 2 on a problem")
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
                    "steps": r.steps, "wall_time_s": r.wall_time_s,
                    **({"unit_sparsity": dict(r.unit_sparsity)} if r.unit_sparsity else {})}
                   for r in run.rounds],
        "controls": {k: c.to_dict() for k, c in run.controls.items()},
        "verdict": run.verdict.to_dict() if run.verdict else None,
        "distill": _distill(m.config),
        # find --method: the one-shot pruning of round 1, before retraining (and calibration)
        "oneshot": next(({"round": r.index, **dict(r.extra)} for r in run.rounds
                         if "oneshot" in r.extra), None),
        "compress": _compress(run),
        "ticket_units": _ticket_units(run),
        "early_bird": _early_bird(run),
        "stability": _stability(run),
    }


def _stability(run) -> dict | None:
    """``ticketlens stability``'s record by round, when it has been run on this run."""
    from ticketlens.pruning.stability import read_stability

    rec = read_stability(run)
    return {str(k): v.to_dict() for k, v in rec.items()} or None


def _ticket_units(run) -> dict | None:
    """The ticket's heads and FFN neurons by state (``core.structure``)."""
    from ticketlens.analysis.survival import survival

    return survival(run).state_counts() if run.rounds else None


def _early_bird(run) -> dict | None:
    from ticketlens.analysis.earlybird import early_bird

    bird = early_bird(run)
    return bird.to_dict() if bird is not None else None


def _compress(run) -> dict | None:
    """The table of ``ticketlens compress`` when it has been run on this run."""
    from ticketlens.compress.result import read_compress

    res = read_compress(run.path)
    return res.to_dict() if res is not None else None


def _distill(config) -> dict | None:
    """``{"alpha", "temperature"}`` when the run was found with ``--distill``."""
    t = dict(config or {}).get("train") or {}
    if not t.get("distill"):
        return None
    return {"alpha": t.get("distill_alpha"), "temperature": t.get("distill_temperature")}


def sweep_summary(path: str) -> dict:
    """The JSON shape of ``info --json SWEEP``: the grid, each cell's status, statistics."""
    from ticketlens.analysis.sweep import sweep_stats
    from ticketlens.core.run import open_run
    from ticketlens.sweep import read_sweep

    data = read_sweep(path)
    runs = []
    for cell in data.get("cells", []):
        run_dir = Path(path) / str(cell.get("path", ""))
        if cell.get("status") == "complete" and (run_dir / "manifest.json").is_file():
            runs.append(open_run(run_dir))
    counts: dict[str, int] = {}
    for cell in data.get("cells", []):
        counts[cell.get("status", "pending")] = counts.get(cell.get("status", "pending"), 0) + 1
    stats = sweep_stats(runs).to_dict() if any(r.complete for r in runs) else None
    return {"sweep": str(path), "cells": counts, "grid": data.get("grid"),
            "failed": [{"path": c.get("path"), "error": c.get("error")}
                       for c in data.get("cells", []) if c.get("status") == "failed"],
            "statistics": stats}


def print_sweep(summary: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = Console(highlight=False)
    cells = ", ".join(f"{n} {k}" for k, n in sorted(summary["cells"].items()))
    con.print(f"[bold]{escape(summary['sweep'])}[/bold]  cells: {cells}")
    stats = summary["statistics"]
    if stats is None:
        con.print("no complete runs yet")
        return
    conf = f"{stats['confidence']:.0%}"

    undefined = []

    def f(v: float | None, spec: str) -> str:  # to_dict() writes a NaN as None
        if v is None or v != v:
            undefined.append(True)
            return "n/a"
        return format(v, spec)

    def ci(e: dict) -> str:
        if e["n"] == 0:
            return "n/a"
        if e["n"] < 2:
            return f(e["mean"], ".4f")
        return f"{f(e['mean'], '.4f')} ± {f(e['half_width'], '.4f')}"

    t = Table(title=f"over seeds: mean ± half of the {conf} interval (t)")
    controls = sorted({c for g in stats["groups"] for c in g["controls"]})
    for col in ("task", "model", "settings", "seeds", "sparsity", "dense", "ticket",
                *controls, "verdict", "seed κ (chance)"):
        t.add_column(escape(col.replace("_", " ")), justify="left" if col in (
            "task", "model", "settings", "verdict") else "right")
    for g in stats["groups"]:
        t.add_row(escape(g["task"]), escape(Path(g["model"]).name), escape(g["settings"]),
                  str(len(g["seeds"])), f(g["sparsity"]["mean"], ".1%"), ci(g["dense"]),
                  ci(g["ticket"]), *[ci(g["controls"][c]) if c in g["controls"] else "–"
                                     for c in controls], g["verdict"],
                  f"{f(g['seed_kappa'], '.3f')} ({f(g['seed_kappa_chance'], '.3f')})")
    con.print(t)
    colour = {"winning": "green", "inconclusive": "yellow"}
    for g in stats["groups"]:  # the deciding reason, one line (every clause: --json "reason")
        c = colour.get(g["verdict"], "red")
        con.print(f"[bold]{escape(g['task'])}[/bold]{escape(' ' + g['settings'])}: "
                  f"[{c}]{g['verdict']}[/{c}]: {escape(g.get('headline') or g['reason'])}",
                  soft_wrap=True)
    for c in stats["cross_task"]:
        con.print(f"across tasks ({escape(Path(c['model']).name)} {escape(c['settings'])}): "
                  f"mean Jaccard with the seed held fixed {f(c['same_seed_jaccard'], '.3f')} "
                  f"(chance {f(c['same_seed_chance'], '.3f')}, {c['same_seed_pairs']} pairs); "
                  f"across seeds {f(c['cross_seed_jaccard'], '.3f')} (chance "
                  f"{f(c['cross_seed_chance'], '.3f')}, {c['cross_seed_pairs']} pairs)")
    if undefined:
        con.print("[dim]n/a: undefined with what the sweep holds (a seed κ or an interval "
                  "needs two seeds or more; a pair count of 0 has no mean)[/dim]")
    for failed in summary["failed"]:
        con.print(f"failed: {escape(str(failed['path']))}: {escape(str(failed['error']))}")


def show_sweep(path: str, *, as_json: bool) -> None:
    """``info SWEEP`` (and the end of ``sweep``): the statistics, as tables or JSON."""
    sweep = sweep_summary(path)
    if as_json:
        json.dump(sweep, sys.stdout, indent=2)
        print()
    else:
        print_sweep(sweep)


def run(ns: argparse.Namespace) -> int:
    from ticketlens.core.run import open_run
    from ticketlens.sweep import SWEEP_FILE

    if (Path(ns.run) / SWEEP_FILE).is_file():
        show_sweep(ns.run, as_json=ns.json)
        return 0
    r = open_run(ns.run)
    verified = None
    if ns.verify:
        from ticketlens.checks import verify

        verified = verify(ns.run)
    data = summary(r)
    if verified is not None:
        data["verified"] = verified.to_dict()
    if ns.network:
        from ticketlens.analysis.graph import network_graph

        data["network"] = network_graph(r.anatomy, r.mask()).to_dict()
    if ns.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    print_run(r, data)
    if verified is not None:
        from rich.console import Console
        from rich.markup import escape

        Console(highlight=False).print(f"[green]verified[/green]: {escape(verified.summary())}")
    return 0


def print_run(r, data: dict) -> None:
    """``info RUN`` as tables: the header, the rounds, the controls, the network, the
    compression table and the verdict (``data`` is :func:`summary`, with ``network`` when
    ``--network`` asked for it)."""
    from rich.console import Console

    con = Console(highlight=False)
    _print_header(con, r, data)
    units = _print_rounds(con, r)
    tu = data["ticket_units"]
    if tu and (units or any(n for k, n in tu["head"].items() if k != "alive")):
        con.print(_units_line(tu))
    if data["oneshot"]:
        o = data["oneshot"]
        con.print(f"round {o['round']}: one-shot {o['oneshot']['method']} "
                  f"({o['oneshot']['pattern']}) on {o['calibration']['count']} calibration "
                  f"examples; {r.metric} {o['oneshot']['metrics'][r.metric]:.4f} before "
                  "retraining")
    if r.controls:
        _print_controls(con, r)
    if "network" in data:
        con.print(_network_line(data["network"]))
    if data["compress"]:
        from ticketlens.cli.compress import print_table
        from ticketlens.compress.result import CompressResult

        print_table(CompressResult.from_dict(data["compress"]), con)
    if data.get("stability"):
        from ticketlens.cli.stability import print_table as stability_table

        for res in data["stability"].values():
            stability_table(res, con)
    _print_verdict(con, r)


def _print_header(con, r, data: dict) -> None:
    """The run's one-line identity, then the distillation and early-bird lines."""
    from rich.markup import escape

    m = r.manifest
    rw = m.rewind
    rewind = "?" if rw is None else rw.mode + (f" @ step {rw.step}" if rw.mode == "step" else "")
    prunable = f"{m.model.num_prunable:,}" if m.model.num_prunable is not None else "?"
    con.print(f"[bold]{escape(str(r.path))}[/bold]  {escape(m.model.name)} "
              f"({escape(m.model.family)}, {prunable} prunable weights) on "
              f"{escape(m.task.name)}, seed {r.seed}, rewind {escape(rewind)}, status "
              f"{escape(m.status)}")
    if data["distill"]:
        d = data["distill"]
        con.print(f"pruned rounds and controls distilled from dense (α {d['alpha']:g}, "
                  f"T {d['temperature']:g})")
    if data["early_bird"]:
        con.print(_early_bird_line(data["early_bird"]))


def _print_rounds(con, r) -> bool:
    """The IMP rounds table; True when the run is structured (heads/neurons columns)."""
    from rich.markup import escape
    from rich.table import Table

    from ticketlens.report.fmt import pct

    m, metric = r.manifest, r.metric
    t = Table(title="IMP rounds")
    units = any(rd.unit_sparsity for rd in r.rounds)  # structured (find --granularity)
    for col in ("round", "sparsity", *(("heads off", "neurons off") if units else ()), metric,
                "dev loss", "steps", "time"):
        t.add_column(escape(col), justify="right")
    def num(v: float | None) -> str:
        if v is None or v != v:
            missing.append(True)
            return "n/a"
        return f"{v:.4f}"

    missing: list[bool] = []
    for rd in r.rounds:
        mark = " *" if rd.index == m.ticket_round else ""
        us = rd.unit_sparsity or {}
        t.add_row(f"{rd.index}{mark}", f"{rd.sparsity:.1%}",
                  *(pct(us.get(k), missing="–") for k in ("head", "neuron") if units),
                  num(rd.metrics.get(metric)), num(rd.metrics.get("loss")), str(rd.steps),
                  f"{rd.wall_time_s:.1f}s")
    con.print(t)
    con.print("[dim]* the ticket: the round the verdict and every view are about" + (
        "; n/a: not measured (an imported mask carries no metrics)" if missing else "") +
        "[/dim]")
    return units


def _print_controls(con, r) -> None:
    """The controls at the ticket's sparsity (with one-shot methods' metric before
    retraining when any control has one)."""
    from rich.markup import escape
    from rich.table import Table

    from ticketlens.core.run import control_label

    metric = r.metric
    c = Table(title="controls (at the ticket's sparsity)")
    before = {n: dict(a.extra.get("oneshot") or {}).get("metrics", {}).get(metric)
              for n, a in r.controls.items()}  # one-shot method controls
    any_before = any(v is not None for v in before.values())
    for col in ("control", "sparsity", metric, *(["before retraining"] if any_before else [])):
        c.add_column(escape(col), justify="right")
    for name, arm in r.controls.items():
        c.add_row(escape(control_label(name)), f"{arm.sparsity:.1%}",
                  "n/a" if arm.metric(metric) is None else f"{arm.metric(metric):.4f}",
                  *(["–" if before[name] is None else f"{before[name]:.4f}"]
                    if any_before else []))
    con.print(c)


def _network_line(n: dict) -> str:
    """``info --network``: the ticket's surviving network in one line."""
    return (f"surviving network: {n['num_units']} units, {n['num_edges']:,} edges, "
            f"{n['components']} component(s) (largest {n['largest_component']}); cut "
            f"off from the output (removable at no cost): "
            f"{', '.join(n['cut_from_output'][:12]) or 'none'}"
            f"{' …' if len(n['cut_from_output']) > 12 else ''}; cut off from the input "
            f"(constant): {', '.join(n['cut_from_input'][:12]) or 'none'}; strongest "
            f"path: {' → '.join(n['strongest_path'])}")


def _print_verdict(con, r) -> None:
    from rich.markup import escape

    v = r.verdict
    if v:
        colour = {"WINNING TICKET": "green", "INCONCLUSIVE": "yellow"}.get(v.label, "red")
        con.print(f"[{colour}]{v.label}[/{colour}]: {escape(v.reason)}")
    else:
        con.print("no verdict yet (the run is incomplete: run the same `find` to resume)")


def _units_line(counts: dict) -> str:
    """The ticket's heads and neurons by state (constant and dead units are gone in every
    view; attention-blind heads still add a mix of V)."""
    h, n = counts["head"], counts["neuron"]
    return (f"ticket units: heads {h['alive']} alive, {h['blind']} attention-blind (Q or K "
            f"pruned; count as alive), {h['constant']} constant (V pruned) and {h['dead']} "
            f"dead (O pruned), both removable; FFN neurons {n['alive']} alive, "
            f"{n['constant']} constant (input side pruned), {n['dead']} dead (output side "
            "pruned)")


def _early_bird_line(b: dict) -> str:
    if b["stopped_at"] is None:
        return (f"early-bird: the mask did not settle (ε {b['epsilon']:g}, window "
                f"{b['window']}); dense trained all {b['dense_steps']} steps")
    return (f"early-bird: the mask settled at step {b['stopped_at']} of {b['dense_steps']} "
            f"({b['steps_saved']} dense steps saved, {b['saved_fraction']:.0%}; a draw every "
            f"{b['every']} steps, ε {b['epsilon']:g}, window {b['window']})")
