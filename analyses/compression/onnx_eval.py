"""Dev accuracy and CPU latency of `ticketlens export --format onnx` folders under onnxruntime,
one thread, beside torch dense fp32 in the same process (the ONNX side of the latency table).

    python analyses/compression/onnx_eval.py RUN EXPORT_DIR [EXPORT_DIR ...]

RUN gives the dev set (its config rebuilds task and tokenizer); each EXPORT_DIR holds a
model.onnx written by `ticketlens export RUN --format onnx [--quant int8]`. Latency: the
median of 10 runs (after 2 warm-ups) of one forward pass on random ids, 64 tokens, batch 1
and 32 — the protocol of `ticketlens compress`. Prints one JSON object a line."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _inputs(names: list[str], vocab: int, batch: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(0)
    out = {"input_ids": g.integers(5, vocab, (batch, 64), dtype=np.int64),
           "attention_mask": np.ones((batch, 64), dtype=np.int64),
           "token_type_ids": np.zeros((batch, 64), dtype=np.int64)}
    return {n: out[n] for n in names}


def _ms(fn, repeats: int = 10) -> float:
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        fn()
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def main(run_path: str, folders: list[str]) -> None:
    import onnxruntime as ort
    import torch

    import ticketlens
    from ticketlens.models.load import model_from_run
    from ticketlens.pruning.setup import prepare

    torch.set_num_threads(1)
    run = ticketlens.open_run(run_path)
    setup = prepare(ticketlens.FindConfig.from_dict(dict(run.manifest.config)))
    ids, types = setup.dev.enc.input_ids, setup.dev.enc.token_type_ids
    labels = np.asarray(setup.dev.labels)
    dense = model_from_run(run, "dense").eval()
    vocab = int(dense.config.vocab_size)
    with torch.no_grad():
        base = {b: _ms(lambda b=b: dense(**{k: torch.from_numpy(v) for k, v in _inputs(
            ["input_ids", "attention_mask", "token_type_ids"], vocab, b).items()}))
            for b in (1, 32)}
    print(json.dumps({"variant": "torch dense fp32", "ms": base}))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    for folder in folders:
        path = Path(folder) / "model.onnx"
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        preds = []
        for i in range(len(ids)):  # one sentence at a time: no padding to get wrong
            row = {"input_ids": np.asarray([ids[i]], dtype=np.int64),
                   "attention_mask": np.ones((1, len(ids[i])), dtype=np.int64),
                   "token_type_ids": np.asarray([types[i] if types else [0] * len(ids[i])],
                                                dtype=np.int64)}
            preds.append(int(sess.run(None, {n: row[n] for n in names})[0].argmax()))
        acc = float((np.asarray(preds) == labels).mean())
        ms = {b: _ms(lambda b=b, s=sess, n=names: s.run(None, _inputs(n, vocab, b)))
              for b in (1, 32)}
        print(json.dumps({"variant": folder, "accuracy": acc, "bytes": path.stat().st_size,
                          "ms": ms, "speedup": {b: round(base[b] / ms[b], 3) for b in ms}}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
