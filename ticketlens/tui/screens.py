"""Screens of ``ticketlens inspect``: runs, overlap across runs, help (one run's screen is in
``tui/run_screen.py``). They draw analysis results; they compute none."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Static,
)

from ticketlens.tui import record
from ticketlens.tui.run_screen import RunScreen
from ticketlens.tui.widgets import fmt_value as _fmt

# Names from a run (run, task, model, label, metric names) reach widgets as rich Text, never
# as str: a str is read as markup by Static, DataTable and Tree, so `train[v2]` would lose
# `[v2]` and `[/]` would crash the app.


class RunsScreen(Screen):
    BINDINGS = [Binding("enter", "open", "Open run"), Binding("space", "toggle", "Select"),
                Binding("c", "compare", "Compare"), Binding("q", "app.quit", "Quit"),
                Binding("question_mark", "app.help", "Help")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Enter opens a run · Space selects · c compares the selected (or all)",
                     id="runs-title")
        with Vertical(id="runs-box"):  # the table as tall as its rows, up to this box
            # the mark and the run's name stay in view when the table scrolls sideways
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True, fixed_columns=2)
        yield Static(id="runs-scroll")
        yield Footer()

    def on_mount(self) -> None:
        self.selected: set[int] = set()
        n = len(self.app.runs)
        self.sub_title = f"{n} run{'s' if n != 1 else ''}"
        t = self.query_one("#runs", DataTable)
        t.add_columns(" ", "run", "task", "seed", "verdict", "sparsity", "dense", "ticket",
                      "rand. mask", "reinit", "model")
        self._fill()
        for attr in ("scroll_x", "scroll_y", "virtual_size"):
            self.watch(t, attr, self._scroll_caption, init=False)

    def on_resize(self) -> None:
        self.call_after_refresh(self._scroll_caption)

    def _scroll_caption(self) -> None:
        """Says which rows and columns the table shows when it does not show them all."""
        t = self.query_one("#runs", DataTable)
        view = t.scrollable_content_region
        parts, keys = [], []
        if t.max_scroll_y > 0:
            first = round(t.scroll_y) + 1
            last = min(t.row_count, first + view.height - t.header_height - 1)
            parts.append(f"rows {first}–{last} of {t.row_count}")
            keys.append("↑↓")
        if t.max_scroll_x > 0:
            x, shown = 0, []
            for i, c in enumerate(t.ordered_columns):
                w = c.get_render_width(t)
                if x >= t.scroll_x and x + w <= t.scroll_x + view.width:
                    shown.append(i + 1)
                x += w
            if shown:
                parts.append(f"columns {shown[0]}–{shown[-1]} of {len(t.ordered_columns)}")
            keys.append("←→")
        self.query_one("#runs-scroll", Static).update(
            f"{', '.join(parts)} · {' '.join(keys)} to scroll" if parts else "")

    def _fill(self) -> None:
        t = self.query_one("#runs", DataTable)
        row = t.cursor_row
        t.clear()
        for i, r in enumerate(self.app.runs):
            rows, tr, m = r.rounds, r.ticket, r.metric
            v = record.verdict(r)
            verdict = Text("–") if not v else Text(v.state, style={
                "winning": "bold green", "inconclusive": "yellow"}.get(v.state, "red"))
            t.add_row("✓" if i in self.selected else " ", Text(r.path.name), Text(r.task),
                      Text(_fmt(r.seed)), verdict, f"{tr.sparsity:.1%}",
                      _fmt(rows[0].metrics.get(m)), _fmt(tr.metrics.get(m)),
                      _fmt(r.control_metric("random_mask")),
                      _fmt(r.control_metric("random_reinit")), Text(r.model_name), key=str(i))
        t.move_cursor(row=min(row, len(self.app.runs) - 1))

    def action_open(self) -> None:
        i = self.query_one("#runs", DataTable).cursor_row
        self.app.push_screen(RunScreen(self.app.runs[i]))

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(RunScreen(self.app.runs[int(event.row_key.value)]))

    def action_toggle(self) -> None:
        i = self.query_one("#runs", DataTable).cursor_row
        self.selected ^= {i}
        self._fill()

    def action_compare(self) -> None:
        idx = sorted(self.selected) or list(range(len(self.app.runs)))
        runs = [self.app.runs[i] for i in idx]
        if len(runs) < 2:
            self.notify("select at least two runs (Space)", severity="warning")
            return
        self.app.push_screen(OverlapScreen(runs))


class OverlapScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("q", "app.quit", "Quit"),
                Binding("question_mark", "app.help", "Help")]

    def __init__(self, runs: list[Any]):
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("computing overlap…", id="ov-summary")
            yield DataTable(id="ov-pairs", cursor_type="row", fixed_columns=2)  # a, b in view
            yield DataTable(id="ov-layers", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"overlap of {len(self.runs)} runs"
        self._compute()

    @work(thread=True, exclusive=True)
    def _compute(self) -> None:
        from ticketlens.analysis.overlap import overlap
        from ticketlens.core.errors import TicketlensError

        try:
            res = {by: overlap(self.runs, by=by) for by in ("weight", "head")}
        except TicketlensError as exc:  # its message is the one line to show
            self.app.call_from_thread(self.query_one("#ov-summary", Static).update,
                                      Text(str(exc)))
            return
        self.app.call_from_thread(self._draw, res)

    def _draw(self, res: dict) -> None:
        w = res["weight"]
        lines = [f"{len(w.names)} runs, overlap of kept weights (chance: independent masks "
                 "with the same kept count per tensor)"]
        undefined = False
        for by, o in res.items():
            undefined |= o.fleiss_kappa != o.fleiss_kappa
            lines.append(f"  by {by}: Fleiss' κ {_na(o.fleiss_kappa)} (independent: "
                         f"{_na(o.fleiss_kappa_chance)}); super-survivors "
                         f"{o.super_survivors_observed:,} vs {o.super_survivors_expected:,.1f}"
                         " expected")
        if undefined:
            lines.append("  κ n/a: every run keeps the same units (all of them, or none): "
                         "agreement beyond chance is undefined")
        self.query_one("#ov-summary", Static).update("\n".join(lines))
        t = self.query_one("#ov-pairs", DataTable)
        t.add_columns("a", "b", "Jaccard", "chance", "overlap", "Hamming", "p-value",
                      "heads J.")
        heads = {(p.a, p.b): p for p in res["head"].pairs}
        for p in w.pairs:
            h = heads.get((p.a, p.b))
            t.add_row(Text(p.a), Text(p.b), _na(p.jaccard), _na(p.jaccard_chance),
                      _na(p.overlap_coefficient), _na(p.hamming),
                      "<1e-300" if p.p_value == 0 else _na(p.p_value, ".2g"),
                      _na(h.jaccard) if h else "–")
        lt = self.query_one("#ov-layers", DataTable)
        lt.add_columns("layer", "mean Jaccard", "chance")
        for row in w.per_layer:
            lt.add_row(str(row.layer), f"{row.jaccard_mean:.3f}",
                       f"{row.jaccard_chance_mean:.3f}")


def _na(v: float, fmt: str = ".3f") -> str:
    """A statistic, or "n/a" where it is undefined (NaN; the reason is said once)."""
    return "n/a" if v != v else format(v, fmt)


HELP = (  # (where, what): the keys of each screen, wrapped by the help box itself
    ("Sweep", "(inspect SWEEPDIR) statistics over seeds and verdicts per group; Enter on a "
              "group moves to its first run, on a run opens it"),
    ("Runs", "Enter opens a run · Space selects · c compares the selected (or all)"),
    ("Run", "[ ] previous / next IMP round (every tab follows) · 1–5 tabs: Rounds, Model "
            "(tree), Heads (grid; the cursor's Q/K/V/O beside it), Neurons, Attribution · 6 Roles "
            "(runs with saved head roles)"),
    ("Text box", "(Attribution) every key types into it, 1–5 and q too; Enter attributes; "
                 "Esc leaves the box"),
    ("Moving", "arrows move or scroll · Tab / Shift+Tab move between widgets (the focused "
               "one has an accent bar) · Enter expands · the mouse works too"),
    ("Anywhere", "Esc back · ? this help · q quits (in this help: Esc, q or ? close it)"),
)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Close"),
                Binding("q", "app.pop_screen", "Close"),
                Binding("question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(ratio=1)
        for where, what in HELP:
            t.add_row(where, what)
        with Vertical(id="help"):
            yield Static(Text("ticketlens inspect: keys", style="bold"))
            yield Static(t)
