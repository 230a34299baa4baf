"""Instability analysis (#22 item 7): the time of ``ticketlens stability`` with 11 points on
one round of tiny-bert, against the time that round took to train in ``find``. Goal: <= 3x
one round's training time per start point (two copies are two rounds of training, plus 11
evaluations of the dev set).

tiny-bert on the built-in sentiment task with its default steps and learning rate, one pruned
round (50%), rewind 5% of the steps (the default for a model trained from scratch), controls
off; one torch thread. The barriers are recorded beside the times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.benchmark


def test_stability_of_one_round_of_tiny_bert(tmp_path, record):
    from ticketlens.core.run import open_run
    from ticketlens.pruning.stability import stability
    from ticketlens.pruning.train import plan_threads, torch_threads

    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "ticketlens", "find", "--quiet", "--no-controls",
                    "--rate", "0.5", "--target-sparsity", "0.5", "--out", str(out)],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    run = open_run(out)
    round_s = run.rounds[1].wall_time_s  # training only, as `find` recorded it
    load = os.getloadavg()[0]
    with torch_threads(plan_threads()) as threads:
        t0, c0 = time.perf_counter(), time.process_time()
        res = stability(run, points=11)  # init, rewind, reinit
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    curves = {c.start: c for c in res.curves}
    # against the round as `find` timed it (another process, another moment: on a shared
    # machine the load may differ), and against itself: each copy trains exactly one round's
    # schedule from its start, so half the copies' time is one round in the same conditions
    per_start = {s: round((c.train_wall_time_s + c.eval_wall_time_s) / round_s, 2)
                 for s, c in curves.items()}
    per_start_self = {s: round((c.train_wall_time_s + c.eval_wall_time_s)
                               / (c.train_wall_time_s / 2), 2) for s, c in curves.items()}
    record("stability_tiny_bert", {
        "round_train_s": round_s, "steps": res.total_steps, "points": res.points,
        "load_avg_1min_before": round(load, 2), "threads": threads.torch_threads,
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "total_s_3_starts": round(total, 1), "cpu_s_3_starts": round(cpu, 1),
        "per_start_over_round": per_start,
        "per_start_over_own_round": per_start_self,
        "eval_s_11_points": {s: c.eval_wall_time_s for s, c in curves.items()},
        "error_barrier": {s: round(c.error_barrier, 4) for s, c in curves.items()},
        "loss_barrier": {s: round(c.loss_barrier, 4) for s, c in curves.items()},
        "ends_metric": {s: [c.metric[0], c.metric[-1]] for s, c in curves.items()},
        "dense": run.rounds[0].metrics["accuracy"], "ticket": run.rounds[1].metrics["accuracy"],
    })
