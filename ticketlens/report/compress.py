"""The report's compression part: metric vs bytes of the 8 cells (Pareto front marked) and the
table, from a run's ``compress.json`` (:class:`~ticketlens.compress.result.CompressResult`).
No maths here: the bytes, ratios and Pareto flags were computed (and tested) by
``ticketlens.compress``."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from ticketlens.compress.result import CompressResult, read_compress
from ticketlens.report import fmt
from ticketlens.report.draw import Drawn, draws
from ticketlens.report.figures import _finish, esc

__all__ = ["compress_drawn", "compress_html", "compress_table", "latency_table"]


@draws(CompressResult, "compress")
def compress_drawn(res: CompressResult) -> Drawn:
    """Metric (y) vs megabytes on disk (x, log) of every measured cell; the Pareto front is
    the line through the Pareto-optimal cells, which are drawn filled."""
    cells = [c for c in res.cells if c.variant is not None]
    fig = go.Figure()
    front = sorted((c for c in cells if c.pareto), key=lambda c: c.bytes or 0)
    fig.add_trace(go.Scatter(
        x=fmt.sig([c.bytes / 1e6 for c in front]), y=fmt.sig([c.metric for c in front]),
        mode="lines", line=dict(color="#2ca02c", dash="dot"), name="Pareto front",
        hoverinfo="skip"))
    for pareto in (True, False):
        sel = [c for c in cells if c.pareto == pareto]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=fmt.sig([c.bytes / 1e6 for c in sel]), y=fmt.sig([c.metric for c in sel]),
            mode="markers+text", text=[esc(c.name) for c in sel], textposition="top center",
            marker=dict(size=11, symbol="circle" if pareto else "circle-open",
                        color="#2ca02c" if pareto else "#1f77b4"),
            name="Pareto-optimal" if pareto else "dominated",
            customdata=[[esc(c.variant), fmt.num(c.ratio, ".2f")] for c in sel],
            hovertemplate="%{text} (%{customdata[0]})<br>%{x} MB, %{customdata[1]}× smaller"
                          "<br>" + esc(res.metric) + " %{y}<extra></extra>"))
    _finish(fig, f"{esc(res.metric)} vs size on disk (Pareto front marked)", 420,
            xaxis=dict(title="size on disk (MB, log scale)", type="log"),
            yaxis=dict(title=esc(res.metric)))
    caption = ("<b>What each compression costs.</b> Each point is one way of storing the "
               "model (dense or ticket, quantized or not, distilled or not: the cell's name "
               "beside it): x its file size in megabytes on a log scale, y its "
               f"{esc(res.metric)} on the dev set. Filled points are Pareto-optimal (no other "
               "cell is both smaller and better), joined by the dotted front; open points are "
               "dominated.")
    return Drawn(fig, caption)


def compress_table(res: CompressResult) -> str:
    """The 8 cells as an HTML table (a dash where a cell was not measured)."""
    e = lambda x: html.escape(fmt.text(x), quote=True)  # noqa: E731
    rows = []
    for c in res.cells:
        if c.variant is None:
            rows.append(f"<tr><td>{e(c.name)}</td><td colspan='5'>not measured "
                        "(compress --distilled RUN2)</td></tr>")
            continue
        rows.append(f"<tr><td>{e(c.name)}</td><td>{e(c.variant)}</td>"
                    f"<td>{fmt.num(c.metric, '.4f')}</td><td>{fmt.num(c.bytes / 1e6, '.3f')}"
                    f"</td><td>{fmt.num(c.ratio, '.2f')}</td><td>{'✓' if c.pareto else ''}"
                    "</td></tr>")
    head = (f"<tr><th>cell</th><th>variant</th><th>{e(res.metric)}</th><th>MB</th>"
            "<th>× smaller</th><th>Pareto</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def latency_table(res: CompressResult) -> str:
    """The latency rows as an HTML table (empty without them; a dash for the speedup and
    how it runs in tables written before compress recorded them)."""
    if not res.latency:
        return ""
    e = lambda x: html.escape(fmt.text(x), quote=True)  # noqa: E731
    rows = "".join(
        f"<tr><td>{e(x.variant)}</td><td>{e(x.runs_as or '–')}</td><td>{x.batch}</td>"
        f"<td>{fmt.num(x.ms, '.2f')}</td><td>{fmt.num(x.speedup, '.2f')}</td></tr>"
        for x in res.latency)
    x0 = res.latency[0]
    head = ("<tr><th>variant</th><th>runs as</th><th>batch</th><th>ms</th>"
            "<th>× vs dense fp32</th></tr>")
    return (f"<p>CPU latency: median ms of one forward pass, {x0.tokens} tokens, "
            f"{x0.threads} thread(s). Weight-only int8/int4/fp16 files are dequantized to "
            "float32 when loaded and run at the speed of their float32 shape; sliced "
            "variants are physically smaller; dynamic int8 runs torch's int8 kernels.</p>"
            f"<table>{head}{rows}</table>")


def compress_html(run: Any, doc: Any, i: int) -> None:
    """Add a run's compression figure and table to the report (nothing without
    ``compress.json``)."""
    res = read_compress(run.path)
    if res is None:
        return
    doc.add(f"<h4>Compression (quantize = {html.escape(res.cell_scheme)})</h4>")
    doc.fig(compress_drawn(res), f"compress-{i}")
    doc.add(compress_table(res) + latency_table(res))  # the latter empty without rows
