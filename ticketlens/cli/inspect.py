"""``ticketlens inspect PATH...``: browse runs layer by layer in the terminal."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="run directories or folders of runs")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.tui.app import create_app

    app = create_app(ns.paths)
    app.run()
    return app.return_code or 0  # Textual sets 1 after a crash (and prints the traceback)
