"""Sweeps on a cluster: `--ray` on a real local Ray instance that this module starts, and
`--slurm` through submitit's LocalExecutor. A cell run there is the cell run locally (mask
bytes); a cluster that does not answer, or a missing extra, is one line and exit 2 before any
run. The cluster tests skip when ray / submitit are not installed (ticketlens[ray], [slurm]);
the ones that run cells are marked slow (``make slow``): ~75 s together on 2 idle cores."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from ticketlens.cli.main import main

# tiny cells (each ~10 s on a loaded 2-core machine, mostly process start); steps=1it is
# refused when the cell starts (--rewind 2it is past its end): a failed cell, cheaply
TINY = ["--train-size", "64", "--dev-size", "64", "--batch-size", "16", "--rate", "0.5",
        "--target-sparsity", "0.5", "--rewind", "2it", "--no-controls"]


def _files(run: Path) -> dict[str, bytes]:
    """A run's mask files and the metrics of its rounds (what a user compares)."""
    rounds = json.loads((run / "manifest.json").read_text())["rounds"]
    files = {p.name: p.read_bytes() for p in sorted((run / "masks").iterdir())}
    return {**files, "metrics": json.dumps([r.get("metrics") for r in rounds]).encode()}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    """The reference: two seeds on the local executor, 1 torch thread each (a worker a
    core), as the cluster cells below."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    proc = run_cli("sweep", "-o", str(out), "--seeds", "0-1", "--set", "train.steps=6it",
                   "--workers", str(len(os.sched_getaffinity(0))), "--json", *TINY)
    assert proc.returncode == 0, proc.stderr
    return out


@contextlib.contextmanager
def ray_instance(num_cpus: int = 2) -> Iterator[str]:
    """A Ray instance with token authentication (Ray's default for local clusters from 2.59),
    started by a child process (its driver: this process never imports ray) and stopped when
    its stdin closes; yields its address. Inside, the environment connects as a user of such
    a cluster does: ``RAY_AUTH_MODE=token`` and the token in ``RAY_AUTH_TOKEN``."""
    code = (f"import logging, sys, ray; c = ray.init(num_cpus={num_cpus}, "
            "include_dashboard=False, logging_level=logging.ERROR); "
            "print(c.address_info['gcs_address'], flush=True); sys.stdin.read(); "
            "ray.shutdown()")
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def ray_address():
    pytest.importorskip("ray")
    with ray_instance(2) as address:
        yield address


def _one_line_exit_2(capsys, argv: list[str], needle: str, out: Path) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err, err
    assert not out.exists()  # before any run


@pytest.mark.slow  # a Ray instance and tiny runs: ~60 s on 2 idle cores
def test_ray_cells_equal_local_cells_and_failures_are_recorded(local_sweep, ray_address,
                                                                tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "-o", str(out), "--seeds", "0-1", "--ray", ray_address,
            "--cpus-per-run", "1", *TINY]
    proc = run_cli(*args, "--set", "train.steps=6it,1it")
    assert proc.returncode == 1, proc.stderr  # the two 1it cells failed
    assert f"4 cells (0 already complete), Ray at {ray_address}, 1 CPU(s) and 0 GPU(s)" in \
        proc.stderr
    assert [ln.split()[0] for ln in proc.stderr.splitlines() if ln.startswith("[")] == [
        "[1/4]", "[2/4]", "[3/4]", "[4/4]"]  # progress for the whole grid
    cells = {c["path"]: c for c in json.loads((out / "sweep.json").read_text())["cells"]}
    for seed in (0, 1):
        ok = cells[f"sentiment/tiny-bert/steps=6it/s{seed}"]
        assert ok["status"] == "complete" and ok["executor"] == "ray" and ok["threads"] == 1
        assert ok["host"] == socket.gethostname()
        assert _files(out / ok["path"]) == _files(local_sweep / f"sentiment/tiny-bert/steps=6it/s{seed}")
        bad = cells[f"sentiment/tiny-bert/steps=1it/s{seed}"]
        assert bad["status"] == "failed" and "--rewind 2it is at or past the end" in \
            bad["error"]
    # the complete cells again: skipped, nothing rewritten, the statistics over seeds
    before = (out / "sentiment/tiny-bert/steps=6it/s0/manifest.json").read_bytes()
    again = run_cli(*args, "--set", "train.steps=6it", "--json")
    assert again.returncode == 0, again.stderr
    assert (out / "sentiment/tiny-bert/steps=6it/s0/manifest.json").read_bytes() == before
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    assert [(c["status"], c.get("skipped")) for c in cells] == [("complete", True)] * 2
    assert json.loads(again.stdout)["statistics"]["groups"][0]["seeds"] == [0, 1]


def test_a_ray_address_that_does_not_answer_is_one_line_before_any_run(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sweep"
    proc = run_cli("sweep", "-o", str(out), "--ray", f"127.0.0.1:{port}", *TINY, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f":{port} (Connection refused" in proc.stderr
    assert not out.exists()


@pytest.mark.slow  # a Ray instance and tiny runs: ~60 s on 2 idle cores
def test_a_ray_cell_too_big_for_every_node_is_refused(ray_address, tmp_path):
    out = tmp_path / "sweep"
    proc = run_cli("sweep", "-o", str(out), "--ray", ray_address, "--gpus-per-run", "1",
                   *TINY, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"--gpus-per-run 1: no node of the Ray cluster at {ray_address} has that many " \
           "(the largest has 0)" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(("flag", "module", "extra"), [
    (["--ray", "auto"], "ray", "ray"), (["--slurm", ""], "submitit", "slurm")])
def test_without_the_extra_the_flag_is_one_line(tmp_path, capsys, monkeypatch, flag, module,
                                                extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import ray` raises ImportError
    out = tmp_path / "sweep"
    _one_line_exit_2(capsys, ["sweep", "-o", str(out), *flag, *TINY],
                     f"needs {module}, which is not installed: pip install "
                     f"'ticketlens[{extra}]'", out)


def test_slurm_without_slurm_and_bad_combinations_are_one_line(tmp_path, capsys,
                                                               monkeypatch):
    pytest.importorskip("submitit")
    out = tmp_path / "sweep"
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    _one_line_exit_2(capsys, ["sweep", "-o", str(out), "--slurm", "gpu", *TINY],
                     "--slurm: no SLURM here (sbatch is not on PATH)", out)
    _one_line_exit_2(capsys, ["sweep", "-o", str(out), "--slurm", "", "--ray", "auto", *TINY],
                     "--ray and --slurm: choose one", out)
    _one_line_exit_2(capsys, ["sweep", "-o", str(out), "--ray", "auto", "--workers", "2",
                              *TINY], "--workers is for local runs", out)


@pytest.mark.slow  # tiny runs as submitit jobs: ~15 s, with the local reference
def test_submitit_local_executor_runs_the_cells_like_local(local_sweep, tmp_path):
    """The SLURM executor's code path (job array, results, failures) on submitit's
    LocalExecutor: the same cells as the local executor, and a failed cell recorded."""
    pytest.importorskip("submitit")
    from ticketlens.cli.main import build_parser
    from ticketlens.cli.sweep import build_grid
    from ticketlens.executors import SlurmExecutor
    from ticketlens.sweep import run_sweep

    out = tmp_path / "sweep"
    grid = build_grid(build_parser().parse_args(
        ["sweep", "-o", str(out), "--set", "train.steps=6it,1it", *TINY]))
    state = run_sweep(grid, out, executor=SlurmExecutor(cluster="local"))
    ok = state.records["sentiment/tiny-bert/steps=6it/s0"]
    assert ok["status"] == "complete" and ok["executor"] == "slurm" and ok["job"]
    assert _files(tmp_path / "sweep/sentiment/tiny-bert/steps=6it/s0") == _files(
        local_sweep / "sentiment/tiny-bert/steps=6it/s0")
    bad = state.records["sentiment/tiny-bert/steps=1it/s0"]
    assert bad["status"] == "failed" and "--rewind 2it is at or past the end" in bad["error"]
    assert (tmp_path / "sweep/.submitit").is_dir()
