"""``make fuzz``: the reader properties of ``tests/test_fuzz.py`` on 19,000 inputs.

Every family (run manifests, mask files, the four import formats) draws its generated and
mutated inputs from the same hypothesis strategies as the default tests, many more of them.
Each input must read or fail in one line (see ``test_fuzz``), within ``--timeout`` seconds;
the process must stay under ``--max-rss-mb``. Prints the inputs and the time per family, and
any failure with its smallest input; exits 1 on a failure.

    python tests/fuzz/fuzz_readers.py [--scale 0.1] [--only npz]
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: test_fuzz, conftest

import test_fuzz as F
from hypothesis import given, settings

# inputs per family at --scale 1: 19,000 in all, ~10 minutes on 2 cores (a manifest input
# runs six commands and the readers, a mask file input four reads)
EXAMPLES = {"manifests": 3000, "mask files": 10000, "npz": 1500, "safetensors": 1500,
            "torch-prune": 1500, "bert-experiments": 1500}


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang("one input ran past --timeout")


def fuzz(name: str, strategy: Any, check: Callable[[Any], None], n: int,
         timeout: float) -> tuple[int, float, float, BaseException | None]:
    """Run ``check`` on ``n`` inputs of ``strategy``: (inputs run, seconds, slowest input in
    seconds, the failure or None)."""
    count, slowest = 0, 0.0

    def one(inp: Any) -> None:
        nonlocal count, slowest
        count += 1
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            check(inp)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.perf_counter() - start)

    one.__name__ = f"fuzz_{name.replace(' ', '_').replace('-', '_')}"
    test = settings(F.fuzz_settings(n), database=None)(given(strategy)(one))
    start = time.perf_counter()
    try:
        test()
        failure = None
    except Exception as exc:  # the property failed: hypothesis printed the smallest input
        failure = exc
    return count, time.perf_counter() - start, slowest, failure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="times the default inputs")
    p.add_argument("--only", choices=list(EXAMPLES), action="append", help="these families")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds one input may take")
    p.add_argument("--max-rss-mb", type=float, default=2048.0, help="peak memory allowed")
    ns = p.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    # hypothesis warns that a strategy holding a real file has a long repr (it is not shown)
    warnings.filterwarnings("ignore", "Generating overly large repr")
    with tempfile.TemporaryDirectory(prefix="ticketlens-fuzz-") as tmp:
        root = Path(tmp)
        runs = F.make_run_dirs(root / "runs")
        (root / "masks").mkdir()
        checks: dict[str, tuple[Any, Callable[[Any], None]]] = {
            "manifests": (F.manifest_inputs(), lambda inp: F.check_manifest(runs, *inp)),
            "mask files": (F.mask_inputs(), lambda inp: F.check_mask_file(root / "masks", inp)),
            **{fmt: (strategy, F.check_import) for fmt, strategy in F.IMPORTS.items()},
        }
        total, failed, wall = 0, [], time.perf_counter()
        for name in ns.only or EXAMPLES:
            n = max(1, round(EXAMPLES[name] * ns.scale))
            count, seconds, slowest, failure = fuzz(name, *checks[name], n, ns.timeout)
            total += count
            print(f"fuzz: {name:<17} {count:>6} inputs {seconds:7.1f} s  (slowest "
                  f"{slowest:.2f} s)  {'FAILED' if failure else 'ok'}", flush=True)
            if failure:
                traceback.print_exception(failure, file=sys.stdout)
                failed.append(name)
    wall = time.perf_counter() - wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if peak_mb > ns.max_rss_mb:
        failed.append(f"peak memory {peak_mb:.0f} MB > {ns.max_rss_mb:.0f} MB")
    print(f"fuzz: {total} inputs in {wall:.1f} s; peak memory {peak_mb:.0f} MB; "
          + (f"FAILED: {', '.join(failed)}" if failed else "no failure"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
