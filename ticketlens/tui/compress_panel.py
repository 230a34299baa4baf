"""The compression table of a run in ``ticketlens inspect`` (Rounds tab, below the rounds):
the 8 cells of ``ticketlens compress`` with metric, bytes, ratio and the Pareto flag. It draws
``compress.json`` as computed; shown only when the run has one. Names reach the table as rich
Text, never as markup."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ticketlens.compress.result import CompressResult, read_compress


class CompressTable(DataTable):
    """One row per cell: cell, variant, metric, MB, × smaller, Pareto (✓)."""

    def __init__(self, result: CompressResult):
        super().__init__(id="compress", cursor_type="row")
        self.result = result

    def on_mount(self) -> None:
        res = self.result
        self.add_columns("cell", "variant", Text(res.metric), "MB", "× smaller", "Pareto")
        for c in res.cells:
            if c.variant is None:
                self.add_row(Text(c.name), Text("not measured"), "–", "–", "–", "")
                continue
            self.add_row(Text(c.name), Text(c.variant), f"{c.metric:.4f}",
                         f"{c.bytes / 1e6:.3f}", f"{c.ratio:.2f}", "✓" if c.pareto else "")


def compress_panel(run: Any) -> list[Widget]:
    """The widgets to add under the rounds table: none when ``compress`` was not run."""
    res = read_compress(run.path)
    if res is None:
        return []
    title = Text(f"compression (quantize = {res.cell_scheme}; ✓ Pareto-optimal, metric vs "
                 "bytes)")
    return [Static(title, id="compress-title"), CompressTable(res)]
