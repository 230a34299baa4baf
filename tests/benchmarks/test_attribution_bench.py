"""Attribution benchmarks (issue: attribution): token attribution of 100 dev sentences on
tiny-bert, dense and ticket, <= 10 s; a head-importance pass over 1,000 examples <= 10 s."""

from __future__ import annotations

import time

import pytest
from conftest import SAMPLE_MASKS

import ticketlens

pytestmark = pytest.mark.benchmark
RUN = SAMPLE_MASKS / "sentiment-s0"


@pytest.mark.skipif(not (RUN / "manifest.json").exists(), reason="sample_masks absent")
def test_attribution_speed(record):
    from ticketlens.analysis.attribution import (
        compare_tokens,
        dev_sample,
        load_pair,
        unit_importance,
    )
    from ticketlens.data.batching import TensorData, collate, eval_batches

    run = ticketlens.open_run(RUN)
    dense, ticket, tok = load_pair(run)
    texts, pairs, labels, evidence = dev_sample(run, 100)
    t0 = time.perf_counter()
    res = compare_tokens(dense, ticket, tok, texts, pairs, labels, evidence, n_steps=32)
    tokens_s = time.perf_counter() - t0
    t, p, lab, _ = dev_sample(run, 1000)
    data = TensorData(tok.encode(t, p, 64), list(lab))
    batches = [collate(data, idx, tok.pad_id) for idx in eval_batches(data, 64)]
    t1 = time.perf_counter()
    unit_importance(dense, run.anatomy, batches, "head")
    heads_s = time.perf_counter() - t1
    record("attribution_tiny_bert", {
        "token_attribution_100_texts_dense_and_ticket_s": round(tokens_s, 2),
        "ig_steps": 32, "head_importance_1000_examples_s": round(heads_s, 2),
        "mean_spearman": round(res.mean_spearman, 3)})
