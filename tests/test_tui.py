"""`ticketlens inspect`: headless behaviour (App.run_test + Pilot) and SVG snapshots."""

from __future__ import annotations

import asyncio

import pytest
from conftest import SAMPLE_MASKS

from ticketlens.cli.main import main
from ticketlens.tui.app import create_app

RUNS = [str(SAMPLE_MASKS / "sentiment-s0"), str(SAMPLE_MASKS / "sentiment-s1")]
pytestmark = pytest.mark.skipif(not (SAMPLE_MASKS / "sentiment-s0").is_dir(),
                                reason="sample_masks absent")


def test_navigate_tree_rounds_overlap_help_quit():
    asyncio.run(_navigate())


async def _navigate():
    from textual.widgets import Static, Tree

    from ticketlens.tui.screens import HelpScreen, OverlapScreen, RunScreen, RunsScreen

    app = create_app(RUNS)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("enter")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.round == 8
        # step back through the rounds: the views follow
        await pilot.press("left_square_bracket", "left_square_bracket")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.round == 6 and screen.surv.round == 6
        assert "round 6/8" in str(screen.query_one("#run-title", Static).render())
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
    assert app.return_code in (0, None)


def test_not_a_run_is_one_clear_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a ticketlens run" in err


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("view", ["runs", "rounds", "heads", "model", "overlap"])
def test_snapshots(snap_compare, size, view):
    async def setup(pilot):
        app = pilot.app
        await pilot.pause()
        if view == "overlap":
            await pilot.press("c")
        elif view != "runs":
            await pilot.press("enter")
            await pilot.pause()
            if view != "rounds":
                app.screen.query_one("#tabs").active = f"tab-{view}"
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(create_app(RUNS), terminal_size=size, run_before=setup)
