"""``ticketlens compress RUN``: dense vs ticket, quantized and distilled, in metric and bytes."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a complete run made by `ticketlens find` (without --distill)")
    p.add_argument("--distilled", metavar="RUN2", help="the same `find` run with --distill: "
                   "fills the distill cells (its ticket; born-again dense is trained here)")
    p.add_argument("--schemes", default="dynamic-int8,int8,int4",
                   help="quantizations, comma-separated: dynamic-int8 (torch, every "
                   "nn.Linear), int8 (weight-only, per output channel), int4 (weight-only, "
                   "per group) (default: %(default)s)")
    p.add_argument("--group", type=int, default=64, help="int4 group size: 32, 64 or 128 "
                   "(default: %(default)s)")
    p.add_argument("--cell-scheme", default="auto", help="the quantization of the table's "
                   "quantize cells (default: int8 when measured, else the first of --schemes)")
    p.add_argument("--no-fp16", action="store_true", help="skip the ticket with float16 "
                   "kept weights")
    p.add_argument("--embeddings", default="int8,int4", help="also quantize the embedding "
                   "matrices (word, position, token type; a tied LM head stays tied), each "
                   "scheme beside the weights of the same scheme; '' = none (default: "
                   "%(default)s)")
    p.add_argument("--emb-group", type=int, default=0, help="embedding scales: 0 = one per "
                   "row, else per group of 32/64/128 (default: %(default)s)")
    p.add_argument("--no-vocab", action="store_true", help="skip vocabulary trimming (the "
                   "word embedding cut to the task's train + dev tokens and the special "
                   "tokens)")
    p.add_argument("--no-sliced", action="store_true", help="skip the sliced ticket (whole "
                   "dead heads and FFN neurons removed, as `export` writes it; measured "
                   "only when the ticket has some)")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency runs")
    p.add_argument("--keep", metavar="DIR", default="", help="keep the variant files in DIR "
                   "(default: measured in a temporary folder, then deleted)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.compress.config import CompressConfig
    from ticketlens.compress.engine import compress
    from ticketlens.pruning.progress import Reporter, RichReporter

    cfg = CompressConfig(
        schemes=tuple(s.strip() for s in ns.schemes.split(",") if s.strip()), group=ns.group,
        cell_scheme=ns.cell_scheme, fp16=not ns.no_fp16, latency=not ns.no_latency,
        keep_dir=ns.keep,
        embeddings=tuple(s.strip() for s in ns.embeddings.split(",") if s.strip()),
        emb_group=ns.emb_group, vocab=not ns.no_vocab, sliced=not ns.no_sliced)
    reporter = Reporter() if (ns.quiet or ns.json) else RichReporter()
    result = compress(ns.run, cfg, distilled=ns.distilled, reporter=reporter)
    if ns.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    print_table(result)
    return 0


def _spaced(name: str) -> str:
    return name.replace("+", " + ")


def print_table(result, console=None) -> None:
    """The 8 cells (and the latency runs) as rich tables; ``info`` shows the same."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = console or Console(highlight=False)
    t = Table(title=f"compression ({result.metric}; quantize = {result.cell_scheme})")
    for col in ("cell", "variant", result.metric, "MB", "× smaller", "matrices ×", "Pareto"):
        t.add_column(escape(col), justify="left" if col in ("cell", "variant") else "right")
    for c in result.cells:  # "prune + quantize": a narrow column wraps at the +, not inside
        if c.variant is None:
            t.add_row(escape(_spaced(c.name)), "not measured", "–", "–", "–", "–", "")
            continue
        t.add_row(escape(_spaced(c.name)), escape(_spaced(c.variant)), f"{c.metric:.4f}",
                  f"{c.bytes / 1e6:.3f}", f"{c.ratio:.2f}",
                  f"{c.prunable_ratio:.2f}" if c.prunable_ratio else "–",
                  "✓" if c.pareto else "")
    con.print(t)
    con.print("[dim]× smaller: the dense fp32 file's bytes over these; matrices ×: the same "
              "over the prunable weight matrices alone (mask bits, values, scales); ✓ Pareto: "
              "no other cell is as small and at least as good[/dim]")
    if any(c.variant is None for c in result.cells):
        con.print("distill cells: not measured (compress RUN --distilled RUN2, RUN2 the same "
                  "find with --distill)")
    cells = {c.variant for c in result.cells}
    others = [v for v in result.variants if v.name not in cells]
    if others:
        t = Table(title="every other variant (+emb: embeddings quantized too; +vocab: "
                  "vocabulary trimmed to the task's tokens)")
        for col in ("variant", result.metric, f"Δ {result.metric}", "MB", "× smaller",
                    "Pareto"):
            t.add_column(escape(col), justify="left" if col == "variant" else "right")
        dense = result.variants[0].metrics[result.metric]
        for v in others:
            m = v.metrics[result.metric]
            t.add_row(escape(_spaced(v.name)), f"{m:.4f}", f"{m - dense:+.4f}",
                      f"{v.bytes / 1e6:.3f}", f"{v.ratio:.2f}", "✓" if v.pareto else "")
        con.print(t)
        con.print("[dim]Δ: against dense float32; ✓ Pareto over every variant[/dim]")
    if result.latency:
        _print_latency(result, con)


def _print_latency(result, con) -> None:
    """The latency rows: how each variant runs, its ms and its speedup over dense fp32 (a
    dash in tables written before compress recorded them)."""
    from rich.markup import escape
    from rich.table import Table

    x0 = result.latency[0]
    lat = Table(title=f"CPU latency (median ms per forward pass, {x0.tokens} tokens, "
                f"{x0.threads} thread{'s' if x0.threads != 1 else ''})")
    for col in ("variant", "runs as", "batch", "ms", "× vs dense fp32"):
        lat.add_column(col, justify="left" if col in ("variant", "runs as") else "right")
    for x in result.latency:
        lat.add_row(escape(_spaced(x.variant)), escape(x.runs_as or "–"), str(x.batch),
                    f"{x.ms:.2f}", "–" if x.speedup is None else f"{x.speedup:.2f}")
    con.print(lat)
    con.print("[dim]measured: dense fp32, dense dynamic int8, every Pareto-optimal variant "
              "and the sliced ticket with dynamic int8, in one process; weight-only "
              "fp16/int8/int4 files are dequantized to float32 when loaded, so they run at "
              "the speed of their float32 shape (dense, or sliced); dynamic int8 runs torch's "
              "int8 kernels[/dim]")
