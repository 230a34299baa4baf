"""Rendering helpers for the terminal UI: text charts and colour scales (no analysis maths:
every value drawn comes from a run manifest or an analysis result)."""

from __future__ import annotations

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
    """A scatter/line chart in text: ``series`` of (name, [(x, y)], style)."""
    pts = [p for _, s, _ in series for p in s if p[1] is not None]
    if not pts:
        return Text("(no metrics in this run)")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.01, y1 + 0.01
    grid = [[(" ", "")] * width for _ in range(height)]
    for _, s, style in series:
        marker = "●" if len(s) > 1 else "×"
        for x, y in s:
            if y is None:
                continue
            col = round((x - x0) / (x1 - x0 or 1) * (width - 1))
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            grid[row][col] = (marker, style)
    out = Text()
    for r, row in enumerate(grid):
        y = y1 - (y1 - y0) * r / (height - 1)
        out.append(f"{y:7.3f} │" if r in (0, height // 2, height - 1) else "        │")
        for ch, style in row:
            out.append(ch, style=style)
        out.append("\n")
    out.append("        └" + "─" * width + "\n")
    out.append(f"         {x0:<.0%}".ljust(width // 2 + 9) + f"{x1:>.0%}".rjust(width // 2)
               + f"  {x_label}\n")
    legend = Text("  ")
    for name, _, style in series:
        legend.append("● ", style=style)
        legend.append(f"{name}   ")
    out.append(legend)
    return out


def histogram_bar(counts: list[int]) -> Text:
    peak = max(counts) or 1
    t = Text()
    for c in counts:
        t.append(BLOCKS[round(c / peak * (len(BLOCKS) - 1))] * 2, style="green")
    return t
