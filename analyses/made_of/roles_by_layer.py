"""Is the depletion of vertical / [CLS] heads in MiniLM's structured tickets only where the
ticket prunes whole layers harder? The pooled exact test of ``tl.head_roles_over`` with every
(run, layer) as its own stratum: within each layer, are the role's heads kept less than the
layer's heads are? Reads the runs' stored roles (``ticketlens roles --save``).

    python analyses/made_of/roles_by_layer.py runs/made-of-roles/sst2

First the per-layer means over the runs' dense heads (attention to [CLS], [SEP], punctuation,
the previous token, normalised entropy; vertical heads and heads kept per layer), then the
test.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy import stats

import ticketlens as tl


def pooled_p(strata: list[tuple[int, int, int]], kept: int) -> float:
    """Two-sided p of the kept count summed over strata (role heads, heads, heads kept),
    each stratum's count hypergeometric: their pmfs convolved."""
    pmf = np.ones(1)
    for n, total, total_kept in strata:
        pmf = np.convolve(pmf, stats.hypergeom.pmf(np.arange(n + 1), total, n, total_kept))
    return min(1.0, 2 * min(pmf[kept:].sum(), pmf[:kept + 1].sum()))


def layer_table(results: list) -> None:
    """Mean per layer over the runs' dense heads (each run's heads weigh the same)."""
    layers = range(results[0].num_layers)
    rows = [("to [CLS] (the first token)", lambda h: h.first, ".3f"),
            ("to [SEP]", lambda h: h.sep, ".3f"), ("to punctuation", lambda h: h.punct, ".3f"),
            ("to the previous token", lambda h: h.prev, ".3f"),
            ("entropy / log n", lambda h: h.entropy_norm, ".2f")]
    print("| layer | " + " | ".join(str(x) for x in layers) + " |")
    print("|---|" + "---|" * len(layers))
    for name, get, f in rows:
        vals = [np.nanmean([get(h) for res in results for h in res.dense if h.layer == x])
                for x in layers]
        print(f"| {name} | " + " | ".join(format(v, f) for v in vals) + " |")
    for name, count in (
            (f"vertical heads (of {results[0].num_heads})",
             lambda res, x: sum(h.pattern == "vertical" for h in res.dense if h.layer == x)),
            (f"heads kept in the ticket (of {results[0].num_heads})",
             lambda res, x: int(np.asarray(res.alive)[x].sum()))):
        vals = [np.mean([count(res, x) for res in results]) for x in layers]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    print()


def main(folder: str) -> None:
    results = [tl.HeadRolesResult.from_dict(json.loads(r.paths.roles.read_text()))
               for r in tl.runs(folder)]
    layer_table(results)
    print("| role | strata (run x layer) | kept | heads | expected within layers | "
          "p (pooled exact, two-sided) |")
    print("|---|---|---|---|---|---|")
    for role in ("vertical", "first", "heterogeneous"):
        strata, kept = [], 0
        for res in results:
            for layer in range(res.num_layers):
                heads = [h for h in res.dense if h.layer == layer]
                alive = [bool(res.alive[layer, h.head]) for h in heads]
                n = sum(role in h.roles for h in heads)
                if n == 0:
                    continue
                kept += sum(a for h, a in zip(heads, alive) if role in h.roles)
                strata.append((n, len(heads), sum(alive)))
        expected = sum(n * k / t for n, t, k in strata)
        print(f"| {role} | {len(strata)} | {kept} | {sum(n for n, _, _ in strata)} | "
              f"{expected:.1f} | {pooled_p(strata, kept):.2g} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/made-of-roles")
