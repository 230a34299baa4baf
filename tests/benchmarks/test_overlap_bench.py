"""Overlap benchmark (issue: ticket analyses): all pairs of 20 masks of BERT-base size
(84.9M prunable weights each) in <= 2 s on 2 cores, beside a naive NumPy-bool baseline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ticketlens.analysis.bits import from_packed
from ticketlens.analysis.overlap import overlap_bits
from ticketlens.importers import bert_anatomy

pytestmark = pytest.mark.benchmark


def test_all_pairs_of_20_bert_base_masks(record):
    anatomy, _ = bert_anatomy(12, 12)
    sizes = {t.name: int(np.prod(t.shape)) for t in anatomy.tensors}
    layers = {t.name: t.layer for t in anatomy.tensors}
    rng = np.random.default_rng(0)
    m = 20
    # random 50%-dense masks, bit-packed as on disk (packbits of random bytes = random bits)
    packed = [{n: rng.integers(0, 256, (s + 7) // 8, dtype=np.uint8) for n, s in sizes.items()}
              for _ in range(m)]
    t0 = time.perf_counter()
    bits = from_packed(packed, sizes, layers)
    t1 = time.perf_counter()
    result = overlap_bits([f"m{i}" for i in range(m)], bits, "weight")
    t2 = time.perf_counter()

    # naive baseline: unpacked NumPy booleans, one pair at a time (timed on 3 pairs, scaled)
    flat = [np.unpackbits(np.concatenate([p[n] for n in sizes])).astype(bool)
            for p in packed[:4]]
    t3 = time.perf_counter()
    naive = [int((flat[0] & flat[j]).sum()) for j in (1, 2, 3)]
    per_pair = (time.perf_counter() - t3) / 3
    pairs = m * (m - 1) // 2
    assert naive[0] == result.pairs[0].intersection  # same answer as the packed path
    figures = {
        "masks": m, "prunable_weights_each": int(sum(sizes.values())), "pairs": pairs,
        "packed_overlap_s": round(t2 - t1, 3), "packing_to_words_s": round(t1 - t0, 3),
        "naive_bool_per_pair_s": round(per_pair, 4),
        "naive_bool_all_pairs_s_est": round(per_pair * pairs, 2),
        "speedup_vs_naive": round(per_pair * pairs / (t2 - t1), 1),
    }
    record("overlap_20_bert_base", figures)
