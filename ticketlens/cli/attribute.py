"""``ticketlens attribute RUN``: what the dense model and the ticket attend to (captum)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run made by `ticketlens find` (it needs the weights)")
    p.add_argument("--text", action="append", default=[], help="a text to attribute "
                   "(repeatable; default: the first --n dev examples)")
    p.add_argument("--pair", action="append", default=None,
                   help="the second text of a sentence pair, one per --text")
    p.add_argument("--n", type=int, default=8, help="dev examples when no --text (default 8)")
    p.add_argument("--units", action="store_true",
                   help="also head and FFN-neuron importance vs survival")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps")
    p.add_argument("--save", action="store_true", help="store the results in the run "
                   "(analysis/attribution.json), for `ticketlens report`")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.analysis.attribution import attribute_run
    from ticketlens.core.errors import ConfigError
    from ticketlens.core.run import open_run

    if ns.pair is not None and len(ns.pair) != len(ns.text):
        raise ConfigError("give one --pair per --text")
    if ns.n < 1 or ns.steps < 2:
        raise ConfigError("--n must be >= 1 and --steps >= 2")
    r = open_run(ns.run)
    res = attribute_run(r, texts=ns.text, pairs=ns.pair, n=ns.n, units=ns.units,
                        n_steps=ns.steps)
    data = res.to_dict()
    if ns.save:
        from ticketlens.core.run import RunWriter

        RunWriter(r.path).attribution(data)
    if ns.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    _print(res)
    return 0


def _shade(tokens, scores) -> str:
    from rich.markup import escape

    peak = max((abs(s) for s in scores), default=0.0) or 1.0
    out = []
    for t, s in zip(tokens, scores, strict=True):
        a = min(1.0, abs(s) / peak)
        base = (40, 160, 60) if s >= 0 else (200, 50, 50)
        rgb = tuple(int(255 - (255 - c) * a) for c in base)
        fg = "white" if a > 0.6 else "black"
        out.append(f"[{fg} on rgb({rgb[0]},{rgb[1]},{rgb[2]})]{escape(t)}[/]")
    return " ".join(out)


def _print(res) -> None:
    from rich.console import Console

    con = Console(highlight=False)
    con.print("[bold]Token attribution[/bold] (integrated gradients on the input embeddings; "
              "green supports the target, red opposes it)")
    for i, item in enumerate(res.items):
        con.print(f"\n[bold]#{i}[/bold] target {item.target_text}   Spearman "
                  f"{item.spearman:.2f}   top-{res.k} agreement {item.topk_agreement:.2f}   "
                  f"IG delta {item.dense_delta:+.3f} / {item.ticket_delta:+.3f}")
        con.print(" dense  " + _shade(item.tokens, item.dense))
        con.print(" ticket " + _shade(item.tokens, item.ticket))
        if item.evidence_share_dense is not None:
            con.print(f"        share on the deciding tokens: dense "
                      f"{item.evidence_share_dense:.0%}, ticket {item.evidence_share_ticket:.0%}"
                      f" (chance {item.evidence_chance:.0%})")
    con.print(f"\nmean Spearman {res.mean_spearman:.3f}; mean top-{res.k} agreement "
              f"{res.mean_topk_agreement:.3f}")
    gt = res.evidence_means()
    if gt:
        con.print(f"ground truth: {gt['dense']:.1%} of the dense model's attribution and "
                  f"{gt['ticket']:.1%} of the ticket's fall on the deciding tokens "
                  f"(chance {gt['chance']:.1%}, {gt['n']} texts)")
    for u in res.units:
        con.print(f"{u.kind}s: units alive in the ticket hold {u.share_surviving:.1%} of the "
                  f"dense model's importance ({u.share_chance:.1%} of the units are alive); "
                  f"Spearman(importance, kept fraction) {u.spearman_importance_kept:+.2f}")
