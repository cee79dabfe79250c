"""Training losses and reported metrics for each task."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from glselect.data.target import TargetEncoding

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# the metric shown in progress and tables; higher is better for each
PRIMARY_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def _unweighted_row_loss(task: str) -> LossFunction:
    if task == "regression":
        return lambda out, y: F.mse_loss(out[:, 0], y, reduction="none")
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="none")
    return lambda out, y: F.cross_entropy(out, y, reduction="none")


def row_loss_function(task: str, class_weights: np.ndarray | None = None) -> LossFunction:
    """Loss of each row, shape (n_samples,): squared error (standardised target), logistic, or softmax cross-entropy.

    ``class_weights`` (one per class, classification only) multiplies each row's loss by its
    class's weight; ``balanced_class_weights`` makes them average 1 over the training rows, so a
    weighted mean loss stays on the scale of an unweighted one.
    """
    row_loss = _unweighted_row_loss(task)
    if class_weights is None:
        return row_loss
    weights = torch.as_tensor(class_weights)
    return lambda out, y: row_loss(out, y) * weights.to(device=out.device, dtype=out.dtype)[y.long()]


def loss_function(task: str, class_weights: np.ndarray | None = None) -> LossFunction:
    """Mean loss over rows (see ``row_loss_function``)."""
    row_loss = row_loss_function(task, class_weights)
    return lambda out, y: row_loss(out, y).mean()


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_classes * count_c)`` per class: every class weighs as much in the loss as any other.

    A class absent from ``y`` gets weight 1 (it has no rows to weigh).
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


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

    Regression: RMSE in the target's own units and R^2. Binary: log-loss, accuracy, balanced
    accuracy (the mean of per-class recalls: 0.5 for a model that always says the majority
    class), AUC. Multiclass: log-loss, accuracy and balanced accuracy. The log-loss is unweighted
    whatever ``--class-weight`` says, so that runs with and without weights compare.
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
        predicted = (scores > 0).astype(np.int64)
        return {
            "log_loss": loss,
            "accuracy": float(np.mean(predicted == labels)),
            "balanced_accuracy": _balanced_accuracy(predicted, labels),
            "auc": _auc(scores, labels),
        }
    predicted = out.argmax(dim=1).cpu().numpy()
    labels = y.cpu().numpy().astype(np.int64)
    return {
        "log_loss": loss,
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": _balanced_accuracy(predicted, labels),
    }


def _balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels``."""
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls)) if recalls else float("nan")
