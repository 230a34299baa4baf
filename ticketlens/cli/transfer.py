"""``ticketlens transfer RUN --task OTHER``: train a ticket on another task (Chen et al. 2020)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketlens.cli.args import add_dataclass_flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ticketlens.core.config import DataConfig

    p.add_argument("run", help="the source run (made by `ticketlens find`)")
    p.add_argument("-o", "--out", help="run directory to write (default: "
                   "<run>-to-<task>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out run")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    add_dataclass_flags(p, DataConfig, "data.")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.cli.args import find_config_from_args
    from ticketlens.core.errors import ConfigError
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.transfer import transfer

    data = find_config_from_args(ns).data
    if not hasattr(ns, "data.task"):
        raise ConfigError("transfer needs --task (the task to train the ticket on)")
    out = Path(ns.out) if ns.out else Path(f"{str(ns.run).rstrip('/')}-to-{Path(data.task).stem}")
    reporter = Reporter() if ns.quiet else RichReporter()
    transfer(ns.run, data, out, reporter=reporter, overwrite=ns.overwrite)
    if ns.quiet:
        from ticketlens.core.run import open_run

        v = open_run(out).verdict
        print(f"{'transfers' if v and v.winning else 'does not transfer'}: "
              f"{v.reason if v else ''}")
    else:
        reporter.line(f"look at it: ticketlens info {out}")
    return 0
