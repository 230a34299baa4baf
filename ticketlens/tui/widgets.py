"""Rendering helpers for the terminal UI: text charts and colour scales (no analysis maths:
every value drawn comes from a run manifest or an analysis result)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"


KEPT_COLOURS = ("#3b0f70", "#5a2d81", "#8c2981", "#de4968", "#fe9f6d", "#fcfdbf")  # magma


def kept_style(kept: float, density: float = 0.5) -> str:
    """Background colour for a kept fraction: the scale spans 0 to twice the round's overall
    density, so at any sparsity the middle colour means 'as dense as the whole ticket'."""
    if kept != kept:  # NaN
        return "on grey23"
    level = max(0, min(5, int(kept / max(2 * density, 1e-9) * 6)))
    return f"on {KEPT_COLOURS[level]}" + (" black" if level >= 4 else " white")


def kept_scale(density: float, glyph: str = " ") -> Text:
    """The colour scale of :func:`kept_style` at this density: one swatch per colour with the
    kept fractions it stands for ("0–7%", ...), the same style as the cells it explains."""
    step = 2 * density / 6
    t = Text("kept fraction: ")
    for level in range(6):
        lo = level * step
        t.append(f"{glyph}", style=kept_style(lo + step / 2, density))
        label = f"≥{lo:.0%}" if level == 5 else f"{lo:.0%}–{lo + step:.0%}"
        t.append(f" {label}" + ("  " if level < 5 else ""))
    return t


# Each series of a chart its own glyph (and colour): told apart without colour too.
GLYPHS = ("●", "◆", "×", "+", "■", "▼", "◇", "*")

# The range of the metrics that have one: a chart's y axis never goes past it.
METRIC_RANGE = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "mcc": (-1.0, 1.0),
                "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}


def line_chart(series: list[tuple[str, list[tuple[float, float]], str]], width: int = 60,
               height: int = 12, y_label: str = "", x_label: str = "",
               y_range: tuple[float, float] | None = None) -> Text:
    """A scatter chart in text: ``series`` of (name, [(x, y)], style). Series ``i`` is drawn
    with glyph ``GLYPHS[i]`` in its style, and the legend shows each drawn series with that
    glyph in that style. A point that would land on another series' point moves a column
    sideways, so that no series hides another. ``y_range``: the metric's bounds; the axis
    pads a flat series but never past them (all at 1.0: the axis ends at 1.000)."""
    series = [(name, [p for p in s if p[1] is not None], style) for name, s, style in series]
    drawn = [(GLYPHS[i % len(GLYPHS)], x) for i, x in enumerate(series) if x[1]]
    pts = [p for _, (_, s, _) in drawn for p in s]
    if not pts:
        return Text("(no metrics in this run)")
    width, height = max(20, width), max(5, height)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.01, y1 + 0.01
    if y_range is not None:
        y0, y1 = max(y0, y_range[0]), min(y1, y_range[1])
        if y1 - y0 < 1e-9:  # every point at a bound: pad inwards
            y0, y1 = (y1 - 0.02, y1) if y1 >= y_range[1] else (y0, y0 + 0.02)
    grid = [[(" ", "")] * width for _ in range(height)]
    owner: list[list[int | None]] = [[None] * width for _ in range(height)]
    for i, (glyph, (_, s, style)) in enumerate(drawn):
        for x, y in s:
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            col = _free_column(owner[row], round((x - x0) / (x1 - x0 or 1) * (width - 1)), i)
            owner[row][col] = i
            grid[row][col] = (glyph, style)
    out = Text(f"{y_label}\n" if y_label else "")
    ticks = {0, height // 2, height - 1} | ({height // 4, 3 * height // 4} if height >= 16
                                            else set())
    for r, row in enumerate(grid):
        y = y1 - (y1 - y0) * r / (height - 1)
        out.append(f"{y:7.3f} ┤" if r in ticks else "        │")
        for ch, style in row:
            out.append(ch, style=style)
        out.append("\n")
    out.append("        └" + "─" * width + "\n")
    lo, hi = f"{x0:.0%}", f"{x1:.0%}"
    out.append(" " * 9 + lo + x_label.center(width - len(lo) - len(hi)) + hi + "\n")
    legend = Text("  ")
    for glyph, (name, _, style) in drawn:
        legend.append(f"{glyph} ", style=style)
        legend.append(f"{name}   ")
    out.append(legend)
    return out


def _free_column(owners: list[int | None], col: int, series: int) -> int:
    """``col`` if free (or the series' own), else the nearest free column within two."""
    if owners[col] in (None, series):
        return col
    for c in (col - 1, col + 1, col - 2, col + 2):
        if 0 <= c < len(owners) and owners[c] is None:
            return c
    return col


def histogram_bar(counts: list[int]) -> Text:
    peak = max(counts) or 1
    t = Text()
    for c in counts:
        t.append(BLOCKS[round(c / peak * (len(BLOCKS) - 1))] * 2, style="green")
    return t


def fmt_value(v: Any) -> str:
    """A metric or seed in a table cell: 4 decimals, or "–" when absent."""
    return f"{v:.4f}" if isinstance(v, float) else ("–" if v is None else str(v))


# A head's state (core.structure): glyph, cell style (None: the kept-fraction scale), meaning.
HEAD_STATES = {
    "alive": ("●", None, "alive: no slice fully pruned (colour: kept fraction)"),
    "blind": ("◐", "bold black on #e6c229", "blind: Q or K pruned, still adds a mix of V"),
    "constant": ("○", "bold white on #5c5c5c", "constant: V pruned, adds a fixed vector"),
    "dead": ("×", "bold white on #b71c1c", "dead: O pruned, adds nothing"),
}


def head_cell(state: str, kept: float, density: float) -> Text:
    """A head-grid cell: the state's glyph and the kept fraction, on the state's colour (an
    alive head on the kept-fraction scale of :func:`kept_style`)."""
    glyph, style, _ = HEAD_STATES[state]
    return Text(f"{glyph}{kept:5.0%}", style=style or kept_style(kept, density))


def head_legend(density: float) -> Text:
    """The head grid's legend: each state's glyph on the colour the grid draws it with (an
    alive head on the kept-fraction scale, shown with its ranges at this round's density)."""
    t = Text()
    for i, (glyph, style, meaning) in enumerate(HEAD_STATES.values()):
        t.append("\n" if i else "")
        if style is None:  # alive: the scale's colours, as in the grid
            t.append_text(kept_scale(density, glyph))
            t.append(f"\n   {meaning}")
            continue
        t.append(f" {glyph} ", style=style)
        t.append(f" {meaning}")
    t.append("\nconstant and dead heads count as removed everywhere (compare, export)")
    return t


def unit_counts(counts: Mapping[str, int]) -> str:
    """Units by state as every view says them: "255 alive, 1 constant" (each unit counted
    once, in the order of ``counts``; states with none left out, but alive)."""
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n or state == "alive")


def sparkline(values: list[float | None]) -> Text:
    """Values in [0, peak] as one block character each (None: a blank)."""
    peak = max((v for v in values if v is not None), default=0.0) or 1.0
    return Text("".join(" " if v is None else BLOCKS[max(1, round(v / peak * 8))]
                        for v in values), style="cyan")
