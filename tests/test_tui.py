"""`ticketlens inspect`: headless behaviour (App.run_test + Pilot) and SVG snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil

import pytest
from conftest import SAMPLE_MASKS, settle

from ticketlens.cli.main import main
from ticketlens.core.run import open_run
from ticketlens.tui.app import TicketLensApp, create_app

RUNS = [str(SAMPLE_MASKS / "sentiment-s0"), str(SAMPLE_MASKS / "sentiment-s1")]
TICKET_ROUND = open_run(RUNS[0]).ticket.index  # the sample runs' ticket (the default: 6)
ALL_RUNS = sorted(str(p) for p in SAMPLE_MASKS.iterdir() if (p / "manifest.json").is_file())
pytestmark = pytest.mark.skipif(not (SAMPLE_MASKS / "sentiment-s0").is_dir(),
                                reason="sample_masks absent")


def screen_lines(app) -> list[str]:
    """The terminal as the user sees it, one string per line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_cells(app) -> list[list[tuple[str, object]]]:
    """The terminal as (character, foreground colour) per cell."""
    return [[(ch, seg.style.color if seg.style else None)
             for seg in strip for ch in seg.text]
            for strip in app.screen._compositor.render_strips()]


def test_navigate_tree_rounds_overlap_help_quit():
    asyncio.run(_navigate())


async def _navigate():
    from textual.widgets import Static, Tree

    from ticketlens.tui.run_screen import RunScreen
    from ticketlens.tui.screens import HelpScreen, OverlapScreen, RunsScreen

    app = create_app(RUNS)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.round == TICKET_ROUND
        # step back through the rounds: the views follow
        await pilot.press("left_square_bracket", "left_square_bracket")
        await app.workers.wait_for_complete()
        await pilot.pause()
        back = TICKET_ROUND - 2
        assert screen.round == back and screen.surv.round == back
        assert f"round {back}/{TICKET_ROUND}" in str(screen.query_one("#run-title", Static).render())
        # model tree: expand layer 0, its attention, land on a head and see its detail
        screen.query_one("#tabs").active = "tab-model"
        await pilot.pause()
        tree = screen.query_one("#tree", Tree)
        tree.focus()
        layer0 = tree.root.children[1]
        layer0.expand()
        layer0.children[0].expand()
        await pilot.pause()
        tree.move_cursor(layer0.children[0].children[2])
        await pilot.pause()
        detail = str(screen.query_one("#tree-detail", Static).render())
        assert detail.startswith("L0H2") and "Q" in detail and "sentiment-s1" in detail
        # head grid: the cursor cell's Q/K/V/O
        screen.query_one("#tabs").active = "tab-heads"
        await pilot.pause()
        screen.query_one("#heads").focus()
        await pilot.press("right", "right", "down")
        await pilot.pause()
        assert str(screen.query_one("#head-detail", Static).render()).startswith("L1H1")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("space", "down", "space", "c")
        await pilot.pause()
        assert isinstance(app.screen, OverlapScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Fleiss" in str(app.screen.query_one("#ov-summary", Static).render())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "escape", "q")
    assert app.return_code == 0  # q quits cleanly


def test_not_a_run_is_one_clear_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a ticketlens run" in err


TAB_KEYS = {"rounds": "1", "model": "2", "heads": "3", "neurons": "4", "attribution": "5",
            "roles": "6"}


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
@pytest.mark.parametrize("view", ["runs", *TAB_KEYS, "help", "overlap"])
def test_snapshots(snap_compare, size, view):
    """Every screen and every tab of a run at the smallest and a large terminal (the
    attribution tab with a text attributed, a word the tokenizer does not know in it)."""
    async def setup(pilot):
        app = pilot.app
        await pilot.pause()
        if view == "overlap":
            await pilot.press("c")
        elif view != "runs":
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press(TAB_KEYS.get(view, "1"))
            if view == "model":  # layer 1 open, its FFN highlighted: the tree and its panel
                await pilot.press("down", "down", "down", "enter", "down", "down")
            if view == "attribution":  # then Esc: no blinking cursor in the picture
                await pilot.press(*"qwzx not good", "enter")
                await app.workers.wait_for_complete()
                await pilot.press("escape")
            if view == "help":
                await pilot.press("question_mark")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(create_app(RUNS), terminal_size=size, run_before=setup)


# --------------------------------------------------------------------- names shown literally
MARKUP = "[/] [bold]x[/bold] [link=https://x]y[/link]"
TASK, MODEL = f"sst {MARKUP}", f"tiny {MARKUP}"
LABELS = [f"neg {MARKUP}", "[bold]pos[/bold]"]
RUN_NAMES = ["train[v2]", "[b]seed1"]


@pytest.fixture
def markup_runs(tmp_path):
    """Two real runs whose run, task, model and label names are Rich / Textual markup."""
    out = []
    for name, src in zip(RUN_NAMES, ("sentiment-s0", "sentiment-s1"), strict=True):
        dst = tmp_path / name
        shutil.copytree(SAMPLE_MASKS / src, dst)
        m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
        m["task"]["name"], m["model"]["name"], m["task"]["label_names"] = TASK, MODEL, LABELS
        (dst / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        out.append(str(dst))
    return out


def test_names_from_runs_are_shown_literally(markup_runs):
    asyncio.run(_names_literally(markup_runs))


async def _names_literally(paths):
    from ticketlens.tui.run_screen import RunScreen
    from ticketlens.tui.screens import OverlapScreen

    app = create_app(paths)
    async with app.run_test(size=(220, 50)) as pilot:
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        for name in (*RUN_NAMES, TASK, MODEL):
            assert name in text  # the runs table
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        header = screen_lines(app)[0]
        assert f"train[v2] — {MODEL} · {TASK} · seed 0" in header
        assert "1 Rounds" in "\n".join(screen_lines(app))
        await pilot.press("2")  # model tree: the model's name at its root
        await pilot.pause()
        assert f"{MODEL} (bert), round {TICKET_ROUND}" in "\n".join(screen_lines(app))
        await pilot.press("3")  # head detail: the other open run, by name
        await pilot.pause()
        assert "[b]seed1: " in "\n".join(screen_lines(app))
        await pilot.press("4")
        await pilot.pause()
        assert "L0" in "\n".join(screen_lines(app))
        await pilot.press("5")  # attribution: the task's label names, then the target's
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert f"({LABELS[0]}, {LABELS[1]})" in text
        await pilot.press(*"not good", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "attribution failed" not in text and "class " not in text
        assert f"target: {LABELS[0]}" in text or f"target: {LABELS[1]}" in text
        await pilot.press("escape", "escape")  # leave the text box, then the run
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, OverlapScreen)
        assert any(f"{TASK}/s0" in line and f"{TASK}/s1" in line  # the pairs table: a, b
                   for line in screen_lines(app))
        await pilot.press("q")
    assert app.return_code == 0


# --------------------------------------------------------------------- a crash is an error
@pytest.mark.parametrize("where", ["mount", "worker"])
def test_a_crash_exits_non_zero(monkeypatch, where):
    """What `ticketlens inspect` returns: App.run() comes back, and return_code says 1."""
    from ticketlens.tui.screens import RunsScreen

    def boom(*_):
        raise RuntimeError("boom")

    # mount: drawing the runs table fails; worker: the survival analysis thread fails
    monkeypatch.setattr(*(RunsScreen, "_fill", boom) if where == "mount" else
                        (TicketLensApp, "survival", boom))

    async def user_quits(pilot):  # waits for the views, then quits (q), crash or not
        from textual.worker import WorkerCancelled, WorkerFailed

        with contextlib.suppress(WorkerCancelled, WorkerFailed):  # a crash cancels them
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        pilot.app.exit()

    app = create_app(RUNS[:1])  # one run: its screen opens at once
    app.run(headless=True, size=(80, 24), auto_pilot=user_quits)
    assert app.return_code == 1


# --------------------------------------------------------------------- keys
def test_single_keys_do_nothing_while_typing():
    asyncio.run(_typing())


async def _typing():
    from textual.widgets import Input

    from ticketlens.tui.run_screen import RunScreen

    app = create_app(RUNS[:1])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await pilot.press("5")  # the Attribution tab, its text box focused
        await pilot.pause()
        box = screen.query_one("#attr-input", Input)
        assert app.focused is box
        sentence = "quite a quick question [1] 2?"  # q quit, [ ] rounds, 1 2 tabs, ? help
        await pilot.press(*sentence)
        await pilot.pause()
        assert app.return_code is None and app.screen is screen  # still running, same view
        assert box.value == sentence
        assert screen.query_one("#tabs").active == "tab-attr" and screen.round == TICKET_ROUND
        await pilot.press("escape")  # leaves the text box, not the run
        await pilot.pause()
        assert app.screen is screen and app.focused is not box
        await pilot.press("q")
    assert app.return_code == 0


def test_number_keys_open_tabs_and_show_focus():
    asyncio.run(_number_keys())


async def _number_keys():
    from ticketlens.tui.run_screen import RunScreen

    app = create_app(RUNS)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#runs")
        assert app.focused is table and _left_edge(app, table) == "▌"  # the focus bar
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        tabs = screen.query_one("#tabs")
        for n, pane, widget in [(3, "tab-heads", "#heads"), (2, "tab-model", "#tree"),
                                (4, "tab-neurons", "#neurons-pane"),
                                (1, "tab-rounds", "#rounds-pane"),
                                (5, "tab-attr", "#attr-input")]:
            await pilot.press(str(n))
            await pilot.pause()
            assert tabs.active == pane and app.focused is screen.query_one(widget)
            if widget != "#attr-input":
                assert _left_edge(app, app.focused) == "▌"
        box = app.focused
        focused_frame = _left_edge_colour(app, box)
        await pilot.press("escape")  # focus leaves the text box: its frame changes colour
        await pilot.pause()
        assert _left_edge_colour(app, box) != focused_frame
        await pilot.press("3")
        await pilot.pause()
        heads = screen.query_one("#heads")
        assert app.focused is heads and _left_edge(app, heads) == "▌"
        await pilot.press("tab")  # focus moves on: the bar goes with it
        await pilot.pause()
        assert app.focused is not heads and _left_edge(app, heads) == " "


def _left_edge(app, widget) -> str:
    r = widget.region
    return screen_lines(app)[r.y + 1][r.x]


def _left_edge_colour(app, widget):
    r = widget.region
    return screen_cells(app)[r.y + 1][r.x][1]


# --------------------------------------------------------------------- chart legend
def test_each_series_has_its_own_glyph_and_the_legend_shows_it():
    from ticketlens.tui.widgets import GLYPHS, line_chart

    # three series on one spot: all stay visible, each as its legend shows it
    chart = line_chart([("a", [(0.0, 0.5), (0.8, 0.9)], "cyan"), ("b", [(0.8, 0.9)], "red"),
                        ("c", [(0.8, 0.9)], "yellow"), ("d", [(0.5, None)], "blue")])
    plot, legend = _chart_parts(chart)
    assert legend == {(GLYPHS[0], "cyan"), (GLYPHS[1], "red"), (GLYPHS[2], "yellow")}
    assert plot == legend  # d has nothing drawn: not in the legend either
    asyncio.run(_legend_in_app())


def test_the_y_axis_stays_in_the_metrics_range():
    """All arms at accuracy 1.0: the axis ends at 1.000 (it said 1.010)."""
    from ticketlens.tui.widgets import METRIC_RANGE, line_chart

    chart = line_chart([("ticket", [(0.0, 1.0), (0.5, 1.0)], "cyan"),
                        ("dense", [(0.0, 1.0)], "white")], y_range=METRIC_RANGE["accuracy"])
    ticks = [float(line.split("┤")[0]) for line in chart.plain.split("\n") if "┤" in line]
    assert max(ticks) == 1.0 and min(ticks) < 1.0


def _chart_parts(chart) -> tuple[set, set]:
    """({(glyph, style)} drawn in the plot, {(glyph, style)} in the legend)."""
    from ticketlens.tui.widgets import GLYPHS

    lines = chart.split("\n")
    axis = next(i for i, line in enumerate(lines) if "└" in line.plain)
    legend = next(line for line in lines[axis + 1:] if any(g in line.plain for g in GLYPHS))
    return _markers(lines[:axis]), _markers([legend])


def _markers(lines) -> set:
    from ticketlens.tui.widgets import GLYPHS

    out = set()
    for line in lines:
        for span in line.spans:
            ch = line.plain[span.start:span.end].strip()
            if ch in GLYPHS:
                out.add((ch, str(span.style)))
    return out


async def _legend_in_app():
    from ticketlens.tui.widgets import GLYPHS

    app = create_app(RUNS[:1])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        cells = screen_cells(app)
        lines = screen_lines(app)
        axis = next(i for i, line in enumerate(lines) if "└" in line)
        legend_row = next(i for i in range(axis + 1, len(lines)) if "ticket" in lines[i])
        legend = {c for c in cells[legend_row] if c[0] in GLYPHS}
        plot = {c for row in cells[:axis] for c in row if c[0] in GLYPHS}
        assert len(legend) == 4  # ticket, dense, random mask, random reinit
        assert len({glyph for glyph, _ in legend}) == 4  # told apart without colour too
        assert plot == legend  # every legend marker is drawn, every drawn marker is in it


def test_the_chart_grows_with_the_terminal():
    asyncio.run(_chart_sizes())


async def _chart_sizes():
    sizes = {}
    for size in ((80, 24), (200, 60)):
        app = create_app(RUNS[:1])
        async with app.run_test(size=size) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            chart = str(app.screen.query_one("#chart").render()).split("\n")
            axis = next(line for line in chart if "└" in line)
            sizes[size] = (len(axis.strip()) - 1, sum("│" in x or "┤" in x for x in chart))
            plot = [line for line in chart if set(line) & set("│┤└")]
            assert max(len(line.rstrip()) for line in plot) <= size[0] - 4  # in the pane
    assert sizes[(80, 24)][0] <= 64 and sizes[(200, 60)][0] >= 180
    assert sizes[(200, 60)][1] >= 2 * sizes[(80, 24)][1]


# --------------------------------------------------------------------- 80×24
def test_80x24_one_line_header_and_the_runs_table_says_it_scrolls():
    asyncio.run(_small_terminal())


async def _small_terminal():
    app = create_app(ALL_RUNS * 4)  # 24 runs: more rows and columns than 80×24 shows
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        assert "ticketlens inspect — 24 runs" in lines[0]
        assert "…" not in lines[1] and "c compares" in lines[1]
        caption = str(app.screen.query_one("#runs-scroll").render())
        assert caption.startswith("rows 1–18 of 24, columns 1–8 of 11")
        assert caption.endswith("↑↓ ←→ to scroll") and caption in "\n".join(lines)
        await pilot.press(*["down"] * 23)  # the cursor to the last run
        await pilot.pause()
        assert str(app.screen.query_one("#runs-scroll").render()).startswith("rows 7–24 of 24")
        await pilot.press(*["right"] * 4)
        await pilot.wait_for_animation()
        await pilot.pause()
        caption = str(app.screen.query_one("#runs-scroll").render())
        assert "columns 1–" not in caption and "of 11" in caption
        await pilot.press("enter")  # the last run: its name, model, task, seed on one line
        await app.workers.wait_for_complete()
        await pilot.pause()
        lines = screen_lines(app)
        last = app.runs[-1]
        assert f"{last.path.name} — {last.model_name} · {last.task} · seed 2" in lines[0]
        title = app.screen.query_one("#run-title")
        assert title.region.height == 1 and "(the ticket)" in lines[title.region.y]
        assert "…" not in lines[title.region.y]
        assert "5 Attribution" in lines[title.region.y + 1]


# --------------------------------------------------------------------- structured tickets
def test_structured_run_shows_head_states_units_and_early_bird(tmp_path):
    from structured_run import make_structured_run

    asyncio.run(_structured(str(make_structured_run(tmp_path / "unit"))))


async def _structured(path):
    from textual.widgets import DataTable, Static, Tree

    from ticketlens.tui.widgets import HEAD_STATES

    app = create_app([path])
    async with app.run_test(size=(140, 45)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        # rounds: unit sparsity beside weight sparsity; the early-bird step under the chart
        table = screen.query_one("#rounds", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:4] == ["round", "sparsity", "heads off", "neurons off"]
        ticket = open_run(path).ticket
        assert [str(x) for x in table.get_row_at(ticket.index)[:4]] == \
            [str(ticket.index), f"{ticket.sparsity:.1%}", "25.0%", "50.0%"]
        chart = str(screen.query_one("#chart", Static).render())
        assert "early-bird: the mask settled at step 20 of 64 (44 dense steps saved, 69%)" \
            in chart
        # head grid: each state its own glyph and colour, and a legend that names them
        await pilot.press("3")
        await pilot.pause()
        heads = screen.query_one("#heads", DataTable)
        cells = {f"L{r}H{c - 1}": heads.get_cell_at((r, c)) for r in range(4)
                 for c in range(1, 5)}
        expect = {"L0H0": "blind", "L0H1": "constant", "L1H2": "dead", "L2H3": "dead",
                  "L0H2": "alive"}
        for unit, state in expect.items():
            glyph, style, _ = HEAD_STATES[state]
            assert cells[unit].plain.startswith(glyph), unit
            if style:
                assert str(cells[unit].style) == style
        assert len({str(cells[u].style) for u in ("L0H0", "L0H1", "L1H2")}) == 3
        legend = str(screen.query_one("#heads-legend", Static).render())
        for state in ("blind", "constant", "dead"):
            assert f"{HEAD_STATES[state][0]}  {state}" in legend
        assert "kept fraction: ● 0%" in legend and "alive: no slice" in legend
        assert "L0H0  kept" in str(screen.query_one("#head-detail", Static).render())
        assert "BLIND" in str(screen.query_one("#head-detail", Static).render())
        # model tree: per layer dead and blind heads, neurons alive / dead (constant)
        await pilot.press("2")
        await pilot.pause()
        tree = screen.query_one("#tree", Tree)
        layer0 = tree.root.children[1]
        att, ffn = (str(n.label) for n in layer0.children)
        assert att == "4 heads: 2 alive, 1 blind, 1 constant"
        assert ffn == "256 FFN neurons: 248 alive, 3 constant, 5 dead"
        assert str(tree.root.children[2].children[0].label) == "4 heads: 3 alive, 1 dead"
        leaves = [str(n.label) for n in layer0.children[0].children]
        assert leaves[0].endswith("% ◐ blind") and leaves[1].endswith("% ○ constant")
        assert leaves[2].startswith("L0H2: kept ") and leaves[2].endswith("%")
        # neurons tab
        await pilot.press("4")
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "248 alive, 3 constant, 5 dead" in text
        assert any(line.rstrip().endswith("256 alive") for line in screen_lines(app))
        await pilot.press("q")


def test_weight_run_has_no_unit_columns_or_early_bird():
    asyncio.run(_weight_run())


async def _weight_run():
    from textual.widgets import DataTable, Static

    app = create_app(RUNS[:1])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#rounds", DataTable)
        assert "heads off" not in [str(c.label) for c in table.columns.values()]
        assert "early-bird" not in str(app.screen.query_one("#chart", Static).render())
        await pilot.press("q")


# --------------------------------------------------------------------- issue 23: read alone
def test_unit_counts_agree_in_every_view():
    """sentiment-s1, layer 1: the tree said "255 alive, 1 dead (1 constant)" and its panel
    "1 constant, 0 dead"; one phrasing of one count now, in the tree, its panel and the
    neurons tab."""
    asyncio.run(_unit_counts())


async def _unit_counts():
    from textual.widgets import Static, Tree

    from ticketlens.tui.widgets import unit_counts

    app = create_app([str(SAMPLE_MASKS / "sentiment-s1")])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        states = [ls.neurons for ls in screen.surv.layer_states()]  # analysis.survival
        # a layer with a removed neuron if there is one (layer 1 when the issue was filed)
        layer = next((i for i, c in enumerate(states) if c["alive"] < sum(c.values())), 0)
        phrase = unit_counts(states[layer])
        assert phrase.startswith(f"{states[layer]['alive']} alive")
        await pilot.press("2")
        await pilot.pause()
        tree = screen.query_one("#tree", Tree)
        node = tree.root.children[1 + layer]
        node.expand()
        await pilot.pause()
        ffn = node.children[1]
        assert str(ffn.label) == f"256 FFN neurons: {phrase}"
        tree.move_cursor(ffn)
        await pilot.pause()
        panel = str(screen.query_one("#tree-detail", Static).render())
        assert panel.startswith(f"layer {layer} FFN neurons: {phrase}\n")
        await pilot.press("4")
        await pilot.pause()
        assert any(line.rstrip().endswith(phrase) and f"L{layer} " in line
                   for line in screen_lines(app))


def test_head_legend_swatches_are_the_grids_colours():
    asyncio.run(_head_colours())


async def _head_colours():
    app = create_app(RUNS[:1])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        from ticketlens.tui.widgets import head_legend

        legend = head_legend(1.0 - screen.surv.sparsity)  # what #heads-legend shows
        assert str(screen.query_one("#heads-legend").render()) == legend.plain
        swatches = {}  # the label of each swatch of the scale -> its style
        plain = legend.plain
        for span in legend.spans:
            if plain[span.start:span.end] == "●":
                label = plain[span.end + 1:].split("  ")[0].split("\n")[0]
                swatches[label] = span.style
        assert len(swatches) == 6
        heads = screen.query_one("#heads")
        for h in screen.surv.heads:
            cell = heads.get_cell_at((h.layer, h.head + 1))
            kept = round(h.kept * 100)
            label = next(lab for lab in swatches if (lab.startswith("≥") and
                         kept >= int(lab[1:-1])) or ("–" in lab and
                         int(lab.split("–")[0][:-1]) <= kept < int(lab.split("–")[1][:-1])))
            assert _colours(cell.style) == _colours(swatches[label]), (h.unit, label)


def _colours(style) -> tuple:
    from rich.style import Style

    st = style if isinstance(style, Style) else Style.parse(str(style))
    return st.bgcolor.get_truecolor(), st.color.get_truecolor()


def test_attribution_legend_and_unknown_words():
    asyncio.run(_attribution())


async def _attribution():
    from textual.widgets import Input, Static

    app = create_app(RUNS[:1])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("5", *"qwzx not good", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#attr-input", Input).value == "qwzx not good"
        out = str(screen.query_one("#attr-out", Static).render())
        assert "dense [CLS] ⟨qwzx⟩ not good [SEP]" in out and "[UNK]" not in out.split("\n")[0]
        assert "not in the tokenizer's vocabulary, the models saw [UNK] (qwzx)" in out
        assert "for the target, strong" in out and "against, strong" in out


def test_keys_do_what_the_help_says():
    asyncio.run(_keys())


async def _keys():
    from ticketlens.tui.run_screen import RunScreen
    from ticketlens.tui.screens import HelpScreen

    app = create_app(RUNS[:1])
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        pane = screen.query_one("#rounds-pane")
        assert app.focused is pane and pane.max_scroll_y > 0
        await pilot.press("down", "down")  # no Tab first
        await pilot.pause()
        assert pane.scroll_y > 0
        for close in ("escape", "q", "question_mark"):
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_text = "\n".join(screen_lines(app))
            assert "(in this help: Esc, q or ?" in help_text
            await pilot.press(close)
            await pilot.pause()
            assert app.screen is screen and app.return_code is None
        await pilot.press("q")
    assert app.return_code == 0


def test_a_malformed_run_file_is_one_line_in_the_app(tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", dst)
    (dst / "compress.json").write_text('{"run": "x", "cells": 5}')
    mask = dst / "masks" / f"round_{TICKET_ROUND:03d}.safetensors"
    data = bytearray(mask.read_bytes())
    data[-1] ^= 0x01  # one weight more or less kept than recorded
    mask.write_bytes(bytes(data))
    asyncio.run(_malformed(str(dst)))


async def _malformed(path):
    app = create_app([path])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        compress = str(app.screen.query_one("#compress-error").render())  # under the rounds
        assert "compress.json: unreadable compression table" in compress
        assert "\n" not in compress
        error = str(app.screen.query_one("#run-error").render())
        assert f"round_{TICKET_ROUND:03d}.safetensors: the mask keeps" in error and "\n" not in error
        await pilot.press("q")
    assert app.return_code == 0  # no crash, no traceback


def test_80x24_every_tab_shows_the_run_and_whole_labels():
    asyncio.run(_small_tabs())


async def _small_tabs():
    from textual.widgets import Tree

    app = create_app(RUNS)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*["right"] * 6)  # the runs table scrolled: the names stay
        await pilot.pause()
        assert "sentiment-s0" in "\n".join(screen_lines(app))
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        for key in "12345":
            await pilot.press(key)
            await pilot.pause()
            assert "sentiment-s0 — tiny-bert" in screen_lines(app)[0], key
            if key == "2":
                tree = app.screen.query_one("#tree", Tree)
                for node in tree.root.children[1:5]:
                    node.expand()
                await pilot.pause()
                text = "\n".join(screen_lines(app))
                for line in tree.root.children[1].children:
                    assert str(line.label) in text  # whole, not cut at the panel
        await pilot.press("escape")


def test_stability_chart_grows_and_keeps_to_the_error_range(tmp_path):
    """A stored stability record (written by hand: two start points, errors in [0, 1]):
    its chart is as wide as the rounds chart at 80 and at 200 columns, and its axis ends at
    1.000 at most."""
    from ticketlens.core.run import RunWriter
    from ticketlens.pruning.stability import FORMAT, FORMAT_VERSION

    dst = tmp_path / "run"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", dst)
    alphas = [0.0, 0.5, 1.0]
    curves = [{"start": s, "start_step": st, "seeds": [1, 2], "alphas": alphas,
               "metric": [1 - e for e in err], "loss": [0.1, 0.2, 0.1], "error": err,
               "error_barrier": max(err) - (err[0] + err[-1]) / 2, "loss_barrier": 0.1}
              for s, st, err in (("init", 0, [0.0, 1.0, 0.0]), ("rewind", 30, [0.0, 0.0, 0.0]))]
    RunWriter(dst).stability({"format": FORMAT, "version": FORMAT_VERSION, "rounds": {"8": {
        "run": str(dst), "round": 8, "arm": "ticket", "sparsity": 0.8, "metric": "accuracy",
        "error": "1 - accuracy", "points": 3, "seed": 0, "total_steps": 600,
        "curves": curves}}})
    asyncio.run(_stability_sizes(str(dst)))


async def _stability_sizes(path):
    widths = []
    for size in ((80, 24), (200, 60)):
        app = create_app([path])
        async with app.run_test(size=size) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            lines = str(app.screen.query_one("#stability-chart-8").render()).split("\n")
            ticks = [float(x.split("┤")[0]) for x in lines if "┤" in x]
            assert max(ticks) <= 1.0 and min(ticks) >= 0.0
            axis = next(x for x in lines if "└" in x)
            rounds = next(x for x in str(app.screen.query_one("#chart").render()).split("\n")
                          if "└" in x)
            assert len(axis.strip()) == len(rounds.strip())  # sized like the rounds chart
            widths.append(len(axis.strip()))
    assert widths[1] > 2 * widths[0]
