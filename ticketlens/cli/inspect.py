"""``ticketlens inspect PATH...``: browse runs layer by layer in the terminal."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="run directories or folders of runs")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.tui.app import create_app

    create_app(ns.paths).run()
    return 0
