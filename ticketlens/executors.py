"""Where a sweep's cells run (``ticketlens.sweep.run_sweep`` takes one of these):

- :class:`LocalExecutor` (default): ``workers`` at once on this machine, each with
  ``cores // workers`` torch threads (``OMP_NUM_THREADS``; never more than the user's
  ``OMP_NUM_THREADS`` when it is set), so it never oversubscribes;
- :class:`RayExecutor`: each cell a Ray task with ``num_cpus``/``num_gpus`` resources on an
  existing cluster, the cell's process started on the node Ray picks with ``num_cpus``
  threads (Ray sets ``CUDA_VISIBLE_DEVICES``);
- :class:`SlurmExecutor`: each cell one task of a SLURM job array, through ``submitit``.

``check()`` runs before any cell starts (a cluster that does not answer is one line, exit 2).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ticketlens.cell import Cell, run_cell, threads_per_worker
from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError, first_line


class Executor(Protocol):
    """Where a sweep's cells run. ``check`` refuses what cannot work (one line,
    :class:`ConfigError`) before any cell starts; ``run`` yields each cell with its record
    (``{"status": "complete" | "failed", ...}``) as the cell ends."""

    def describe(self) -> str: ...

    def check(self) -> None: ...

    def run(self, cells: list[Cell], root: Path,
            base: FindConfig) -> Iterable[tuple[Cell, dict[str, Any]]]: ...


@dataclass(frozen=True)
class LocalExecutor:
    """``workers`` cells at once on this machine, ``cores // workers`` threads each (at most
    ``OMP_NUM_THREADS`` when set: :func:`~ticketlens.cell.threads_per_worker`)."""

    workers: int = 1

    def describe(self) -> str:
        return f"{self.workers} local worker(s)"

    def check(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")

    def run(self, cells: list[Cell], root: Path,
            base: FindConfig) -> Iterable[tuple[Cell, dict[str, Any]]]:
        threads = threads_per_worker(self.workers)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending: dict[Future, Cell] = {pool.submit(run_cell, c, root, base, threads): c
                                           for c in cells}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield pending.pop(f), f.result()


def remote_cell(cell: Cell, root: Path, base: FindConfig, threads: int) -> dict[str, Any]:
    """A cell on the node a cluster picked (a Ray task, a SLURM job): :func:`run_cell`, and
    the node's name. The cell is still its own process: a torch that a Ray worker process
    keeps between tasks would carry one cell's threads and state into the next."""
    return {**run_cell(cell, root, base, threads), "host": socket.gethostname()}


def _optional(module: str, flag: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{flag} needs {module}, which is not installed: pip install "
                          f"'ticketlens[{extra}]'") from None


RAY_PROBE_TIMEOUT_S = 3.0  # a TCP connection to the address
RAY_HANDSHAKE_TIMEOUT_S = 15.0  # ray.init in a child process (Ray's own wait is minutes)
_RAY_HANDSHAKE = ("import logging, sys, ray; ray.init(address=sys.argv[1], "
                  "logging_level=logging.ERROR, log_to_driver=False)")


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    m = re.fullmatch(r"(?:\w+://)?\[?([^\[\]/\s]+?)\]?(?::(\d{1,5}))?/?", address)
    if not m:
        raise ConfigError(f"--ray {address!r}: not an address (auto, HOST:PORT or "
                          "ray://HOST:PORT)")
    return m.group(1), int(m.group(2) or default_port)


@dataclass
class RayExecutor:
    """Each cell a Ray task with ``num_cpus=cpus_per_run`` (and as many torch threads) and
    ``num_gpus=gpus_per_run`` (default: 1 when the cluster has GPUs, else 0) on the cluster
    at ``address`` (``auto``: the one ``ray start`` started here or ``RAY_ADDRESS``;
    ``HOST:PORT``; ``ray://HOST:PORT`` for Ray Client). This process connects for the
    sweep and disconnects at its end; the cluster goes on."""

    address: str = "auto"
    cpus_per_run: int = 1
    gpus_per_run: float | None = None
    _gpus: float = field(default=0.0, init=False, repr=False)
    _owned: bool = field(default=False, init=False, repr=False)

    def describe(self) -> str:
        return (f"Ray at {self.address}, {self.cpus_per_run} CPU(s) and {self._gpus:g} GPU(s) "
                "a run")

    def check(self) -> None:
        import logging

        ray = _optional("ray", "--ray", "ray")
        if self.cpus_per_run < 1:
            raise ConfigError("--cpus-per-run must be at least 1")
        if self.gpus_per_run is not None and self.gpus_per_run < 0:
            raise ConfigError("--gpus-per-run must be 0 or more")
        if not self._owned:  # (a second check keeps the connection)
            if ray.is_initialized():
                raise ConfigError(f"--ray {self.address}: this process is connected to Ray "
                                  "already (ray.shutdown() first)")
            address = self._reachable()
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            self._owned = True
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
        self._gpus = float(self.gpus_per_run if self.gpus_per_run is not None else
                           min(1.0, gpus))
        for flag, want, have in (("--cpus-per-run", self.cpus_per_run, cpus),
                                 ("--gpus-per-run", self._gpus, gpus)):
            if want > have:
                self.close()
                raise ConfigError(f"{flag} {want:g}: no node of the Ray cluster at "
                                  f"{self.address} has that many (the largest has {have:g}); "
                                  "a task asking for it would wait for ever")

    def _reachable(self) -> str:
        """The address to give ``ray.init``, once a Ray cluster answered there (one line if
        not). ``ray.init`` on an address where nothing answers waits minutes and may end the
        process; where something else answers, it retries for 20 s: a TCP probe, then
        ``ray.init`` in a child process with a time limit, answer first."""
        address = self.address
        if address == "auto" or "://" not in address:
            try:  # "auto" -> RAY_ADDRESS or the cluster `ray start` recorded here
                from ray._private.services import canonicalize_bootstrap_address_or_die

                address = canonicalize_bootstrap_address_or_die(address)
            except (ConnectionError, ValueError) as exc:
                raise ConfigError(f"--ray {self.address}: {first_line(exc)}") from None
            except ImportError:  # Ray moved its private helper: ray.init looks it up
                if address == "auto":
                    return address
        host, port = _host_port(address, 10001 if address.startswith("ray://") else 6379)
        try:
            with socket.create_connection((host, port), timeout=RAY_PROBE_TIMEOUT_S):
                pass
        except OSError as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise ConfigError(f"--ray {self.address}: no Ray cluster answers at {host}:{port} "
                              f"({why} after at most {RAY_PROBE_TIMEOUT_S:g} s)") from None
        env = {**os.environ, "RAY_NUM_REDIS_GET_RETRIES": "5"}  # Ray's retries at 1 s each
        try:
            proc = subprocess.run([sys.executable, "-c", _RAY_HANDSHAKE, address], env=env,
                                  capture_output=True, timeout=RAY_HANDSHAKE_TIMEOUT_S)
            ok, err = proc.returncode == 0, proc.stderr
        except subprocess.TimeoutExpired as exc:
            ok, err = False, exc.stderr
        if not ok:
            token = b"AuthToken" in (err or b"")
            raise ConfigError(f"--ray {self.address}: {host}:{port} answers, but no Ray "
                              f"cluster there accepted a connection within "
                              f"{RAY_HANDSHAKE_TIMEOUT_S:g} s" + (
                                  " (it asks for a token: set RAY_AUTH_MODE=token, and "
                                  "RAY_AUTH_TOKEN unless ~/.ray/auth_token holds it)"
                                  if token else ""))
        return address

    def close(self) -> None:
        import ray

        if self._owned and ray.is_initialized():
            ray.shutdown()  # this driver only; the cluster goes on
        self._owned = False

    def run(self, cells: list[Cell], root: Path,
            base: FindConfig) -> Iterable[tuple[Cell, dict[str, Any]]]:
        import ray

        task = ray.remote(remote_cell).options(num_cpus=self.cpus_per_run,
                                               num_gpus=self._gpus)
        refs = {task.remote(c, root, base, self.cpus_per_run): c for c in cells}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    cell = refs.pop(ref)
                    try:
                        rec = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker or its node died
                        rec = {"status": "failed", "error": f"ray: {first_line(exc)}"}
                    yield cell, {**rec, "executor": "ray"}
        finally:
            for ref in refs:  # interrupted: a cancelled cell's find is killed, and resumes
                ray.cancel(ref)
            self.close()


@dataclass(frozen=True)
class SlurmExecutor:
    """Each cell one task of a SLURM job array (``submitit``), ``cpus_per_run`` CPUs (and
    torch threads), ``gpus_per_run`` GPUs, ``time_min`` minutes; submitit's files in
    ``OUT/.submitit``. ``cluster="local"``: submitit's LocalExecutor (jobs on this machine,
    for trying a sweep out)."""

    partition: str = ""
    cpus_per_run: int = 1
    gpus_per_run: int = 0
    time_min: int = 240
    cluster: str = "slurm"

    def describe(self) -> str:
        where = f"partition {self.partition}" if self.partition else "default partition"
        return (f"SLURM ({self.cluster}, {where}), {self.cpus_per_run} CPU(s) and "
                f"{self.gpus_per_run} GPU(s) a run")

    def check(self) -> None:
        _optional("submitit", "--slurm", "slurm")
        if self.cpus_per_run < 1 or self.gpus_per_run < 0 or self.time_min < 1:
            raise ConfigError("--cpus-per-run and --slurm-time must be at least 1, "
                              "--gpus-per-run 0 or more")
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("--slurm: no SLURM here (sbatch is not on PATH); start the "
                              "sweep on a login node of the cluster")

    def run(self, cells: list[Cell], root: Path,
            base: FindConfig) -> Iterable[tuple[Cell, dict[str, Any]]]:
        import submitit

        if not cells:
            return
        ex = submitit.AutoExecutor(folder=root / ".submitit", cluster=self.cluster)
        ex.update_parameters(name="ticketlens-sweep", timeout_min=self.time_min, nodes=1,
                             tasks_per_node=1, cpus_per_task=self.cpus_per_run,
                             gpus_per_node=self.gpus_per_run,
                             **({"slurm_partition": self.partition} if self.partition
                                else {}))
        n = len(cells)
        jobs = ex.map_array(remote_cell, cells, [root] * n, [base] * n,
                            [self.cpus_per_run] * n)
        cell_of = {job.job_id: c for job, c in zip(jobs, cells, strict=True)}
        poll = 10.0 if self.cluster == "slurm" else 0.5  # sacct is polled; be gentle
        try:
            for job in submitit.helpers.as_completed(jobs, poll_frequency=poll):
                try:
                    rec = job.result()
                except Exception as exc:  # killed, timed out, preempted: it resumes next time
                    rec = {"status": "failed", "error": f"job {job.job_id}: "
                           f"{first_line(exc)}"}
                yield cell_of[job.job_id], {**rec, "executor": "slurm", "job": job.job_id}
        finally:
            for job in jobs:
                if not job.done():
                    job.cancel(check=False)


