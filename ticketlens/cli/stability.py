"""``ticketlens stability RUN``: Frankle et al. 2020's instability analysis of a round's arm
(two copies trained with different SGD noise from each start point, the error barrier on the
linear path between them); recorded in the run as ``analysis/stability.json``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run made by `ticketlens find` (it needs the weights)")
    p.add_argument("--round", type=int, default=None,
                   help="the round whose arm is trained (default: the ticket; 0: dense)")
    p.add_argument("--rewind", nargs="+", default=None, metavar="START",
                   help="start points: init, rewind (the run's), reinit (a fresh random "
                   "initialisation) or a step count like 50it / 0.1ep (dense round 0 replayed "
                   "to it); default: init, rewind (when the run has one) and reinit")
    p.add_argument("--points", type=int, default=11,
                   help="evenly spaced points on the linear path, ends included (default 11)")
    p.add_argument("--seed", type=int, default=None,
                   help="base seed of the copies' data orders and dropout (default: the run's)")
    p.add_argument("--no-save", action="store_true", help="do not record it in the run")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.core.errors import ConfigError
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.stability import stability

    if ns.points < 2:
        raise ConfigError("--points must be at least 2 (the two ends of the path)")
    reporter = Reporter() if ns.quiet or ns.json else RichReporter()
    res = stability(ns.run, round=ns.round, rewinds=ns.rewind, points=ns.points,
                    seed=ns.seed, reporter=reporter, save=not ns.no_save)
    if ns.json:
        json.dump(res.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    from rich.console import Console

    print_table(res.to_dict(), Console(highlight=False))
    return 0


def print_table(res: dict[str, Any], con: Any) -> None:
    """One row per start point (``StabilityResult.to_dict()``): the ends' and the path's worst
    error, the barriers, and whether it is stable (barrier under ``stable_below``); fits 80
    columns without cutting a word."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ticketlens.cli.tables import fitted
    from ticketlens.pruning.stability import StabilityResult

    t = Table(title=f"stability of round {res['round']} ({res['arm']}, "
              f"{res['sparsity']:.1%} sparse): two copies, {res['points']} points, "
              f"error = {escape(res['error'])}", box=box.SIMPLE_HEAD, show_edge=False,
              pad_edge=False, collapse_padding=True)
    result = StabilityResult.from_dict(res)
    rows = [[escape(c.start), str(c.start_step), f"{c.ends_error:.4f}", f"{c.worst_error:.4f}",
             f"{c.error_barrier:+.4f}", f"{c.loss_barrier:+.4f}", result.stable_text(c)]
            for c in result.curves]
    fitted(t, [("from", "left"), ("step", "right"), ("ends' error", "right"),
               ("worst on path", "right"), ("error barrier", "right"),
               ("loss barrier", "right"), (f"stable (< {res['stable_below']:.0%})", "right")],
           rows)
    con.print(t)
    con.print("error barrier: the worst error on the linear path between the two copies minus "
              "their mean error (Frankle et al. 2020); stable: a barrier under "
              f"{res['stable_below']:.0%}" + ("" if result.judged else "; n/a: the barrier is "
                                              "in nats of loss, where no such rule exists"))
    con.print("[bold]Findings[/bold]")
    for f in result.findings():
        con.print(f" - {escape(f)}")
