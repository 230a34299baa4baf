"""Progress output of a search: a rich progress bar per phase, a one-line summary per round."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ticketlens.pruning.train import StepCallback


class Reporter:
    """Silent reporter (``--quiet``, library use); subclasses draw."""

    @contextmanager
    def phase(self, label: str, total: int) -> Iterator[StepCallback | None]:
        yield None

    def line(self, text: str) -> None:
        pass


class RichReporter(Reporter):
    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    @contextmanager
    def phase(self, label: str, total: int) -> Iterator[StepCallback | None]:
        if not self.console.is_terminal:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[loss]}"), TimeRemainingColumn(),
                      console=self.console, transient=True) as bar:
            task = bar.add_task(label, total=total, loss="")

            def on_step(done: int, loss: float | None) -> None:
                if loss is not None:
                    bar.update(task, completed=done, loss=f"loss {loss:.3f}")
                else:
                    bar.update(task, completed=done)

            yield on_step

    def line(self, text: str) -> None:
        self.console.print(text)
