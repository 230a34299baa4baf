"""`find` end to end, `info --json`, resume after a kill, and the run format's API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUICK_FIND, ROOT, run_cli

import ticketlens
from ticketlens.cli.main import main
from ticketlens.core import fault
from ticketlens.core import masks as M
from ticketlens.pruning import ops as P


def test_find_writes_a_complete_run(quick_run):
    run = ticketlens.open_run(quick_run)
    assert run.complete
    assert [r.index for r in run.rounds] == [0, 1, 2]
    assert [round(r.sparsity, 4) for r in run.rounds] == [0.0, 0.5, 0.75]
    for r in run.rounds:
        assert 0.0 <= r.metrics["accuracy"] <= 1.0 and r.steps > 0
        masks = run.mask(r.index)
        assert set(masks) == set(run.anatomy.names)
        assert M.sparsity(masks) == pytest.approx(r.sparsity)
    # masks are nested: IMP only ever removes weights
    for a, b in zip(run.rounds, run.rounds[1:]):
        for n in run.anatomy.names:
            assert not np.any(run.mask(b.index)[n] & ~run.mask(a.index)[n])
    assert set(run.controls) == {"random_mask", "random_reinit"}
    assert M.sparsity(run.control_mask("random_mask")) == pytest.approx(0.75)
    v = run.verdict
    assert v.winning == (v.status == "winning") == (
        v.dense_learned and not v.dense_under_trained and v.matches_dense
        and all(v.beats_controls.values()))
    # weights: rewind, dense, ticket; the ticket's pruned weights are exactly zero
    ticket = run.weights("ticket")
    for n, m in run.mask().items():
        assert torch.all(ticket[n][torch.from_numpy(~m)] == 0)
    assert set(run.weights("dense")) == set(ticket) == set(run.weights("rewind"))
    files = {p.relative_to(quick_run).as_posix() for p in quick_run.rglob("*") if p.is_file()}
    assert files == {"manifest.json", "tokenizer.json", "masks/round_000.safetensors",
                     "masks/round_001.safetensors", "masks/round_002.safetensors",
                     "masks/control_random_mask.safetensors", "weights/rewind.safetensors",
                     "weights/round_000.safetensors", "weights/round_002.safetensors"}
    m = run.manifest
    assert m.config["prune"]["rate"] == 0.5 and m.rewind.to_dict() == {
        "mode": "step", "step": 5, "spec": "5it", "weights": "weights/rewind.safetensors"}
    assert {"torch", "transformers", "python"} <= set(m.versions)


def test_info_json(quick_run, capsys):
    assert main(["info", "--json", str(quick_run)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
    assert data["verdict"]["ticket_round"] == 2
    assert set(data["controls"]) == {"random_mask", "random_reinit"}
    assert main(["info", str(quick_run)]) == 0
    assert "IMP rounds" in capsys.readouterr().out


def test_rerun_of_complete_run_does_nothing(quick_run, capsys):
    before = (quick_run / "manifest.json").read_bytes()
    assert main(["find", "--out", str(quick_run), *QUICK_FIND]) == 0
    assert (quick_run / "manifest.json").read_bytes() == before


def test_other_settings_on_existing_run_are_refused(quick_run, capsys):
    assert main(["find", "--out", str(quick_run), *QUICK_FIND, "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "seed: 0 then, 3 now" in err


def _masks_of(run_dir):
    run = ticketlens.open_run(run_dir)
    return {r.index: run.mask(r.index) for r in run.rounds}


def _kill_step_in_round(run_dir: Path, k: int) -> int:
    """The training step (1-based, counted from a fresh process's start) in the middle of
    round ``k`` of the run at ``run_dir`` (for ``TICKETLENS_FAULT=kill:step:N``)."""
    steps = [r.steps for r in ticketlens.open_run(run_dir).rounds]
    return sum(steps[:k]) + steps[k] // 2


def test_resume_after_kill_gives_identical_files(tmp_path):
    # four rounds (0, 50%, 75%, 87.5%) of 60 steps; the kill lands in the middle of round 2,
    # at a training step the fault hook names (not after a sleep)
    args = ["find", "--quiet", *QUICK_FIND, "--steps", "60it", "--target-sparsity", "0.875",
            "--no-controls"]
    straight = tmp_path / "straight"
    assert run_cli(*args, "--out", str(straight)).returncode == 0

    killed = tmp_path / "killed"
    nth = _kill_step_in_round(straight, 2)
    proc = run_cli(*args, "--out", str(killed), env={fault.ENV: f"kill:step:{nth}"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = ticketlens.open_run(killed)
    assert run.manifest.status == "running" and [r.index for r in run.rounds] == [0, 1]
    assert run_cli(*args, "--out", str(killed)).returncode == 0

    a, b = _masks_of(straight), _masks_of(killed)
    assert set(a) == set(b) == {0, 1, 2, 3}
    # byte for byte (cmp), not tensor by tensor: every mask file and the kept weights
    for rel in _files(straight, "masks") + _files(straight, "weights"):
        assert (straight / rel).read_bytes() == (killed / rel).read_bytes(), rel
    assert _files(straight, "masks") == _files(killed, "masks")
    # the resumed run records the SHA-256 of every file, as the straight one does
    hashes = [ticketlens.open_run(d).manifest.files for d in (straight, killed)]
    assert hashes[0] == hashes[1] and "masks/round_003.safetensors" in hashes[0]
    assert main(["verify", str(killed)]) == 0


def _files(run_dir, sub):
    return sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / sub).glob("*"))


def test_info_network(quick_run, capsys):
    assert main(["info", "--json", "--network", str(quick_run)]) == 0
    net = json.loads(capsys.readouterr().out)["network"]
    assert net["num_units"] == 4 * (4 + 256)
    assert len(net["strongest_path"]) == 8  # one unit per stage: 4 layers x (heads, FFN)
    assert net["strongest_path"][0].startswith("L0H")


@pytest.mark.parametrize("model", ["tiny-distilbert", "tiny-gpt2", "tiny-llama"])
def test_find_on_every_family(model, tmp_path):
    out = tmp_path / model
    assert main(["find", "--quiet", "--model", model, *QUICK_FIND, "--steps", "20it",
                 "--target-sparsity", "0.5", "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    family = {"tiny-distilbert": "distilbert", "tiny-gpt2": "gpt2", "tiny-llama": "llama"}
    assert run.complete and run.manifest.model.family == family[model]
    assert M.sparsity(run.mask()) == pytest.approx(0.5)
    w = run.weights("ticket")
    assert all(torch.all(w[n][torch.from_numpy(~m)] == 0) for n, m in run.mask().items())


@pytest.mark.parametrize("rewind", ["init", "lr"])
def test_rewind_modes(rewind, tmp_path):
    out = tmp_path / rewind
    assert main(["find", "--quiet", *QUICK_FIND, "--rewind", rewind, "--no-controls",
                 "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.manifest.rewind.mode == rewind
    steps = [r.steps for r in run.rounds]
    assert steps == [40, 40, 40]  # no late-rewinding offset: every round replays 40 steps
    rw, init_like = run.weights("rewind"), run.weights("dense")
    name = run.anatomy.names[0]
    assert not torch.equal(rw[name], init_like[name])  # rewind point = untrained init


def test_oneshot_control_added_to_a_finished_run(quick_run, tmp_path, capsys):
    """Running a finished run again with --oneshot-control trains that control only: the
    dense model's trained weights pruned once (by magnitude) to the ticket's counts, from the
    ticket's start. It is informative: the verdict's rule and rounds stay as they were."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(quick_run, run_dir)
    before = ticketlens.open_run(run_dir)
    assert main(["find", "--quiet", *QUICK_FIND, "--oneshot-control",
                 "--out", str(run_dir)]) == 0
    after = ticketlens.open_run(run_dir)
    assert after.manifest.rounds == before.manifest.rounds
    assert set(after.controls) == {"random_mask", "random_reinit", "oneshot"}
    assert after.controls["random_mask"] == before.controls["random_mask"]
    ticket, dense = after.mask(), after.weights("dense")
    expected = P.magnitude_like({n: dense[n] for n in ticket}, ticket, "global")
    oneshot = after.control_mask("oneshot")
    assert all(np.array_equal(oneshot[n], expected[n].numpy()) for n in ticket)
    assert M.count_kept(oneshot) == M.count_kept(ticket)
    assert after.verdict.winning == before.verdict.winning
    assert "one-shot magnitude control" in after.verdict.reason
    assert after.manifest.config["prune"]["oneshot_control"] is True
    # a finished run without the weights a control starts from: one line, nothing written
    broken = tmp_path / "broken"
    shutil.copytree(quick_run, broken)
    (broken / "weights" / "rewind.safetensors").unlink()
    manifest = (broken / "manifest.json").read_bytes()
    capsys.readouterr()
    assert main(["find", *QUICK_FIND, "--oneshot-control", "--out", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be added" in err and "\n" not in err
    assert (broken / "manifest.json").read_bytes() == manifest
    # the same command without the flag: complete, nothing to do (no settings conflict)
    assert main(["find", *QUICK_FIND, "--out", str(run_dir)]) == 0
    assert "already complete" in capsys.readouterr().err


def test_bf16_autocast_keeps_fp32_weights_and_exact_zeros(tmp_path):
    """The mixed-precision path CUDA takes by default (bf16 autocast), here on CPU: weights and
    stored files stay fp32 and pruned weights stay exactly zero."""
    out = tmp_path / "bf16"
    assert main(["find", "--quiet", *QUICK_FIND, "--steps", "20it", "--no-controls",
                 "--precision", "bf16", "--device", "cpu", "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.manifest.config["train"]["precision"] == "bf16"
    weights, masks = run.weights("ticket"), run.mask()
    for name, keep in masks.items():
        assert weights[name].dtype == torch.float32
        assert torch.all(weights[name][~keep] == 0), name
    assert all(r.metrics["loss"] == r.metrics["loss"] for r in run.rounds)  # not NaN


def test_chance_level_of_a_constant_prediction():
    """By hand: dev labels 1,1,1,0 -> majority 0.75; always-positive F1 = 2*0.75/1.75."""
    from ticketlens.data.tasks import Split, TaskData

    task = TaskData("t", "file", ("0", "1"), Split(["a"] * 4, [1, 1, 1, 0]),
                    Split(["a"] * 4, [1, 1, 1, 0]))
    for metric, expected in (("accuracy", 0.75), ("f1", 1.5 / 1.75), ("mcc", 0.0),
                             ("pearson", 0.0), ("perplexity", None)):
        task.metric = metric
        assert task.chance() == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(("model", "objective"), [("tiny-gpt2", "clm"), ("tiny-llama", "clm"),
                                                  ("tiny-bert", "mlm")])
def test_language_model_tickets(model, objective, tmp_path, capsys):
    out = tmp_path / f"{model}-{objective}"
    assert main(["find", "--quiet", "--model", model, "--objective", objective, *QUICK_FIND,
                 "--steps", "20it", "--target-sparsity", "0.5", "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.metric == "perplexity" and run.manifest.model.objective == objective
    ppl = [r.metrics["perplexity"] for r in run.rounds]
    vocab = run.manifest.tokenizer["vocab_size"]
    assert all(1.0 < p < vocab for p in ppl)  # trained: better than uniform over the vocab
    v = run.verdict
    assert v.matches_dense == (v.ticket <= v.dense * 1.01 + 1e-12)
    assert v.beats_controls["random_mask"] == (v.ticket < v.controls["random_mask"])
    capsys.readouterr()
    assert main(["attribute", str(out)]) == 2
    assert "classification runs" in capsys.readouterr().err


def test_mlm_masking_is_seeded_and_bert_like():
    from ticketlens.data.batching import TensorData, lm_collate
    from ticketlens.data.tokenizer import builtin_tokenizer

    tok = builtin_tokenizer()
    texts = ["the movie was very good and the plot was not dull"] * 64
    data = TensorData(tok.encode(texts, None, 64), [0] * 64)
    idx = list(range(64))

    def batch(seed):
        return lm_collate(data, idx, tok.pad_id, "mlm", torch.Generator().manual_seed(seed),
                          tok.mask_id, tok.vocab_size, (2, 3))

    a, b, c = batch(0), batch(0), batch(1)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    assert not torch.equal(a["labels"], c["labels"])
    chosen = a["labels"] != -100
    content = a["attention_mask"].bool().sum() - 2 * 64  # minus [CLS] and [SEP]
    assert 0.10 < chosen.sum() / content < 0.20  # ~15% of the non-special tokens
    assert not chosen[:, 0].any()  # never a special token
    masked = (a["input_ids"] == tok.mask_id)
    assert 0.7 < masked[chosen].float().mean() < 0.9  # ~80% of them become [MASK]


def _torchrun(*args: str) -> list[str]:
    import shutil as sh

    torchrun = sh.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    return [torchrun, "--nproc_per_node=2", "-m", "ticketlens", *args]


def test_two_process_gloo_run_matches_one_process_layout(tmp_path):
    """`torchrun --nproc_per_node=2` on CPU (gloo): every pruning step's mask is checked
    identical on both ranks; only rank 0 writes and prints; the run directory holds the
    same files as a one-process run (metrics differ: each rank sees half of each batch)."""
    args = [*QUICK_FIND, "--steps", "20it", "--no-controls", "--quiet"]
    two, one = tmp_path / "two", tmp_path / "one"
    proc = subprocess.run(_torchrun("find", *args, "--out", str(two)), capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("the ticket reaches") == 1  # rank 0 only
    assert run_cli("find", *args, "--out", str(one)).returncode == 0
    files = [sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
             for d in (two, one)]
    assert files[0] == files[1]
    run = ticketlens.open_run(two)
    assert run.manifest.extra["processes"] == {"count": 2, "mask_check": "identical on 2 ranks"}
    assert [r.sparsity for r in run.rounds] == [r.sparsity for r in
                                                ticketlens.open_run(one).rounds]


def test_two_process_run_resumes_after_kill(tmp_path):
    """A 2-process run SIGKILLed inside round 2 (both workers), resumed by the
    same torchrun command, ends with the masks of an uninterrupted 2-process run."""
    args = ["find", *QUICK_FIND, "--steps", "30it", "--target-sparsity", "0.875",
            "--no-controls", "--quiet"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = subprocess.run(_torchrun(*args, "--out", str(straight)), capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]

    # both workers kill themselves in the middle of round 2 (the fault hook: each counts
    # its own steps, the same ones); the launcher then stops, failed
    env = {**os.environ, fault.ENV: f"kill:step:{_kill_step_in_round(straight, 2)}"}
    launcher = subprocess.run(_torchrun(*args, "--out", str(killed)), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    assert launcher.returncode != 0
    run = ticketlens.open_run(killed)
    assert run.manifest.status == "running" and [r.index for r in run.rounds] == [0, 1]

    proc = subprocess.run(_torchrun(*args, "--out", str(killed)), capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = _masks_of(straight), _masks_of(killed)
    assert set(a) == set(b) == {0, 1, 2, 3}
    for r in a:
        for n in a[r]:
            assert np.array_equal(a[r][n], b[r][n]), (r, n)
    resumed = ticketlens.open_run(killed)
    assert resumed.manifest.status == "complete"
    assert resumed.manifest.extra["processes"]["count"] == 2
    assert not list(killed.rglob(".tmp-*"))


def test_run_ticket_and_control_metric(quick_run):
    run = ticketlens.open_run(quick_run)
    assert run.ticket.index == run.verdict.ticket_round == 2
    assert run.ticket.metrics["accuracy"] == run.verdict.ticket
    for c in ("random_mask", "random_reinit"):
        assert run.control_metric(c) == run.verdict.controls[c]
    assert run.control_metric("no_such_control") is None


def _tiny_pretrained(folder, head_labels=None):
    """A tiny BERT saved by transformers, as a hub checkpoint would be: a bare encoder, or a
    classifier with ``head_labels`` outputs; its tokenizer is a vocab.txt only (as in many
    older hub repos)."""
    import transformers as tf

    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(
        {w for line in ("the film was good", "the film was bad", "not good", "not bad",
                        "a very good plot", "a very bad plot") for w in line.split()})]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tf.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    (folder / "tokenizer.json").unlink()
    cfg = tf.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        num_labels=head_labels or 2)
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification(cfg) if head_labels else tf.BertModel(cfg)
    model.save_pretrained(str(folder))
    return folder


def test_pretrained_folder_with_only_a_vocabulary(tmp_path):
    """The tokenizer is converted by AutoTokenizer, the model loads as pretrained, and a
    one-round find completes with the pretrained rewind point."""
    folder = _tiny_pretrained(tmp_path / "tiny-pretrained")
    data = tmp_path / "train.csv"
    rows = ["the film was good,1", "the film was bad,0", "not good,0", "not bad,1",
            "a very good plot,1", "a very bad plot,0"] * 10
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--model", str(folder), "--task", str(data), "--out",
                 str(out), "--steps", "5it", "--batch-size", "8", "--target-sparsity", "0.2",
                 "--no-controls"]) == 0
    run = ticketlens.open_run(out)
    assert run.manifest.model.pretrained is True
    assert run.manifest.model.source == "folder"
    assert run.manifest.rewind.mode == "init"  # the pretrained weights (Chen et al.)
    assert run.paths.tokenizer.is_file()
    from ticketlens.data.tokenizer import TextTokenizer

    tok = TextTokenizer.from_file(run.paths.tokenizer)
    assert tok.tokens("the film was good") == ["[CLS]", "the", "film", "was", "good", "[SEP]"]


def test_pretrained_task_head_is_new_and_seeded(tmp_path):
    """The head is initialised from --seed whatever the checkpoint holds: a fine-tuned
    2-label head is replaced (not loaded), a 1-output regression head loads over it, and the
    same seed gives the same head (a run is reproducible)."""
    from ticketlens.models.load import load_pretrained

    folder = _tiny_pretrained(tmp_path / "finetuned", head_labels=2)
    from safetensors.torch import load_file

    ckpt = load_file(str(folder / "model.safetensors"))
    a = load_pretrained(str(folder), num_labels=2, seed=1).model
    b = load_pretrained(str(folder), num_labels=2, seed=1).model
    c = load_pretrained(str(folder), num_labels=2, seed=2).model
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert not torch.equal(a.classifier.weight, ckpt["classifier.weight"])
    assert torch.all(a.classifier.bias == 0)
    assert a.classifier.weight.std().item() == pytest.approx(0.02, rel=0.3)  # HF's scheme
    torch.testing.assert_close(a.bert.encoder.layer[0].attention.self.query.weight,
                               ckpt["bert.encoder.layer.0.attention.self.query.weight"])
    reg = load_pretrained(str(folder), num_labels=1, seed=1).model  # the old head: 2 outputs
    assert reg.classifier.weight.shape == (1, 32) and reg.config.problem_type == "regression"
