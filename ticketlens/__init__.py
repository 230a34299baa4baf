"""ticketlens: find and understand lottery tickets in transformer language models."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "open_run"]


def __getattr__(name: str) -> Any:  # lazy: keep `import ticketlens` (and --help) light
    if name == "open_run":
        from ticketlens.core.run import open_run

        return open_run
    raise AttributeError(name)
