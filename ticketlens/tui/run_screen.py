"""The run screen of ``ticketlens inspect``: one run's rounds, model tree, heads, neurons and
attribution, round by round. It draws analysis results; it computes none. Names from a run
reach widgets as rich Text, never as str (a str is read as markup)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
    Tree,
)

from ticketlens.analysis.earlybird import early_bird
from ticketlens.core.errors import TicketlensError, first_line
from ticketlens.core.run import control_label
from ticketlens.report.fmt import pct
from ticketlens.tui import record
from ticketlens.tui.compress_panel import compress_panel
from ticketlens.tui.methods_panel import methods_panel
from ticketlens.tui.roles_tab import roles_panes
from ticketlens.tui.stability_tab import stability_panel
from ticketlens.tui.widgets import (
    HEAD_STATES,
    METRIC_RANGE,
    head_cell,
    head_legend,
    histogram_bar,
    kept_style,
    line_chart,
    sparkline,
    unit_counts,
)
from ticketlens.tui.widgets import fmt_value as _fmt


class RunScreen(Screen):
    # (pane id, title, the widget a number key focuses there): key n opens the n-th tab
    TABS = (("tab-rounds", "Rounds", "#rounds-pane"), ("tab-model", "Model", "#tree"),
            ("tab-heads", "Heads", "#heads"), ("tab-neurons", "Neurons", "#neurons-pane"),
            ("tab-attr", "Attribution", "#attr-input"))
    BINDINGS = [Binding("left_square_bracket", "round(-1)", "Prev round"),
                Binding("right_square_bracket", "round(1)", "Next round"),
                *(Binding(str(n), f"tab({n})", title, show=False)
                  for n, (_, title, _) in enumerate(TABS, 1)),
                Binding("6", "roles_tab", "Roles", show=False),
                Binding("escape", "back", "Back"), Binding("q", "app.quit", "Quit"),
                Binding("question_mark", "app.help", "Help")]

    def __init__(self, run: Any):
        super().__init__()
        self.run = run
        self.rounds = [r.index for r in run.rounds]
        self.round = run.ticket_round

    def compose(self) -> ComposeResult:
        title = {pane: f"{n} {name}" for n, (pane, name, _) in enumerate(self.TABS, 1)}
        yield Header()
        yield Static(id="run-title")
        yield Static(id="run-error")  # a run file that cannot be read: one line, in red
        with TabbedContent(id="tabs"):
            with TabPane(title["tab-rounds"], id="tab-rounds"), \
                    VerticalScroll(id="rounds-pane"):
                yield Static(id="chart")
                yield DataTable(id="rounds", cursor_type="row")
                yield from _or_error(compress_panel, self.run, "compress-error")
                yield from _or_error(methods_panel, self.run, "methods-error")
                yield from _or_error(lambda run: stability_panel(run, self._chart_size()),
                                     self.run, "stability-error")
            with TabPane(title["tab-model"], id="tab-model"), Horizontal(classes="split"):
                yield Tree("model", id="tree")
                yield Static(id="tree-detail", classes="detail")
            with TabPane(title["tab-heads"], id="tab-heads"), Horizontal(classes="split"):
                with VerticalScroll(id="heads-box"):
                    yield DataTable(id="heads", cursor_type="cell")
                    yield Static(id="heads-legend")
                yield Static(id="head-detail", classes="detail")
            with TabPane(title["tab-neurons"], id="tab-neurons"), \
                    VerticalScroll(id="neurons-pane"):
                yield Static(id="neurons")
            with TabPane(title["tab-attr"], id="tab-attr"), VerticalScroll():
                yield Input(placeholder="a text to attribute, then Enter", id="attr-input")
                yield Static(id="attr-out")
            yield from roles_panes(self.run)  # only when `ticketlens roles --save` ran
        yield Footer()

    def on_mount(self) -> None:
        # the header (one line, shown literally): "run — model · task · seed"
        self.title = self.run.path.name
        self.sub_title = f"{self.run.model_name} · {self.run.task} · seed {_fmt(self.run.seed)}"
        self._draw_rounds()
        self._draw_round()
        self.query_one("#rounds-pane").focus()  # arrows scroll the rounds at once
        out = self.query_one("#attr-out", Static)
        if not self.run.has_weights:
            out.update("This run has no weights (an imported mask): attribution needs a run "
                       "made by `ticketlens find`.")
            return
        names = record.label_names(self.run)
        intro = Text("Type a text and press Enter: the tokens that the dense model and the "
                     "ticket rely on for the label the dense model predicts")
        if names:
            intro.append(" (")
            for i, name in enumerate(names):
                intro.append(", " if i else "")
                intro.append(name, style="bold")
            intro.append(")")
        out.update(intro.append(". Every key types into the box, 1–5 too; Esc leaves it."))

    def action_tab(self, n: int) -> None:
        pane, _, widget = self.TABS[n - 1]
        self.query_one("#tabs", TabbedContent).active = pane
        self.query_one(widget).focus()

    def action_roles_tab(self) -> None:
        if self.query("#tab-roles"):
            self.query_one("#tabs", TabbedContent).active = "tab-roles"
            for grid in self.query("#roles-grid"):  # none when the roles file is unreadable
                grid.focus()

    def action_back(self) -> None:
        """Esc leaves the text input first (to the tab bar), then the screen."""
        if isinstance(self.focused, Input):
            self.query_one("#tabs", TabbedContent).query_one(Tabs).focus()
        else:
            self.app.pop_screen()

    def show_error(self, exc: BaseException) -> None:
        """A run file that cannot be read: its one line under the title (no traceback)."""
        err = self.query_one("#run-error", Static)
        err.update(Text(first_line(exc)))
        err.display = True

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw_charts)  # the charts grow with the terminal

    def _draw_charts(self) -> None:
        from ticketlens.tui.stability_tab import StabilityChart

        self._draw_chart()
        for chart in self.query(StabilityChart):
            chart.redraw(self._chart_size())

    # ------------------------------------------------------------------ rounds tab
    def _chart_size(self) -> tuple[int, int]:
        """Columns and rows of the chart's plot: the width of the screen less the axis and
        the frame, a third of its height."""
        w, h = self.app.size
        return max(20, w - 16), max(6, h // 3)

    def _draw_chart(self) -> None:
        r, m = self.run, self.run.metric
        series = [("ticket (IMP rounds)", [(x.sparsity, x.metrics.get(m)) for x in r.rounds],
                   "cyan")]
        if r.rounds[0].metrics.get(m) is not None:
            series.append(("dense", [(0.0, r.rounds[0].metrics.get(m))], "white"))
        for c in record.control_points(r):
            series.append((control_label(c.control), [(c.sparsity, c.value)],
                           CONTROL_STYLES.get(c.control, "blue")))
        width, height = self._chart_size()
        chart = line_chart(series, width=width, height=height, y_label=m,
                           x_label="sparsity", y_range=METRIC_RANGE.get(m))
        bird = early_bird(r)
        if bird is not None:
            chart.append_text(_early_bird_text(bird))
        v = record.verdict(r)
        if v:
            chart.append(f"\n\n{v.label}: {v.reason}", style={
                "WINNING TICKET": "bold green", "INCONCLUSIVE": "bold yellow"}.get(
                    v.label, "bold red"))
        self.query_one("#chart", Static).update(chart)

    def _draw_rounds(self) -> None:
        r, m = self.run, self.run.metric
        self._draw_chart()
        t = self.query_one("#rounds", DataTable)
        units = any(x.unit_sparsity for x in r.rounds)  # a structured run (find --granularity)
        t.add_columns("round", "sparsity", *(("heads off", "neurons off") if units else ()),
                      Text(m), "dev loss", "steps", "time")
        for x in r.rounds:
            us = x.unit_sparsity or {}
            cells = tuple(pct(us.get(k), missing="–") for k in ("head", "neuron") if units)
            t.add_row(str(x.index), f"{x.sparsity:.1%}", *cells, _fmt(x.metrics.get(m)),
                      _fmt(x.metrics.get("loss")), str(x.steps), f"{x.wall_time_s:.1f}s")

    # ------------------------------------------------------------------ per round
    def action_round(self, step: int) -> None:
        i = self.rounds.index(self.round) + step
        if 0 <= i < len(self.rounds):
            self.round = self.rounds[i]
            self._draw_round()

    def _draw_round(self) -> None:
        r = self.run
        info = next(x for x in r.rounds if x.index == self.round)
        self.query_one("#run-title", Static).update(Text(
            f"round {self.round}/{self.rounds[-1]} · {info.sparsity:.1%} sparse"
            f"{' (the ticket)' if self.round == r.ticket_round else ''} │ [ ] round · "
            f"1–{len(self.TABS) + bool(self.query('#tab-roles'))} tabs"))  # 6: roles saved
        self._load_survival()

    @work(thread=True, exclusive=True, group="survival")
    def _load_survival(self) -> None:
        try:
            s = self.app.survival(self.run, self.round)
        except TicketlensError as exc:  # a mask file changed or broken: one line
            self.app.call_from_thread(self.show_error, exc)
            return
        self.app.call_from_thread(self._draw_survival, s)

    def _draw_survival(self, s: Any) -> None:
        self.surv = s
        self._draw_tree(s)
        self._draw_heads(s)
        self._draw_neurons(s)

    def _draw_tree(self, s: Any) -> None:
        a = self.run.anatomy
        tree = self.query_one("#tree", Tree)
        tree.clear()
        tree.root.set_label(Text(f"{self.run.model_name} ({a.family}), round {self.round}: "
                                 f"{s.sparsity:.1%} sparse"))
        tree.root.add_leaf("embeddings (not pruned)", data=("excluded", "embeddings"))
        for ls in s.layer_states():
            layer = ls.layer
            node = tree.root.add(f"layer {layer}: {s.layer_sparsity[layer]:.1%} sparse",
                                 data=("layer", layer))
            att = node.add(f"{a.num_heads} heads: {unit_counts(ls.heads)}",
                           data=("attention", layer))
            for h in (h for h in s.heads if h.layer == layer):
                att.add_leaf(Text.assemble(
                    f"{h.unit}: kept {h.kept:.1%}",
                    *(() if h.state == "alive" else
                      (" ", (f"{HEAD_STATES[h.state][0]} {h.state}",
                             HEAD_STATES[h.state][1])))), data=("head", h.unit))
            node.add_leaf(f"{a.intermediate} FFN neurons: {unit_counts(ls.neurons)}",
                          data=("ffn", layer))
        tree.root.add_leaf("task head (not pruned)", data=("excluded", "head"))
        tree.root.expand()

    @on(Tree.NodeHighlighted, "#tree")
    def _tree_detail(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        out = self.query_one("#tree-detail", Static)
        if not data or not hasattr(self, "surv"):
            out.update("")
            return
        kind, key = data
        if kind == "head":
            out.update(self._head_text(key))
        elif kind == "ffn":
            n = self.surv.neurons[key]
            ls = self.surv.layer_states()[key]
            out.update(Text.assemble(
                f"layer {key} FFN neurons: {unit_counts(ls.neurons)}\n{NEURON_STATES}\n\n"
                "kept fraction of neurons (0% → 100%):\n", histogram_bar(n.histogram())))
        elif kind == "layer":
            ts = self.run.anatomy.layer_tensors(key)
            info = next(x for x in self.run.rounds if x.index == self.round)
            lines = [f"{t.name.split('.', 3)[-1] if t.name.count('.') > 3 else t.name}: "
                     f"{info.sparsity_per_tensor.get(t.name, float('nan')):.1%} sparse"
                     for t in ts]
            out.update(Text(f"layer {key}\n" + "\n".join(lines)))
        elif kind == "excluded":
            out.update(f"{key}: not pruned (Chen et al. 2020's prunable set)")
        else:
            ls = self.surv.layer_states()[key]
            out.update(Text(f"layer {key} heads: {unit_counts(ls.heads)}\n\n") +
                       head_legend(1.0 - self.surv.sparsity))

    def _head_text(self, unit: str) -> Text:
        h = self.surv.head(unit)
        glyph, style, meaning = HEAD_STATES[h.state]
        t = Text(f"{unit}  kept {h.kept:.1%}  ", style="bold")
        t.append(f" {glyph} {h.state.upper()} ", style=style or "bold")
        t.append(f"\n{meaning}\n")
        for part in "qkvo":
            v = getattr(h, part)
            t.append(f" {part.upper()} {v:6.1%} ")
            t.append("  ", style=kept_style(v, 1.0 - self.surv.sparsity))
            t.append("\n")
        imp = self.app.head_importance(self.run)
        if imp is not None:
            t.append(f"importance (dense): {imp[h.layer][h.head]:.3g}\n")
        others = self.app.head_across_runs(self.run, unit)
        if others:
            t.append("in the other open runs:\n")
            for name, kept, dead in others:
                t.append(f" {name}: {kept:.1%}{' dead' if dead else ''}\n")
        return t

    def _draw_heads(self, s: Any) -> None:
        t = self.query_one("#heads", DataTable)
        t.clear(columns=True)
        t.add_columns("", *[f"H{h}" for h in range(s.num_heads)])
        grid = {(h.layer, h.head): h for h in s.heads}
        for layer in range(s.num_layers):
            cells = []
            for head in range(s.num_heads):
                h = grid[(layer, head)]
                cells.append(head_cell(h.state, h.kept, 1.0 - s.sparsity))
            t.add_row(f"L{layer}", *cells)
        self.query_one("#heads-legend", Static).update(head_legend(1.0 - s.sparsity))
        row, col = t.cursor_coordinate
        self.query_one("#head-detail", Static).update(
            self._head_text(f"L{min(row, s.num_layers - 1)}H{max(col, 1) - 1}"))

    @on(DataTable.CellHighlighted, "#heads")
    def _head_cell(self, event: DataTable.CellHighlighted) -> None:
        layer, col = event.coordinate.row, event.coordinate.column
        if col >= 1 and hasattr(self, "surv"):
            self.query_one("#head-detail", Static).update(self._head_text(f"L{layer}H{col - 1}"))

    def _draw_neurons(self, s: Any) -> None:
        t = Text("FFN neurons per layer: how many in each state, and the distribution of "
                 f"their kept fractions (0% → 100%). {NEURON_STATES}\n\n")
        for n, ls in zip(s.neurons, s.layer_states(), strict=True):
            t.append(f"L{n.layer:<3}")
            t.append_text(histogram_bar(n.histogram()))
            t.append(f"  {unit_counts(ls.neurons)}\n")
        self.query_one("#neurons", Static).update(t)

    @on(Input.Submitted, "#attr-input")
    def _attribute(self, event: Input.Submitted) -> None:
        if not self.run.has_weights or not event.value.strip():
            return
        self.query_one("#attr-out", Static).update("computing…")
        self._run_attribution(event.value.strip())

    @work(thread=True, exclusive=True, group="attribution")
    def _run_attribution(self, text: str) -> None:
        from ticketlens.analysis.attribution import attribute_run

        try:
            res = attribute_run(self.run, texts=[text], n_steps=24)
            unknown = record.unknown_words(self.run, text)
        except Exception as exc:  # shown in the UI, never a traceback
            why = str(exc) if isinstance(exc, TicketlensError) else \
                f"attribution failed: {type(exc).__name__}: {first_line(exc)}"
            self.app.call_from_thread(self.query_one("#attr-out", Static).update, Text(why))
            return
        self.app.call_from_thread(self.query_one("#attr-out", Static).update,
                                  _attribution_text(res, unknown, self.run))


def _attribution_text(res: Any, unknown: dict[int, str], run: Any) -> Text:
    """Each token on the colour of its attribution (for the target label), dense above the
    ticket, words the tokenizer does not know marked, and the legend of both."""
    item = res.items[0]
    out = Text()
    for who in ("dense", "ticket"):
        vals = getattr(item, who)
        peak = max(abs(v) for v in vals) or 1.0
        out.append(f"{who:>7} ")
        for i, (tok, v) in enumerate(zip(item.tokens, vals, strict=True)):
            out.append(f"⟨{unknown[i]}⟩" if i in unknown else tok, style=_attr_style(v, peak))
            out.append(" ")
        out.append("\n")
    out.append("\n")
    for label, v in (("for the target, strong", 1.0), ("weak", 0.3),
                     ("against, strong", -1.0), ("weak", -0.3)):
        out.append(" ")
        out.append("  ", style=_attr_style(v, 1.0))
        out.append(f" {label} ")
    out.append("  (strong: over half the text's largest |attribution|; weak: 15–50%; "
               "integrated gradients)")
    if unknown:
        words = ", ".join(dict.fromkeys(unknown.values()))
        out.append(f"\n⟨word⟩: not in the tokenizer's vocabulary, the models saw [UNK] "
                   f"({words})", style="bold yellow")
    rho = "n/a (a constant ranking: too few tokens)" if item.spearman != item.spearman \
        else f"{item.spearman:.2f}"
    out.append(f"\n\nSpearman {rho} (rank correlation of dense and ticket), "
               f"top-{res.k} agreement {item.topk_agreement:.2f}, target: ")
    out.append(item.target_text if item.regression else record.label_name(run, item.target),
               style="bold")
    return out


def _attr_style(v: float, peak: float) -> str:
    a = abs(v) / peak
    if a > 0.5:
        return "on #2e7d32" if v > 0 else "on #c62828"
    if a > 0.15:
        return "on #1b3d1e" if v > 0 else "on #4a1a1a"
    return ""


CONTROL_STYLES = {"random_mask": "red", "random_reinit": "yellow", "oneshot": "magenta",
                  "method_magnitude": "green", "method_wanda": "bright_blue",
                  "method_sparsegpt": "bright_magenta"}
NEURON_STATES = ("constant: input row pruned, adds a fixed vector; dead: output column pruned, "
                 "adds nothing (both count as removed)")


def _or_error(panel: Any, run: Any, error_id: str) -> list[Any]:
    """A panel's widgets, or the one line saying why its file cannot be read."""
    try:
        return list(panel(run))
    except TicketlensError as exc:
        return [Static(Text(first_line(exc)), id=error_id, classes="file-error")]


def _early_bird_text(bird: Any) -> Text:
    """The early-bird line under the rounds chart: where the dense run stopped, and the mask
    distance between consecutive draws."""
    t = Text("\n\nearly-bird: ", style="bold")
    if bird.settled:
        t.append(f"the mask settled at step {bird.stopped_at} of {bird.dense_steps} "
                 f"({bird.steps_saved} dense steps saved, {bird.saved_fraction:.0%})")
    else:
        t.append(f"the mask did not settle; dense trained all {bird.dense_steps} steps")
    t.append(f"\nmask distance per draw (every {bird.every} steps, stop below "
             f"{bird.epsilon:g} for {bird.window} draws): ")
    t.append_text(sparkline([d.distance for d in bird.draws]))
    if bird.draws:
        t.append(f" steps {bird.draws[0].step}–{bird.draws[-1].step}")
    return t
