"""The one-shot methods of a run in ``ticketlens inspect`` (Rounds tab, below the rounds): each
``--compare-methods`` arm's metric before and after retraining, and how much of the ticket's
weights it keeps against chance (``analysis.overlap.methods_overlap``). Shown only when the
run trained such arms; names reach the table as rich Text, never as markup."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ticketlens.analysis.overlap import ONESHOT_ARMS, methods_overlap
from ticketlens.core.errors import TicketlensError, first_line
from ticketlens.core.record import control_label


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


class MethodsTable(DataTable):
    """arm, before retraining, after retraining, share of the ticket kept (chance)."""

    def __init__(self, run: Any, arms: list[str]):
        super().__init__(id="methods", cursor_type="row")
        self.run, self.arms = run, arms

    def on_mount(self) -> None:
        run, metric = self.run, self.run.metric
        try:
            pairs = {p.b: p for p in methods_overlap(run, by="weight").pairs
                     if p.a == "ticket"}
        except TicketlensError as exc:  # a mask file that cannot be read: one line
            self.add_column("one-shot methods")
            self.add_row(Text(first_line(exc)))
            return
        self.add_columns("arm", "before retraining", Text(f"{metric} after"),
                         "of the ticket kept (chance)")
        self.add_row(Text("IMP ticket"), "", _num(run.ticket.metrics.get(metric)), "")
        for a in self.arms:
            rec = run.controls[a]
            before = (rec.extra.get("oneshot") or {}).get("metrics", {}).get(metric)
            p = pairs.get(control_label(a))
            kept = "" if p is None else f"{p.a_kept_by_b:.1%} ({p.a_kept_by_b_chance:.1%})"
            self.add_row(Text(control_label(a)), _num(before), _num(rec.metric(metric)), kept)


def methods_panel(run: Any) -> list[Widget]:
    """The widgets to add under the rounds table: none without one-shot method arms."""
    arms = [a for a in ONESHOT_ARMS if a in run.controls and run.controls[a].mask]
    if not arms:
        return []
    return [Static(Text("one-shot methods beside the ticket (weights kept vs chance)"),
                   id="methods-title"), MethodsTable(run, arms)]
