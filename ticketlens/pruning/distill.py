"""Knowledge distillation while training a ticket (Hinton et al. 2015).

With ``--distill`` every pruned round and every control trains against the trained dense model
of round 0 (the *teacher*):

    loss = alpha * task_loss + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

- ``classification``: over the classes of each example;
- ``mlm``: over the vocabulary at the masked positions (labels != -100);
- ``clm``: over the vocabulary at the positions that predict a label (logits ``[:, :-1]``
  against labels ``[:, 1:]``, the shift the model applies to its own loss);
- regression (one output, STS-B): a softmax over one output is constant, so the soft term is
  the squared error to the teacher's score, ``(student - teacher)^2`` (no T^2).

The KL is averaged over the examples (or the labelled token positions), like the task loss.
The task loss is the model's own (``model(**batch).loss``), so alpha = 1 trains exactly as
without distillation (the soft term is multiplied by 0.0 and adds exact zeros to gradients).

The teacher is a frozen copy of the model holding the dense round-0 weights: eval mode (no
dropout), no gradients, on the same device, run under the same autocast as the student.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ticketlens.pruning.train import LossFn

__all__ = ["kd_loss", "soft_positions", "teacher_loss"]


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            task_loss: torch.Tensor, alpha: float, T: float,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """alpha * task_loss + (1 - alpha) * T^2 * mean KL(softmax(t/T) || softmax(s/T)).

    ``student_logits``, ``teacher_logits``: ``(..., C)``; the KL is over the last dimension,
    averaged over the leading ones, or over the positions where ``mask`` (``(...)``, bool) is
    true. With ``C == 1`` (regression) the soft term is the mean squared difference. Computed
    in float32 whatever the logits' dtype."""
    s = student_logits.float()
    t = teacher_logits.float().detach()
    if mask is not None:
        s, t = s[mask], t[mask]  # (N, C)
    else:
        s, t = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
    if s.shape[0] == 0:  # no labelled position in this micro-batch: no soft signal
        soft = s.sum() * 0.0
    elif s.shape[-1] == 1:
        soft = F.mse_loss(s, t)
    else:
        # KL(p_t || p_s) = sum p_t (log p_t - log p_s), per row, then the mean over rows
        log_ps = F.log_softmax(s / T, dim=-1)
        log_pt = F.log_softmax(t / T, dim=-1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()
        soft = T * T * kl
    return alpha * task_loss + (1.0 - alpha) * soft


def soft_positions(objective: str, batch: Mapping[str, torch.Tensor]) -> tuple[
        slice | None, torch.Tensor | None]:
    """Which logits the soft term compares, for an objective: ``(logit slice along the
    sequence, bool mask of the kept positions)``; ``(None, None)`` for classification."""
    if objective == "mlm":
        return None, batch["labels"] != -100  # (B, L)
    if objective == "clm":
        return slice(None, -1), batch["labels"][:, 1:] != -100  # (B, L-1): position i predicts i+1
    return None, None


def teacher_loss(setup: Any, dense_state: Mapping[str, torch.Tensor],
                 accelerator: Any) -> LossFn:
    """The distillation loss of a search: a :data:`~ticketlens.pruning.train.LossFn` whose
    teacher is a frozen copy of ``setup.model`` loaded with ``dense_state`` (the trained
    dense model of round 0). Built once per search (``Search.arm_loss``)."""
    tcfg = setup.cfg.train
    alpha, T = float(tcfg.distill_alpha), float(tcfg.distill_temperature)
    objective = setup.objective
    teacher = copy.deepcopy(setup.model)
    teacher.load_state_dict(dict(dense_state))
    teacher.to(accelerator.device)
    teacher.eval()
    teacher.requires_grad_(False)

    def loss_fn(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        out = model(**batch)  # the student's own task loss and logits
        with torch.no_grad():
            t_logits = teacher(**batch).logits
        seq, mask = soft_positions(objective, batch)
        s_logits = out.logits
        if seq is not None:
            s_logits, t_logits = s_logits[:, seq], t_logits[:, seq]
        return kd_loss(s_logits, t_logits, out.loss, alpha, T, mask)

    loss_fn.teacher = teacher  # type: ignore[attr-defined]  # for tests and inspection
    return loss_fn
