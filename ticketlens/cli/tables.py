"""Terminal tables that fit 80 columns without cutting a word or a name."""

from __future__ import annotations

from typing import Any


def fitted(table: Any, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
    """Add ``columns`` (header, justify) and ``rows`` to ``table``, each column at least as
    wide as its longest word, so that at 80 columns cells wrap between words and no word or
    name is cut ("faithfuln…")."""
    for i, (head, justify) in enumerate(columns):
        cells = [r[i] for r in rows]
        word = max((len(w) for text in (head, *cells) for w in text.split()), default=1)
        if all(len(c.split()) <= 1 for c in cells):  # one word a cell: exactly its width,
            table.add_column(head, justify=justify, width=max([word, *map(len, cells)]))
        else:  # the header wraps over it; cells of several words wrap between them
            table.add_column(head, justify=justify, min_width=word)
    for r in rows:
        table.add_row(*r)
