"""Rendering helpers for the terminal UI: text charts and colour scales (no analysis maths:
every value drawn comes from a run manifest or an analysis result)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"


def kept_style(kept: float, density: float = 0.5) -> str:
    """Background colour for a kept fraction: the scale spans 0 to twice the round's overall
    density, so at any sparsity the middle colour means 'as dense as the whole ticket'."""
    if kept != kept:  # NaN
        return "on grey23"
    level = max(0, min(5, int(kept / max(2 * density, 1e-9) * 6)))
    return ["on #3b0f70", "on #5a2d81", "on #8c2981", "on #de4968", "on #fe9f6d",
            "on #fcfdbf"][level] + (" black" if level >= 4 else " white")


def line_chart(series: list[tuple[str, list[tuple[float, float]], str]], width: int = 60,
               height: int = 12, y_label: str = "", x_label: str = "") -> Text:
    """A scatter chart in text: ``series`` of (name, [(x, y)], style). A series of several
    points is drawn with ●, a single point with ×, and the legend shows each drawn series with
    that marker in its style. A point that would land on another series' point moves a column
    sideways, so that no series hides another."""
    series = [(name, [p for p in s if p[1] is not None], style) for name, s, style in series]
    series = [x for x in series if x[1]]  # nothing drawn, nothing in the legend
    pts = [p for _, s, _ in series for p in s]
    if not pts:
        return Text("(no metrics in this run)")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.01, y1 + 0.01
    grid = [[(" ", "")] * width for _ in range(height)]
    owner: list[list[int | None]] = [[None] * width for _ in range(height)]
    for i, (_, s, style) in enumerate(series):
        for x, y in s:
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            col = _free_column(owner[row], round((x - x0) / (x1 - x0 or 1) * (width - 1)), i)
            owner[row][col] = i
            grid[row][col] = (_marker(s), style)
    out = Text(f"{y_label}\n" if y_label else "")
    for r, row in enumerate(grid):
        y = y1 - (y1 - y0) * r / (height - 1)
        out.append(f"{y:7.3f} │" if r in (0, height // 2, height - 1) else "        │")
        for ch, style in row:
            out.append(ch, style=style)
        out.append("\n")
    out.append("        └" + "─" * width + "\n")
    lo, hi = f"{x0:.0%}", f"{x1:.0%}"
    out.append(" " * 9 + lo + x_label.center(width - len(lo) - len(hi)) + hi + "\n")
    legend = Text("  ")
    for name, s, style in series:
        legend.append(f"{_marker(s)} ", style=style)
        legend.append(f"{name}   ")
    out.append(legend)
    return out


def _marker(points: list) -> str:
    return "●" if len(points) > 1 else "×"


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


def head_legend() -> Text:
    t = Text()
    for i, (glyph, style, meaning) in enumerate(HEAD_STATES.values()):
        t.append("\n" if i else "")
        t.append(f" {glyph} ", style=style or kept_style(1.0, 1.0))
        t.append(f" {meaning}")
    t.append("\nconstant and dead heads count as dead everywhere (compare, export)")
    return t


def sparkline(values: list[float | None]) -> Text:
    """Values in [0, peak] as one block character each (None: a blank)."""
    peak = max((v for v in values if v is not None), default=0.0) or 1.0
    return Text("".join(" " if v is None else BLOCKS[max(1, round(v / peak * 8))]
                        for v in values), style="cyan")
