"""``ticketlens inspect``: the app and its factory (used by the CLI and the tests alike)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from textual.app import App
from textual.binding import Binding

from ticketlens.core.run import Run, find_runs, open_run


class TicketLensApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "ticketlens inspect"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("question_mark", "help", "Help")]
    # under 100 columns the screens stack their detail panels below (app.tcss: -narrow)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(self, runs: Sequence[Run], sweep: str | None = None):
        super().__init__()
        self.runs = list(runs)
        self.sweep = sweep  # a sweep's folder: opens on its statistics (tui/sweep_screen.py)
        self._survival = lru_cache(maxsize=64)(self._survival_uncached)

    def exit(self, result: Any = None, return_code: int = 0, message: Any = None) -> None:
        """Quit. After a crash the return code stays non-zero: a `q` that arrives while the
        app closes on an error does not turn the error into success."""
        super().exit(result, return_code or self.return_code or 0, message)

    def on_mount(self) -> None:
        from ticketlens.tui.run_screen import RunScreen
        from ticketlens.tui.screens import RunsScreen

        self.push_screen(RunsScreen())
        if self.sweep is not None:
            from ticketlens.tui.sweep_screen import SweepScreen

            self.push_screen(SweepScreen(self.sweep, self.runs))
        elif len(self.runs) == 1:
            self.push_screen(RunScreen(self.runs[0]))

    def action_help(self) -> None:
        from ticketlens.tui.screens import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ cached analyses
    def _survival_uncached(self, run_index: int, round_index: int) -> Any:
        from ticketlens.analysis.survival import survival

        return survival(self.runs[run_index], round=round_index)

    def survival(self, run: Run, round_index: int) -> Any:
        return self._survival(self.runs.index(run), round_index)

    def head_importance(self, run: Run) -> Any:
        """Dense head importance, (layers, heads), saved by `ticketlens attribute --units
        --save`, if any (a broken file shows as none)."""
        from ticketlens.analysis.results import stored_attribution
        from ticketlens.core.errors import RunFormatError

        try:
            attr = stored_attribution(run)
        except RunFormatError:
            return None
        unit = attr.unit("head") if attr is not None else None
        return None if unit is None else unit.importance

    def head_across_runs(self, run: Run, unit: str) -> list[tuple[str, float, bool]]:
        out = []
        for other in self.runs:
            if other is run or other.anatomy.shapes != run.anatomy.shapes:
                continue
            h = self.survival(other, other.ticket_round).head(unit)
            out.append((other.path.name, h.kept, h.dead))
        return out


def create_app(paths: Sequence[str]) -> TicketLensApp:
    """Open every run at or below ``paths`` (manifests only: masks load when viewed)."""
    from pathlib import Path

    from ticketlens.sweep import SWEEP_FILE

    runs = [open_run(p) for path in paths for p in find_runs(path)]
    sweep = paths[0] if len(paths) == 1 and (Path(paths[0]) / SWEEP_FILE).is_file() else None
    return TicketLensApp(runs, sweep)
