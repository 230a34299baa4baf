"""A sweep in ``ticketlens inspect``: the statistics over seeds (``analysis.sweep_stats``,
computed in a worker) with each group's verdict, and the sweep's runs ordered by task then
seed; Enter on a run opens its RunScreen, Enter on a group moves to its first run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ticketlens.tui import record
from ticketlens.tui.run_screen import RunScreen
from ticketlens.tui.widgets import fmt_value

VERDICT_STYLE = {"winning": "bold green", "inconclusive": "yellow", "not winning": "red"}


def _v(x: Any) -> str:
    return "–" if isinstance(x, float) and x != x else fmt_value(x)  # NaN: none


def _est(e: Any) -> str:
    return _v(e.mean) + ("" if e.n < 2 else f" ± {_v(e.half_width)}")


class SweepScreen(Screen):
    DEFAULT_CSS = """
    #sweep-title { padding: 0 1; background: $boost; height: auto; }
    #sweep-stats { height: auto; max-height: 50%; }
    #sweep-cross { padding: 0 1; height: auto; color: $text-muted; }
    #sweep-runs { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "All runs"),
                Binding("q", "app.quit", "Quit"), Binding("question_mark", "app.help", "Help")]

    def __init__(self, path: str | Path, runs: list[Any]):
        super().__init__()
        self.path = Path(path)
        self.runs = sorted(runs, key=lambda r: (r.task, r.model_name, str(r.path),
                                                r.seed is None, r.seed))
        self.stats: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(f"sweep {self.path}: statistics over seeds…"), id="sweep-title")
        yield DataTable(id="sweep-stats", cursor_type="row", zebra_stripes=True)
        yield Static(id="sweep-cross")
        yield DataTable(id="sweep-runs", cursor_type="row", zebra_stripes=True,
                        fixed_columns=1)  # the run's name stays in view
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"sweep of {len(self.runs)} runs"
        t = self.query_one("#sweep-runs", DataTable)
        t.add_columns("run", "task", "seed", "verdict", "sparsity", "dense", "ticket", "model")
        for i, r in enumerate(self.runs):
            v = record.verdict(r)
            done = r.complete and r.rounds
            t.add_row(Text(str(r.path.relative_to(self.path)) if r.path.is_relative_to(
                self.path) else r.path.name), Text(r.task), Text(fmt_value(r.seed)),
                Text(v.state, style=VERDICT_STYLE.get(v.state, "")) if v else Text("–"),
                f"{r.ticket.sparsity:.1%}" if done else "–",
                fmt_value(r.rounds[0].metrics.get(r.metric)) if done else "–",
                fmt_value(r.ticket.metrics.get(r.metric)) if done else "–",
                Text(r.model_name), key=str(i))
        self._compute()

    @work(thread=True, exclusive=True)
    def _compute(self) -> None:
        from ticketlens.analysis.sweep import sweep_stats
        from ticketlens.core.errors import TicketlensError

        try:
            stats = sweep_stats(self.runs)
        except TicketlensError as exc:  # its message is the one line to show
            self.app.call_from_thread(self.query_one("#sweep-title", Static).update,
                                      Text(str(exc)))
            return
        self.app.call_from_thread(self._draw, stats)

    def _draw(self, stats: Any) -> None:
        self.stats = stats
        names = sorted({c for g in stats.groups for c in g.controls})
        t = self.query_one("#sweep-stats", DataTable)
        t.add_columns("task", "settings", "seeds", "verdict", "sparsity", "dense", "ticket",
                      *[c.replace("_", " ") for c in names], "seed κ (chance)")
        for i, g in enumerate(stats.groups):
            tests = {x.control: x for x in g.tests}
            t.add_row(Text(g.task), Text(g.settings), str(len(g.seeds)),
                      Text(g.verdict, style=VERDICT_STYLE.get(g.verdict, "")),
                      f"{g.sparsity.mean:.1%}", _est(g.dense), _est(g.ticket),
                      *[(_est(g.controls[c]) + (f" p {tests[c].p_value:.2g}" if c in tests
                                                else "")) if c in g.controls else "–"
                        for c in names],
                      f"{_v(g.seed_kappa)} ({_v(g.seed_kappa_chance)})",
                      key=str(i))
        self.query_one("#sweep-title", Static).update(Text(
            f"sweep {self.path}: {len(stats.groups)} group(s), mean ± "
            f"{stats.confidence:.0%} CI over seeds · Enter on a run opens it"))
        self.query_one("#sweep-cross", Static).update(Text("\n".join(
            [f"{g.task} {g.settings}".rstrip() + f": {g.verdict}: {g.headline or g.reason}"
             for g in stats.groups] + [
            f"across tasks ({c.model} {c.settings}".rstrip() + "): mean Jaccard with the seed "
            f"held fixed {_v(c.same_seed_jaccard)} (chance {_v(c.same_seed_chance)}); across "
            f"seeds {_v(c.cross_seed_jaccard)} (chance {_v(c.cross_seed_chance)})"
            for c in stats.cross_task])))

    @on(DataTable.RowSelected, "#sweep-runs")
    def _open_run(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(RunScreen(self.runs[int(event.row_key.value)]))

    @on(DataTable.RowSelected, "#sweep-stats")
    def _to_group(self, event: DataTable.RowSelected) -> None:
        g = self.stats.groups[int(event.row_key.value)]
        first = next((i for i, r in enumerate(self.runs)
                      if (r.task, r.model_name) == (g.task, g.model) and r.seed in g.seeds), 0)
        runs = self.query_one("#sweep-runs", DataTable)
        runs.move_cursor(row=first)
        runs.focus()
