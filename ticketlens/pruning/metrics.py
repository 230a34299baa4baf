"""Evaluation metrics. The verdict compares the task's main metric (``higher_is_better``)."""

from __future__ import annotations

import math

import torch

from ticketlens.core.record import HIGHER_IS_BETTER

__all__ = ["HIGHER_IS_BETTER", "accuracy", "f1_binary", "mcc"]


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    return float((preds == labels).float().mean())


def f1_binary(preds: torch.Tensor, labels: torch.Tensor) -> float:
    tp = int(((preds == 1) & (labels == 1)).sum())
    fp = int(((preds == 1) & (labels == 0)).sum())
    fn = int(((preds == 0) & (labels == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def mcc(preds: torch.Tensor, labels: torch.Tensor) -> float:
    """Matthews correlation (binary), 0 when undefined (as scikit-learn)."""
    tp = int(((preds == 1) & (labels == 1)).sum())
    tn = int(((preds == 0) & (labels == 0)).sum())
    fp = int(((preds == 1) & (labels == 0)).sum())
    fn = int(((preds == 0) & (labels == 1)).sum())
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / den if den else 0.0


def classification_metrics(preds: torch.Tensor, labels: torch.Tensor,
                           main: str = "accuracy") -> dict[str, float]:
    out = {"accuracy": accuracy(preds, labels)}
    if main == "f1":
        out["f1"] = f1_binary(preds, labels)
    elif main == "mcc":
        out["mcc"] = mcc(preds, labels)
    return out


def regression_metrics(preds: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Pearson and Spearman correlation (GLUE reports both for STS-B) and the mean squared
    error; a correlation is 0 when undefined (constant predictions, as early in training)."""
    from scipy import stats

    p, y = preds.double().numpy(), labels.double().numpy()
    constant = len(p) < 2 or float(p.std()) == 0.0 or float(y.std()) == 0.0
    return {"pearson": 0.0 if constant else float(stats.pearsonr(p, y).statistic),
            "spearman": 0.0 if constant else float(stats.spearmanr(p, y).statistic),
            "mse": float(((p - y) ** 2).mean())}
