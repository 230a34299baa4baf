"""The tables of the SmolLM2 one-shot study (``smollm2_oneshot.sh``): held-out perplexity of
the dense model and of its six one-shot tickets (magnitude, Wanda, SparseGPT x 50%
unstructured, 2:4; no training), and which head roles each ticket keeps more (or less) of than
chance. Reads the runs and the roles ``ticketlens roles --save`` stored in them.

    python analyses/made_of/smollm2_oneshot.py runs/smollm2-oneshot

"Kept" for a weight ticket is each head's kept fraction of its Q, K, V and O weights (GQA: the
query head's Q rows and O columns, its key/value group's K and V rows), compared per role
against the other heads by ``tl.head_roles``' permutation test over heads (Holm over roles).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import ticketlens as tl

METHODS = ("magnitude", "wanda", "sparsegpt")
PATTERNS = (("unstructured", "50% unstructured"), ("2of4", "2:4"))
ROLES = (("induction", "induction"), ("previous_token", "previous-token"),
         ("first", "sink (first token)"), ("broad", "broad"))
PARTS = "qkvo"


def held_out_tokens(run: tl.Run) -> tuple[int, int]:
    """(snippets, predicted tokens) of the run's dev split as ``evaluate_lm`` counts them:
    the task loaded as ``find`` loads it, every snippet cut at ``max_length``, all but its
    first token predicted."""
    from ticketlens.data.tasks import load_task
    from ticketlens.data.tokenizer import TextTokenizer

    cfg = tl.FindConfig.from_dict(dict(run.manifest.config))
    task = load_task(cfg.data, run.manifest.model.objective)
    tok = TextTokenizer.from_file(run.paths.tokenizer, kind="model")
    ids = tok.encode(task.dev.texts, None, cfg.data.max_length).input_ids
    return len(ids), sum(max(0, len(x) - 1) for x in ids)


def perplexity_table(runs: dict[tuple[str, str], tuple[tl.Run, dict]]) -> None:
    first = next(iter(runs.values()))[1]
    dense = first["rounds"][0]["metrics"]["perplexity"]
    cal = first["rounds"][1]["calibration"]
    n, tokens = held_out_tokens(next(iter(runs.values()))[0])
    print(f"held out: {n} AG News test snippets, {tokens:,} predicted tokens; calibration: "
          f"{cal['count']} training snippets, {cal['tokens']:,} tokens, seed {cal['seed']} "
          f"(sha256 {cal['sha256'][:12]}...)")
    print("\n| ticket | sparsity | held-out perplexity | x dense | median relative squared output "
          "error of a matrix (calibration) | pruning time (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| dense | 0% | {dense:.2f} | 1.00 | - | - |")
    for (method, pat), (_, m) in runs.items():
        r1 = m["rounds"][1]
        ppl = r1["metrics"]["perplexity"]
        assert abs(ppl / r1["oneshot"]["metrics"]["perplexity"] - 1) < 1e-6
        err = np.median([x["rel_error"] for x in r1["oneshot"]["layers"]])
        print(f"| {method} {dict(PATTERNS)[pat]} | {r1['sparsity']:.1%} | {ppl:.2f} | "
              f"{ppl / dense:.2f} | {err:.4f} | {r1['oneshot']['seconds']:.0f} |")


def role_table(runs: dict[tuple[str, str], tuple[tl.Run, dict]],
               roles: dict[tuple[str, str], tl.HeadRolesResult]) -> None:
    dense = next(iter(roles.values())).dense
    for res in roles.values():  # the same dense model, inputs and seed in every run
        assert [h.roles for h in res.dense] == [h.roles for h in dense]
    counts = {r: sum(r in h.roles for h in dense) for r, _ in ROLES}
    print("\n| ticket | " + " | ".join(f"{label} ({counts[r]} heads)" for r, label in ROLES)
          + " |")
    print("|---|" + "---|" * len(ROLES))
    for key, res in roles.items():
        cells = []
        for role, _ in ROLES:
            s = next((x for x in res.survival if x.role == role), None)
            if s is None or np.isnan(s.p_kept_fraction):
                cells.append("-")
                continue
            diff = 100 * (s.kept_fraction - s.kept_fraction_others)
            star = " **" if s.p_kept_fraction_adjusted < res.alpha else ""
            cells.append(f"{s.kept_fraction:.2%} vs {s.kept_fraction_others:.2%} "
                         f"({diff:+.2f} pt; p {s.p_kept_fraction:.2g}, Holm "
                         f"{s.p_kept_fraction_adjusted:.2g}){star}")
        print(f"| {key[0]} {dict(PATTERNS)[key[1]]} | " + " | ".join(cells) + " |")
    print("(** Holm-adjusted p < 0.05; chance: random head sets of the same size, "
          f"{next(iter(roles.values())).to_dict()['kept_fraction_test']['resamples']} "
          "permutations)")


def part_table(runs: dict[tuple[str, str], tuple[tl.Run, dict]],
               roles: dict[tuple[str, str], tl.HeadRolesResult]) -> None:
    """Kept share of each part (Q, K, V, O) for the induction heads and the others, and
    the spread of the per-layer means of the heads' kept fractions."""
    print("\n| ticket | induction heads Q / K / V / O kept | other heads Q / K / V / O | "
          "head kept fraction: sd over heads | per-layer mean: min - max |")
    print("|---|---|---|---|---|")
    for key, (run, _) in runs.items():
        res = roles[key]
        surv = tl.survival(run)
        ind = {h.unit for h in res.dense if "induction" in h.roles}
        parts = {p: np.array([getattr(h, p) for h in surv.heads]) for p in PARTS}
        is_ind = np.array([h.unit in ind for h in surv.heads])
        kept = surv.head_grid("kept")
        layer_means = np.nanmean(kept, axis=1)

        print(f"| {key[0]} {dict(PATTERNS)[key[1]]} | {_parts(parts, is_ind)} | "
              f"{_parts(parts, ~is_ind)} | "
              f"{np.nanstd(kept):.4f} | {layer_means.min():.4f} - {layer_means.max():.4f} |")


def _parts(parts: dict[str, np.ndarray], mask: np.ndarray) -> str:
    return " / ".join(f"{parts[p][mask].mean():.3f}" for p in PARTS)


def induction_in_ticket(roles: dict[tuple[str, str], tl.HeadRolesResult]) -> None:
    """The dense model's induction heads, scored again in each ticket."""
    res0 = next(iter(roles.values()))
    top = sorted((h for h in res0.dense if "induction" in h.roles), key=lambda h: -h.induction)
    print("\n| head | dense | " + " | ".join(f"{m} {dict(PATTERNS)[p]}" for m, p in roles)
          + " |")
    print("|---|---|" + "---|" * len(roles))
    for h in top:
        cells = []
        for res in roles.values():
            t = res.head(h.unit, "ticket") if res.ticket is not None else None
            cells.append("-" if t is None or t.induction is None else f"{t.induction:.2f}")
        print(f"| {h.unit} | {h.induction:.2f} | " + " | ".join(cells) + " |")
    print("| heads with induction >= 0.3 | "
          f"{sum('induction' in h.roles for h in res0.dense)} | " + " | ".join(
              "-" if r.ticket is None else str(sum("induction" in h.roles for h in r.ticket))
              for r in roles.values()) + " |")


def main(folder: str) -> None:
    runs, roles = {}, {}
    for method in METHODS:
        for pat, _ in PATTERNS:
            path = Path(folder) / f"{method}-{pat}"
            if not (path / "manifest.json").is_file():
                continue
            manifest = json.loads((path / "manifest.json").read_text())
            if manifest["status"] != "complete":
                continue
            run = tl.open_run(path)
            runs[(method, pat)] = (run, manifest)
            if run.paths.roles.is_file():
                roles[(method, pat)] = tl.HeadRolesResult.from_dict(
                    json.loads(run.paths.roles.read_text()))
    if not runs:
        raise SystemExit(f"no runs in {folder}")
    perplexity_table(runs)
    if roles:
        done = {k: v for k, v in runs.items() if k in roles}
        role_table(done, roles)
        part_table(done, roles)
        induction_in_ticket(roles)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/smollm2-oneshot")
