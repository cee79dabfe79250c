"""Training losses and reported metrics for each task."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from glselect.target import TargetEncoding

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# the metric shown in progress and tables; higher is better for each
PRIMARY_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def row_loss_function(task: str) -> LossFunction:
    """Loss of each row, shape (n_samples,): squared error (standardised target), logistic, or softmax cross-entropy."""
    if task == "regression":
        return lambda out, y: F.mse_loss(out[:, 0], y, reduction="none")
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="none")
    return lambda out, y: F.cross_entropy(out, y, reduction="none")


def loss_function(task: str) -> LossFunction:
    """Mean loss over rows (see ``row_loss_function``)."""
    row_loss = row_loss_function(task)
    return lambda out, y: row_loss(out, y).mean()


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties given half credit."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # average ranks over tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(out: torch.Tensor, y: torch.Tensor, target: TargetEncoding) -> dict[str, float]:
    """Metrics of model outputs ``out`` (n_samples, n_outputs) against encoded targets ``y``.

    Regression: RMSE in the target's own units and R^2. Binary: log-loss, accuracy, AUC.
    Multiclass: log-loss and accuracy.
    """
    loss = float(loss_function(target.task)(out, y))
    if target.task == "regression":
        residual = (out[:, 0] - y).double()
        mse = float((residual**2).mean())
        variance = float(((y.double() - y.double().mean()) ** 2).mean())
        return {
            "rmse": float(np.sqrt(mse) * target.scale),
            "r2": 1.0 - mse / variance if variance > 0 else float("nan"),
        }
    if target.task == "binary":
        scores = out[:, 0].double().cpu().numpy()
        labels = y.cpu().numpy().astype(np.int64)
        return {
            "log_loss": loss,
            "accuracy": float(np.mean((scores > 0) == (labels == 1))),
            "auc": _auc(scores, labels),
        }
    predicted = out.argmax(dim=1)
    return {"log_loss": loss, "accuracy": float((predicted == y).double().mean())}
