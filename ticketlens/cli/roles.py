"""``ticketlens roles RUN``: what each head attends to, its pattern type, and which roles the
ticket keeps against chance (over seeds when RUN is a folder of runs, e.g. a sweep)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run made by `ticketlens find` (it needs the weights), or a "
                   "folder of runs (a sweep): roles of each, survival by role over them")
    p.add_argument("--round", type=int, default=None,
                   help="the round whose mask is tested (default: the ticket)")
    p.add_argument("--examples", type=int, default=256,
                   help="dev inputs the attention is measured on (default 256)")
    p.add_argument("--seed", type=int, default=0,
                   help="draws the dev inputs and the induction probe's tokens (default 0)")
    p.add_argument("--save", action="store_true", help="store each run's result in the run "
                   "(analysis/roles.json), for `ticketlens report` and `inspect`")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.analysis.head_roles import head_roles
    from ticketlens.analysis.roles import RolesError, roles_by_group
    from ticketlens.core.run import RunWriter, find_runs

    if ns.examples < 1:
        raise RolesError(f"--examples must be at least 1, got {ns.examples}")
    paths = find_runs(ns.run)
    results = [head_roles(p, round=ns.round, examples=ns.examples, seed=ns.seed)
               for p in paths]
    if ns.save:
        for p, res in zip(paths, results, strict=True):
            RunWriter(p).roles(res.to_dict())
    groups = roles_by_group(results)  # seeds of one task and model, pooled
    if ns.json:
        if len(results) == 1:
            data = results[0].to_dict()
        elif len(groups) == 1 and len(groups[0][2].results) == len(results):
            data = groups[0][2].to_dict()  # one task and model: the summary, runs inside
        else:
            data = {"groups": [{"task": t, "model": m, **g.to_dict()} for t, m, g in groups],
                    "runs": [r.to_dict() for r in results]}
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    for res in results:
        _print_run(res)
    for task, model, summary in groups:
        _print_summary(summary, f"{task}, {model}" if len(groups) > 1 else "")
    return 0


def _print_run(res) -> None:
    from rich.table import Table

    from ticketlens.analysis.roles import PATTERNS
    from ticketlens.cli.tables import fitted
    from ticketlens.report.fmt import pct

    con = _console()
    con.print(f"\n[bold]{res.run}[/bold]  round {res.round} (sparsity {res.sparsity:.1%}), "
              f"{res.model_type}, {res.examples} dev inputs (seed {res.seed})")
    t = Table(title="Heads of the dense model: mean attention per query token to the first "
              "token, [SEP], punctuation, itself, the previous and next token; entropy / log "
              "n; pattern (Kovaleva); in the ticket: alive or dead, weights kept, pattern",
              title_justify="left", **_look())
    # a causal model's "next" is 0 by construction: its column gives way to the probe's two
    targets = ("first", "sep", "punct", "same", "prev") + (() if res.causal else ("next",))
    cols = ["head", *targets, "H/log n", "pattern"]
    if res.causal:
        cols += ["induct", "prev-tok"]
    cols += ["roles", "ticket"]
    rows = []
    for h in res.dense:
        cells = [h.unit, *(_num(getattr(h, k)) for k in (*targets, "entropy_norm")),
                 SHORT.get(h.pattern, h.pattern)]
        if res.causal:
            cells += [_num(h.induction), _num(h.previous_token)]
        alive = bool(res.alive[h.layer, h.head])
        kept = res.kept[h.layer, h.head]
        state = ("alive" if alive else "dead") + (f" {kept:.0%}" if kept == kept else "")
        if res.ticket is not None and alive:
            p = res.ticket[res.dense.index(h)].pattern
            state += f" {SHORT.get(p, p)}"
        cells += [" ".join(SHORT.get(r, r) for r in h.roles if r not in PATTERNS) or "-",
                  state]
        rows.append(cells)
    fitted(t, [(c, "left" if c in ("head", "pattern", "roles", "ticket") else "right")
               for c in cols], rows)
    con.print(t)
    s = Table(title="Survival by role (dense roles; kept = alive in the ticket; expected by "
              "chance: hypergeometric; p: Fisher's exact; kept weights: role heads vs others, "
              "permutation test over heads, Holm)", title_justify="left", **_look())
    fitted(s, [(c, "left" if c == "role" else "right") for c in (
        "role", "heads", "kept", "expected", "p", "Holm", "weights", "others", "p (perm.)",
        "Holm (perm.)")],
        [[r.role, str(r.heads), f"{r.kept} of {r.total_kept}", f"{r.expected:.1f}",
          _p(r.p_value), _p(r.p_adjusted), pct(r.kept_fraction, missing="-"),
          pct(r.kept_fraction_others, missing="-"), _p(r.p_kept_fraction),
          _p(r.p_kept_fraction_adjusted)]
         for r in res.survival])
    con.print(s)
    if res.causal and res.induction_baseline is not None:
        con.print(f"uniform causal attention scores {res.induction_baseline:.3f} (induction) "
                  f"and {res.previous_token_baseline:.3f} (previous token)")
    for note in res.notes:
        con.print(f"[dim]note: {note}[/dim]")
    con.print("[bold]Findings[/bold]")
    for f in res.findings():
        con.print(f" - {f}")


def _print_summary(summary, label: str = "") -> None:
    from rich.table import Table

    from ticketlens.cli.tables import fitted
    from ticketlens.report.fmt import pct

    con = _console()
    t = Table(title=f"Survival by role over {len(summary.results)} runs"
              f"{' of ' + label if label else ''} (kept: surviving role "
              "heads summed over runs; p: pooled exact test of the runs' hypergeometrics; "
              f"share kept per run vs all heads, difference with its {summary.confidence:.0%} "
              "CI, cut to ±100%)", title_justify="left", **_look())
    fitted(t, [(c, "left" if c == "role" else "right") for c in (
        "role", "runs", "kept", "expected", "p", "Holm", "share", "chance", "difference (CI)")],
        [[r.role, str(r.runs), f"{r.kept} of {r.heads}", f"{r.expected:.1f}", _p(r.p_value),
          _p(r.p_adjusted), pct(r.rate.mean, missing="-"), pct(r.chance.mean, missing="-"),
          f"{r.difference.mean:+.1%}" + (
              (" (n/a: same every run)" if r.runs > 1 else "")
              if r.difference.low != r.difference.low else
              f" ({r.difference.low:+.1%} to {r.difference.high:+.1%})")]
         for r in summary.roles])
    con.print(t)
    con.print("[bold]Findings over seeds[/bold]")
    for f in summary.findings():
        con.print(f" - {f}")


def _look() -> dict:
    from rich import box

    return dict(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def _console():
    from rich.console import Console

    con = Console(highlight=False)
    if not con.is_terminal:  # piped: the tables at their natural width
        con = Console(highlight=False, width=120)
    return con


SHORT = {"vertical": "vert", "diagonal": "diag", "vertical+diagonal": "v+d",
         "heterogeneous": "het", "induction": "induct", "previous_token": "prev-tok"}


def _num(v) -> str:
    return "-" if v is None or v != v else f"{v:.2f}"


def _p(v) -> str:
    if v is None or v != v:
        return "-"
    return "<0.001" if v < 0.001 else f"{v:.3g}"
