"""The Roles tab of ``ticketlens inspect``: what ``ticketlens roles --save`` stored in a run.
The findings first, then the heads as a grid coloured by pattern type (their other roles as
letters, dead heads struck through), then survival by role against chance. Shown only when the
run holds roles (key 6); the numbers come from :mod:`ticketlens.analysis.roles`."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static, TabPane

from ticketlens.analysis.roles import PATTERNS, HeadRolesResult, stored_roles

PATTERN_STYLE = {"vertical": "bold blue", "diagonal": "bold dark_orange",
                 "vertical+diagonal": "bold magenta", "block": "bold green",
                 "heterogeneous": "grey62"}
SHORT = {"vertical": "vert", "diagonal": "diag", "vertical+diagonal": "v+d", "block": "block",
         "heterogeneous": "het"}
LETTERS = {"first": "F", "sep": "S", "punct": "P", "same": "=", "prev": "<", "next": ">",
           "broad": "B", "induction": "I", "previous_token": "p"}
TAB_ID, TAB_TITLE, TAB_FOCUS = "tab-roles", "6 Roles", "#roles-pane"


def _p(v: float) -> str:
    return "–" if v != v else ("<0.001" if v < 0.001 else f"{v:.3g}")


def findings_text(r: HeadRolesResult) -> Text:
    t = Text(f"Head roles on {r.examples} dev inputs (seed {r.seed}), round {r.round}\n",
             style="bold")
    for f in r.findings():
        t.append(f"• {f}\n")
    return t


class RolesGrid(DataTable):
    """Layers × heads: the dense pattern type and role letters (struck through when dead)."""

    def __init__(self, result: HeadRolesResult):
        super().__init__(id="roles-grid", cursor_type="cell")
        self.result = result

    def on_mount(self) -> None:
        r = self.result
        self.add_column("")
        for h in range(r.num_heads):
            self.add_column(f"H{h}")
        for layer in range(r.num_layers):
            cells: list[Text] = [Text(f"L{layer}")]
            for h in range(r.num_heads):
                u = r.head(f"L{layer}H{h}")
                letters = "".join(LETTERS[x] for x in u.roles if x in LETTERS)
                style = PATTERN_STYLE.get(u.pattern, "")
                if not r.alive[layer, h]:
                    style += " strike dim"
                cells.append(Text(f"{SHORT.get(u.pattern, u.pattern)} {letters}".strip(),
                                  style=style))
            self.add_row(*cells)


class RoleSurvivalTable(DataTable):
    def __init__(self, result: HeadRolesResult):
        super().__init__(id="roles-survival", cursor_type="row")
        self.result = result

    def on_mount(self) -> None:
        self.add_columns("role", "heads", "kept", "expected", "p", "Holm", "weights kept",
                         "others")
        for s in self.result.survival:
            self.add_row(Text(s.role), str(s.heads), f"{s.kept} of {s.total_kept}",
                         f"{s.expected:.1f}", _p(s.p_value), _p(s.p_adjusted),
                         "–" if s.kept_fraction != s.kept_fraction else f"{s.kept_fraction:.1%}",
                         "–" if s.kept_fraction_others != s.kept_fraction_others
                         else f"{s.kept_fraction_others:.1%}")


def legend() -> Text:
    t = Text("patterns: ")
    for p in PATTERNS:
        t.append(SHORT[p], style=PATTERN_STYLE[p])
        t.append(f" {p}  ")
    t.append("\nletters: F first token, S [SEP], P punctuation, = itself, < previous, > next, "
             "B broad, I induction, p previous-token head; struck through: dead in the round")
    return t


def roles_panes(run: Any) -> list[Widget]:
    """The Roles tab, or nothing when the run holds no stored roles; a roles file that cannot
    be read is one line in the tab (never a traceback out of the app)."""
    from ticketlens.core.errors import TicketlensError, first_line

    try:
        r = stored_roles(run)
    except TicketlensError as exc:
        return [TabPane(TAB_TITLE, VerticalScroll(
            Static(Text(first_line(exc)), id="roles-error", classes="file-error"),
            id="roles-pane"), id=TAB_ID)]
    if r is None:
        return []
    pane = TabPane(TAB_TITLE, VerticalScroll(
        Static(findings_text(r), id="roles-findings"), RolesGrid(r), Static(legend()),
        Static(Text("Survival by role (dense roles; expected by chance: hypergeometric; p: "
                    "Fisher's exact test)")), RoleSurvivalTable(r), id="roles-pane"),
        id=TAB_ID)
    return [pane]
