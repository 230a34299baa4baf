"""``ticketlens sweep``: a grid of ``find`` runs (tasks x models x settings x seeds), run
locally by ``--workers`` processes that share the cores, as Ray tasks (``--ray``) or as a SLURM
job array (``--slurm``), then statistics over seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketlens.cli.args import add_find_flags, find_config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="the sweep's folder (re-running the "
                   "same command skips complete cells and resumes the others)")
    p.add_argument("--seeds", default="0", help="seeds: 0-4, 0,2,7 or 0-2,5 (default: 0)")
    p.add_argument("--tasks", default="", help="comma-separated tasks (default: --task)")
    p.add_argument("--models", default="", help="comma-separated models (default: --model)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2",
                   help="vary a find setting, e.g. prune.rate=0.2,0.3 or train.steps=300it,"
                        "600it; repeatable (the grid is the product)")
    p.add_argument("--grid", default="", help="a TOML grid file: tasks, models, seeds and a "
                   "[set] table (flags above add to it)")
    p.add_argument("--workers", type=int, default=1, help="cells run at once, each with "
                   "cores // workers torch threads (default: 1)")
    p.add_argument("--ray", default="", metavar="auto|ADDRESS", help="run each cell as a Ray "
                   "task on an existing cluster: auto (started here by `ray start`, or "
                   "RAY_ADDRESS), HOST:PORT or ray://HOST:PORT (needs ticketlens[ray]; OUT "
                   "on a file system every node sees)")
    p.add_argument("--slurm", default=None, metavar="PARTITION", help="run the cells as a "
                   "SLURM job array through submitit ('' for the default partition; needs "
                   "ticketlens[slurm]; OUT on a file system every node sees)")
    p.add_argument("--cpus-per-run", type=int, default=1, help="--ray/--slurm: CPUs a cell "
                   "asks for, and its torch threads (default: 1)")
    p.add_argument("--gpus-per-run", type=float, default=None, help="--ray/--slurm: GPUs a "
                   "cell asks for (Ray takes fractions; default: 1 if the Ray cluster has "
                   "GPUs, else 0)")
    p.add_argument("--slurm-time", type=int, default=240, metavar="MINUTES",
                   help="--slurm: a cell's time limit (default: 240)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    add_find_flags(p)


def build_grid(ns: argparse.Namespace):
    from ticketlens.sweep import Grid, parse_seeds, parse_set

    base = find_config_from_args(ns)
    if ns.grid:
        grid = Grid.from_toml(Path(ns.grid), base)
        extra = dict(parse_set(ns.set))
        return Grid(grid.tasks, grid.models, grid.seeds,
                    tuple({**dict(grid.settings), **extra}.items()), base)
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    return Grid(split(ns.tasks) or (base.data.task,), split(ns.models) or (base.model.model,),
                parse_seeds(ns.seeds), parse_set(ns.set), base)


def build_executor(ns: argparse.Namespace):
    from ticketlens.core.errors import ConfigError
    from ticketlens.executors import LocalExecutor, RayExecutor, SlurmExecutor

    if ns.ray and ns.slurm is not None:
        raise ConfigError("--ray and --slurm: choose one")
    if (ns.ray or ns.slurm is not None) and ns.workers != 1:
        raise ConfigError("--workers is for local runs; with --ray or --slurm a cell's "
                          "resources are --cpus-per-run and --gpus-per-run")
    if ns.ray:
        return RayExecutor(ns.ray, ns.cpus_per_run, ns.gpus_per_run)
    if ns.slurm is not None:
        gpus = ns.gpus_per_run or 0
        if gpus != int(gpus):
            raise ConfigError("--gpus-per-run: SLURM takes whole GPUs")
        return SlurmExecutor(ns.slurm, ns.cpus_per_run, int(gpus), ns.slurm_time)
    return LocalExecutor(ns.workers)


def run(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from ticketlens.sweep import run_sweep, validate

    grid = build_grid(ns)
    executor = build_executor(ns)
    cells = validate(grid)  # one line and exit 2 before any run starts
    executor.check()  # the cluster answers, or one line and exit 2
    con = Console(stderr=True, highlight=False, soft_wrap=True)
    done = [0]
    quiet = ns.json

    def on_event(kind: str, cell, rec: dict) -> None:
        if quiet:
            return
        done[0] += 1
        what = f"failed: {rec.get('error')}" if kind == "failed" else \
            f"{rec.get('wall_s', 0):.0f}s"
        con.print(f"[{done[0]}/{pending}] {cell.label}  {kind}  {what}", markup=False)

    from ticketlens.cell import cell_status

    pending = sum(cell_status(c.path(Path(ns.out))) != "complete" for c in cells)
    if not quiet:
        con.print(f"ticketlens sweep: {len(cells)} cells ({len(cells) - pending} already "
                  f"complete), {executor.describe()} -> {ns.out}", markup=False)
    state = run_sweep(grid, ns.out, executor=executor, cells=cells, on_event=on_event)
    failed = [c for c in cells if state.records.get(c.label, {}).get("status") == "failed"]
    from ticketlens.cli.info import show_sweep

    show_sweep(ns.out, as_json=ns.json)
    if failed:
        con.print(f"{len(failed)} cell(s) failed (recorded in {ns.out}/sweep.json); run the "
                  "same command again to retry them", markup=False)
        return 1
    return 0
