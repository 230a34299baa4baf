"""Distillation while training a ticket (``find --distill``, ``pruning.distill``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import QUICK_FIND

import ticketlens
from ticketlens.cli.main import main
from ticketlens.pruning.distill import kd_loss, soft_positions

# Two runs that differ only in distillation: 3 rounds (0, 50%, 75%) and both controls.
SHORT = [*QUICK_FIND, "--steps", "20it", "--train-size", "256", "--dev-size", "128"]


def test_kd_loss_equals_the_hand_computation():
    # student (1, 2, 0), teacher (2, 0, 1), T = 2: both softmaxes share Z = e^.5 + e^1 + e^0,
    # p_s = (e^.5, e^1, e^0) / Z = (0.307196, 0.506480, 0.186324),
    # p_t = (e^1, e^0, e^.5) / Z = (0.506480, 0.186324, 0.307196), so
    # KL(p_t || p_s) = 0.506480 * 0.5 + 0.186324 * (-1) + 0.307196 * 0.5 = 0.2205144;
    # loss = 0.25 * 0.7 + 0.75 * 2^2 * 0.2205144 = 0.175 + 0.6615432 = 0.8365432
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[2.0, 0.0, 1.0]])
    got = kd_loss(s, t, torch.tensor(0.7), alpha=0.25, T=2.0)
    assert float(got) == pytest.approx(0.8365432, abs=1e-6)
    # alpha = 1: the task loss alone; alpha = 0: the soft term alone
    assert float(kd_loss(s, t, torch.tensor(0.7), 1.0, 2.0)) == pytest.approx(0.7, abs=1e-7)
    assert float(kd_loss(s, t, torch.tensor(0.7), 0.0, 2.0)) == pytest.approx(
        4 * 0.2205144, abs=1e-6)
    # a student equal to its teacher has no soft loss
    assert float(kd_loss(t, t, torch.tensor(0.0), 0.0, 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_over_labelled_token_positions_only():
    # (B=1, L=3, V=3): position 1 is the only masked (labelled) one; the others are far off
    # and must not count. Position 1 holds the example above: KL = 0.2205144 at T = 2.
    s = torch.tensor([[[9.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 9.0]]])
    t = torch.tensor([[[0.0, 9.0, 0.0], [2.0, 0.0, 1.0], [9.0, 0.0, 0.0]]])
    labels = torch.tensor([[-100, 4, -100]])
    seq, mask = soft_positions("mlm", {"labels": labels})
    assert seq is None and mask.tolist() == [[False, True, False]]
    got = kd_loss(s, t, torch.tensor(0.0), 0.0, 2.0, mask)
    assert float(got) == pytest.approx(4 * 0.2205144, abs=1e-6)
    # clm: logits at i predict the label at i + 1 (the model's own shift)
    seq, mask = soft_positions("clm", {"labels": torch.tensor([[5, 6, -100]])})
    assert s[:, seq].shape == (1, 2, 3) and mask.tolist() == [[True, False]]
    # regression (one output): the squared error to the teacher's score
    got = kd_loss(torch.tensor([[1.5]]), torch.tensor([[0.5]]), torch.tensor(2.0), 0.5, 2.0)
    assert float(got) == pytest.approx(0.5 * 2.0 + 0.5 * 1.0)


def _metrics(run) -> dict:
    return {"rounds": [dict(r.metrics) for r in run.rounds],
            "controls": {k: dict(c.metrics) for k, c in run.controls.items()}}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "plain"
    assert main(["find", "--quiet", *SHORT, "--out", str(out)]) == 0
    return out


def test_alpha_one_trains_exactly_as_without_distillation(plain, tmp_path):
    alpha1 = tmp_path / "alpha1"
    assert main(["find", "--quiet", *SHORT, "--distill", "--distill-alpha", "1.0",
                 "--out", str(alpha1)]) == 0
    a, b = ticketlens.open_run(plain), ticketlens.open_run(alpha1)
    assert b.manifest.config["train"]["distill"] is True
    assert len(a.rounds) == 3 and set(a.controls) == {"random_mask", "random_reinit"}
    assert _metrics(a) == _metrics(b)  # every round and control, bit for bit
    for r in a.rounds:
        assert a.paths.mask(r.index).read_bytes() == b.paths.mask(r.index).read_bytes()
    assert a.paths.control_mask("random_mask").read_bytes() == \
        b.paths.control_mask("random_mask").read_bytes()


def test_distilled_run_completes_and_says_so(plain, tmp_path, capsys):
    out = tmp_path / "distilled"
    assert main(["find", "--quiet", *SHORT, "--distill", "--distill-alpha", "0.3",
                 "--distill-temperature", "3", "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.complete and len(run.rounds) == 3
    assert run.manifest.config["train"]["distill_alpha"] == 0.3
    # dense (round 0) is the teacher and is not distilled; the pruned rounds are
    ref = ticketlens.open_run(plain)
    assert run.rounds[0].metrics == ref.rounds[0].metrics
    assert run.rounds[1].metrics["train_loss"] != ref.rounds[1].metrics["train_loss"]
    capsys.readouterr()
    assert main(["info", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["distill"] == {"alpha": 0.3, "temperature": 3.0}
    assert main(["info", str(out)]) == 0
    assert "distilled from dense (α 0.3, T 3)" in capsys.readouterr().out


def test_teacher_is_a_frozen_copy_of_dense(tmp_path):
    from ticketlens.core.config import FindConfig
    from ticketlens.pruning.distill import teacher_loss
    from ticketlens.pruning.setup import prepare
    from ticketlens.pruning.train import make_accelerator

    cfg = FindConfig.from_dict({"data": {"train_size": 32, "dev_size": 16},
                                "train": {"distill": True, "device": "cpu"}})
    setup = prepare(cfg)
    dense = {k: v + 0.5 for k, v in setup.model.state_dict().items()}
    fn = teacher_loss(setup, dense, make_accelerator(cfg.train))
    teacher = fn.teacher
    assert teacher is not setup.model and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in dense.items())
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3]]), "attention_mask": torch.ones(1, 4,
             dtype=torch.long), "labels": torch.tensor([1])}
    loss = fn(setup.model, batch)
    loss.backward()  # the student gets gradients, the teacher none
    assert any(p.grad is not None for p in setup.model.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert math.isfinite(float(loss.detach()))


@pytest.mark.parametrize(("model", "objective"), [("tiny-bert", "mlm"),
                                                  ("tiny-gpt2", "clm")])
def test_distill_language_models(model, objective, tmp_path):
    out = tmp_path / objective
    assert main(["find", "--quiet", "--model", model, "--objective", objective, *SHORT,
                 "--steps", "8it", "--rewind", "2it", "--no-controls", "--distill",
                 "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert run.complete and all(math.isfinite(r.metrics["perplexity"]) for r in run.rounds)


def test_transfer_of_a_distilled_run_distills_from_its_own_dense(tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["find", "--quiet", *SHORT, "--no-controls", "--distill", "--out",
                 str(src)]) == 0
    out = tmp_path / "to-agreement"
    assert main(["transfer", str(src), "--task", "agreement", "--train-size", "128",
                 "--dev-size", "64", "-o", str(out), "--quiet"]) == 0
    r = ticketlens.open_run(out)
    assert r.complete and r.manifest.config["train"]["distill"] is True
    assert "round 0" in r.manifest.extra["transfer"]["teacher"]
