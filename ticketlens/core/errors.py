"""The one exception family users see as a single clear line (see ``ticketlens.cli.main``)."""

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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
