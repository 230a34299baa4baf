"""The version of ticketlens, recorded in every file it writes (``ticketlens_version``).

Here in the core layer so that the layers that record it (pruning's manifest, the importers,
the exporter, the report) need not import the package root, which sits above them all.
Keep it equal to ``version`` in ``pyproject.toml``."""

__version__ = "0.1.0"
