"""The one exception family users see as a single clear line (see ``ticketlens.cli.main``).

Every error the library raises on purpose is a :class:`TicketlensError`; the CLI prints it as
``ticketlens: error: <message>`` (exit code 2) and the TUI shows its message, neither wraps it
again. Analyses raise :class:`AnalysisError`.
"""

from __future__ import annotations


class TicketlensError(Exception):
    """A problem with the user's input or files: printed as one line, exit code 2."""


class ConfigError(TicketlensError):
    """An option value is out of range or inconsistent."""


class RunFormatError(TicketlensError):
    """A run directory or one of its files is missing, corrupt or of another model."""


class DataError(TicketlensError):
    """A task or data file cannot be read as asked."""


class ModelError(TicketlensError):
    """A model cannot be found, loaded or understood."""


class AnalysisError(TicketlensError, ValueError):
    """An analysis cannot be computed on the inputs given (too few tickets, tickets of
    different architectures, an unknown ``by=`` level, a run without the round or arm asked
    for). Also a ``ValueError``, so code written when analyses raised ``ValueError`` still
    catches it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
