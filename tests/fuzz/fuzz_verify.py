"""Mutation fuzz of ``ticketlens verify`` on a run that records its files' SHA-256 (issue 23).

Each input is a copy of the run with one change of a kind the issue's fuzz found or could
find: a kept bit swapped with a pruned one in any mask file (counts and nesting unchanged),
one bit flipped in any file, or a file path in the manifest replaced by a non-path (a number,
a list, an absolute or escaping path, null). Every change must be named: exit 2 with one
line; the only exit 0 allowed is ``null`` in an optional path (a round's or a control's
``mask``, ``rewind.weights``: "no such file", which the schema allows; the file stays
hash-checked). Never exit 1 (an internal error).

    python tests/fuzz/fuzz_verify.py RUN [N]     # N inputs (default 2000), seed 0
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np

from ticketlens.cli.main import main
from ticketlens.core.masks import load_masks, save_masks

BAD_PATHS = (-1e-09, 5, None, True, [], {}, "/etc/passwd", "../x")
OPTIONAL = ("mask", "weights")  # a round's / control's mask, rewind.weights: null allowed


def mutate(run: Path, rng: random.Random) -> tuple[str, object]:
    """Change ``run`` in place; returns the kind of change and what was set (paths)."""
    m = json.loads((run / "manifest.json").read_text())
    kind = rng.choice(["swap", "byte", "path"])
    if kind == "swap":
        f = rng.choice(sorted((run / "masks").glob("*.safetensors")))
        masks = {n: a.copy() for n, a in load_masks(f).items()}
        a = masks[rng.choice(sorted(masks))].reshape(-1)
        kept, pruned = np.flatnonzero(a), np.flatnonzero(~a)
        if not (len(kept) and len(pruned)):  # round 0 keeps every weight: nothing to swap
            return "none", None
        a[rng.choice(list(kept))], a[rng.choice(list(pruned))] = False, True
        tag = {"round": str(int(f.stem.split("_")[1].split(".")[0]))} if \
            f.stem.startswith("round") else {"control": f.stem[len("control_"):]}
        save_masks(f, masks, **tag)
        return kind, None
    if kind == "byte":
        f = rng.choice(sorted(p for p in run.rglob("*") if p.is_file() and
                              p.name != "manifest.json"))
        b = bytearray(f.read_bytes())
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        f.write_bytes(bytes(b))
        return kind, None
    spots = [("weights", k) for k in m["weights"]] + \
        [("controls", c, "mask") for c, a in m["controls"].items() if a.get("mask")] + \
        [("rounds", r, "mask") for r in range(len(m["rounds"]))] + [("rewind", "weights")]
    spot = rng.choice(spots)
    node = m
    for k in spot[:-1]:
        node = node[k]
    value = rng.choice(BAD_PATHS)
    node[spot[-1]] = value
    (run / "manifest.json").write_text(json.dumps(m))
    return kind, (spot, value)


def verify_exit(run: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["verify", str(run)])
    return rc, err.getvalue()


def fuzz(src: Path, n: int, work: Path, seed: int = 0) -> dict[tuple[str, int], int]:
    """Exit codes by kind of change over ``n`` inputs; raises AssertionError on a bug."""
    rng = random.Random(seed)
    counts: dict[tuple[str, int], int] = {}
    for _ in range(n):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(src, work)
        kind, what = mutate(work, rng)
        rc, err = verify_exit(work)
        counts[(kind, rc)] = counts.get((kind, rc), 0) + 1
        allowed = (rc == 2 and err.count("\n") == 1) or (rc == 0 and kind == "none") or (
            rc == 0 and kind == "path" and what[1] is None and what[0][0] != "weights")
        assert allowed, (kind, what, rc, err)
    return counts


if __name__ == "__main__":
    src = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    result = fuzz(src, n, src.parent / f".{src.name}.fuzz")
    for (kind, rc), count in sorted(result.items()):
        print(f"{kind:5} exit {rc}: {count}")
