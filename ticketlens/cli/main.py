"""``ticketlens`` entry point: subcommands, and the one place errors are formatted.

Heavy libraries (torch, transformers) are imported only inside the command that runs, so
``ticketlens --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ticketlens.core.version import __version__

# subcommand -> (module, one-line help)
COMMANDS = {
    "find": ("ticketlens.cli.find", "search for a lottery ticket by iterative magnitude pruning"),
    "info": ("ticketlens.cli.info", "show a run's rounds, controls and verdict"),
    "verify": ("ticketlens.cli.verify", "read every file of runs and check them against "
               "their record (exit 2 on the first problem)"),
    "sweep": ("ticketlens.cli.sweep", "a grid of find runs (tasks x models x settings x "
              "seeds) on local workers, Ray or SLURM, with statistics over seeds"),
    "compare": ("ticketlens.cli.compare", "overlap of tickets across seeds and tasks, with "
                "chance levels"),
    "import": ("ticketlens.cli.import_", "import masks made by other tools as runs"),
    "attribute": ("ticketlens.cli.attribute", "token and unit attribution, dense vs ticket "
                  "(captum)"),
    "inspect": ("ticketlens.cli.inspect", "browse runs layer by layer in a terminal UI"),
    "report": ("ticketlens.cli.report", "write one self-contained HTML report of runs"),
    "export": ("ticketlens.cli.export", "write a ticket as a Hugging Face model folder, smaller when whole heads or neurons are pruned"),
    "transfer": ("ticketlens.cli.transfer", "train a run's ticket on another task, beside "
                 "dense and a random mask"),
    "roles": ("ticketlens.cli.roles", "what each attention head attends to, its pattern "
              "type, and which roles the ticket keeps against chance"),
    "prune": ("ticketlens.cli.prune", "one-shot Wanda / SparseGPT of a model folder, one "
              "layer at a time (models bigger than memory allows twice), optionally to int4"),
    "compress": ("ticketlens.cli.compress", "dense and ticket quantized and distilled: metric, "
                 "bytes on disk, the 8-cell table and its Pareto front"),
    "stability": ("ticketlens.cli.stability", "instability analysis: the error barrier between "
                  "two copies trained from each rewind point (Frankle et al. 2020)"),
    "circuit": ("ticketlens.cli.circuit", "the ticket as a circuit: ablate what it removed in "
                "the dense model, against attribution's and random units"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with ``only``, the options of that one alone (the
    others keep their one-line help; ``""``: none), so a command imports no other command's
    module and ``ticketlens --help`` none at all."""
    parser = argparse.ArgumentParser(
        prog="ticketlens",
        description="Find and understand lottery tickets in transformer language models.",
    )
    parser.add_argument("--version", action="version", version=f"ticketlens {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else "")  # "": no command's options
    ns = parser.parse_args(argv)
    if not getattr(ns, "command", None):
        parser.print_help()
        return 2
    debug = ns.debug
    try:
        return int(importlib.import_module(ns._module).run(ns) or 0)
    except KeyboardInterrupt:
        print("ticketlens: interrupted (a `find` resumes when run again with the same options)",
              file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        from ticketlens.core.errors import TicketlensError, first_line

        if isinstance(exc, TicketlensError):
            print(f"ticketlens: error: {exc}", file=sys.stderr)
            return 2
        print(f"ticketlens: internal error: {type(exc).__name__}: {first_line(exc)} "
              "(re-run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
