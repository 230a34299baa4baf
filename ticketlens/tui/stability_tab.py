"""The stability curves and the circuit table of a run in ``ticketlens inspect`` (Rounds tab,
below the rounds): the error along the linear path between two copies from each start point
(``analysis/stability.json``) with the barriers, and the ablation table of ``circuit --save``
(``analysis/circuit.json``). They draw the stored results as computed; each is shown only when
the run has it. Names reach the widgets as rich Text, never as markup."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ticketlens.analysis.circuit import CircuitResult, read_circuit
from ticketlens.pruning.stability import StabilityResult, read_stability
from ticketlens.tui.widgets import line_chart

STYLES = ("cyan", "magenta", "yellow", "green", "red", "blue")


def stability_chart(res: StabilityResult, width: int = 56, height: int = 10) -> Text:
    """Error vs interpolation coefficient, one series per start point (an error rate: the
    axis stays within 0 and 1)."""
    series = [(f"from {c.start} (barrier {c.error_barrier:+.3f})",
               list(zip(c.alphas, c.error, strict=True)), STYLES[i % len(STYLES)])
              for i, c in enumerate(res.curves)]
    title = Text(f"stability of round {res.round} ({res.arm}, {res.sparsity:.1%} sparse): "
                 f"error ({res.error}) along the path from copy A (0) to copy B (1)\n")
    return title.append_text(line_chart(series, width=width, height=height, y_label="error",
                                        x_label="α", y_range=(0.0, 1.0)))


class StabilityChart(Static):
    """A stability chart that redraws at the size it is given (it grows with the terminal)."""

    def __init__(self, result: StabilityResult, round_index: int, size: tuple[int, int]):
        super().__init__(stability_chart(result, *size), id=f"stability-chart-{round_index}",
                         classes="chart")
        self.result = result

    def redraw(self, size: tuple[int, int]) -> None:
        self.update(stability_chart(self.result, *size))


class StabilityTable(DataTable):
    """One row per start point: step, ends' error, worst on the path, barriers, stable."""

    def __init__(self, result: StabilityResult, round_index: int):
        super().__init__(id=f"stability-{round_index}", cursor_type="row")
        self.result = result

    def on_mount(self) -> None:
        res = self.result
        self.add_columns("from", "step", "ends' error", "worst", "error barrier",
                         "loss barrier", f"stable (< {res.stable_below:.0%})")
        for c in res.curves:
            self.add_row(Text(c.start), str(c.start_step), f"{c.ends_error:.4f}",
                         f"{c.worst_error:.4f}", f"{c.error_barrier:+.4f}",
                         f"{c.loss_barrier:+.4f}", res.stable_text(c))


def _num(v: float | None, spec: str) -> str:
    return "–" if v is None or v != v else format(v, spec)


class CircuitTable(DataTable):
    """One row per selection: heads and neurons off, metric (± sd), faithfulness, normalised."""

    def __init__(self, result: CircuitResult):
        super().__init__(id="circuit", cursor_type="row")
        self.result = result

    def on_mount(self) -> None:
        res = self.result
        self.add_columns("units kept by", "heads off", "neurons off", Text(res.metric),
                         "faithfulness", "normalised")
        for r in res.rows:
            sd = f" ± {r.metric_sd:.4f}" if r.metric_sd is not None else ""
            self.add_row(Text(r.label + (f" ({r.draws} draws)" if r.draws > 1 else "")),
                         str(r.heads_removed), str(r.neurons_removed), f"{r.metric:.4f}{sd}",
                         _num(r.faithfulness, ".3f"), _num(r.normalised, ".3f"))


def _findings(findings: tuple[str, ...]) -> Text:
    """The findings, one bullet each (the analyses' own sentences)."""
    t = Text("Findings\n", style="bold")
    for f in findings:
        t.append(f" - {f}\n", style="")
    return t


def stability_panel(run: Any, size: tuple[int, int] = (56, 10)) -> list[Widget]:
    """The widgets to add under the rounds table: none when neither analysis was stored.
    ``size``: the charts' plot columns and rows."""
    out: list[Widget] = []
    for r, res in read_stability(run).items():
        out += [Static(_findings(res.findings()), id=f"stability-findings-{r}",
                       classes="findings"), StabilityChart(res, r, size),
                StabilityTable(res, r)]
    circ = read_circuit(run)
    if circ is not None:
        out.append(Static(Text(f"round {circ.round} as a circuit of the dense model "
                               f"({circ.ablation} ablation; a constant prediction scores "
                               f"{circ.chance:.4f})"), id="circuit-title"))
        out.append(Static(_findings(circ.findings()), id="circuit-findings",
                          classes="findings"))
        out.append(CircuitTable(circ))
        lines = Text()
        for a in circ.agreement:
            lines.append(f"{a.kind}s kept vs top by {a.scorer}: {a.shared} shared of "
                         f"{a.kept} (chance {_num(a.expected, '.1f')}, p "
                         f"{_num(a.p_value, '.2g')}); Spearman {_num(a.spearman, '+.3f')}\n")
        out.append(Static(lines, id="circuit-agreement"))
    return out
