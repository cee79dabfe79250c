"""The data-fitting term of the objective, one class per task (the way skglm separates datafits).

A datafit says how a model's outputs are scored against the encoded target: ``row_loss`` (each
row's loss, what the 1se rule, confirmation and permutation importance take means and spreads
of), ``loss`` (their mean, what a solver minimises), ``outputs`` (how many outputs the network
needs), ``metric`` (the reported metric that is higher for a better model), ``scores`` (every
reported metric on held-out rows) and ``target_outputs`` (what a column's association with the
target is measured against). Class weights, when given, multiply each row's loss by its
class's weight. A new task is one new class here, registered in ``DATAFITS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from glselect.data.survival import unfold
from glselect.model.metrics import (
    LossFunction,
    auc,
    balanced_accuracy,
    concordance_index,
    cox_row_loss,
)

if TYPE_CHECKING:
    from glselect.data.target import TargetEncoding


@dataclass(frozen=True)
class Datafit:
    """Loss of outputs ``out`` (n_samples, outputs) against encoded targets ``y`` (n_samples,).

    Parameters
    ----------
    class_weights
        One weight per class (classification), multiplying each row's loss by its class's weight;
        ``balanced_class_weights`` makes them average 1 over the training rows, so a weighted mean
        loss stays on the scale of an unweighted one. None: every row weighs 1.
    outputs
        Outputs the network needs for this target (the number of classes for multiclass, else 1).
    """

    name: ClassVar[str]
    metric: ClassVar[str]  # the metric shown in progress and tables; higher is better
    pair_screen: ClassVar[bool] = True  # the interaction screen can read this target's outputs
    has_classes: ClassVar[bool] = False  # the target is a class label (class weights apply)
    compares_by_row_loss: ClassVar[bool] = True  # ``comparison_row_loss`` is ``row_loss``
    class_weights: np.ndarray | None = None
    outputs: int = 1

    @classmethod
    def outputs_for(cls, y: np.ndarray) -> int:
        """Outputs the network needs for encoded targets ``y``."""
        return 1

    def unweighted_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's loss before class weights, shape (n_samples,)."""
        raise NotImplementedError

    def row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's loss, class weights applied, shape (n_samples,)."""
        return self._weighted(self.unweighted_row_loss(out, y), y)

    def comparison_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's loss when two sets of columns are compared on held-out rows (``select.smallest``),
        class weights applied: here the row loss itself (``compares_by_row_loss``).

        Classes are compared by the Brier score instead of the log-loss: a network fitted to a small,
        nearly separable table gives a wrong row a log-loss of 20 or more, and two or three such rows
        decided whether a column could go (wine, 150 cross-fitted rows: a drop that got 3 more rows
        wrong was 0.23 +- 0.15 nats worse, nearly all of it those rows). A row's Brier score is at
        most 2: which rows a set gets wrong decides, not how far past certain its network went.
        """
        return self.row_loss(out, y)

    def _weighted(self, losses: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.class_weights is None:
            return losses
        return losses * torch.as_tensor(self.class_weights).to(device=losses.device, dtype=losses.dtype)[y.long()]

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean of ``row_loss`` over the rows (a 0-d tensor)."""
        return self.row_loss(out, y).mean()

    def scores(self, out: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
        """Reported metrics of ``out`` against ``y``; ``scale`` is the target's standard deviation (regression)."""
        raise NotImplementedError

    def target_outputs(self, y: torch.Tensor) -> torch.Tensor:
        """float64 (n_samples, k): what a column's association with the target is measured against
        (the pair screen, the all-relevant gate): here the encoded target itself, one column."""
        return y.double().reshape(-1, 1)

    def _unweighted_loss(self, out: torch.Tensor, y: torch.Tensor) -> float:
        # reported losses ignore class weights, so that runs with and without weights compare
        return float(self.unweighted_row_loss(out, y).mean())


@dataclass(frozen=True)
class Regression(Datafit):
    """Squared error on the standardised target; reports RMSE in the target's units and R^2."""

    name: ClassVar[str] = "regression"
    metric: ClassVar[str] = "r2"

    def unweighted_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out[:, 0], y, reduction="none")

    def scores(self, out: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
        residual = (out[:, 0] - y).double()
        mse = float((residual**2).mean())
        variance = float(((y.double() - y.double().mean()) ** 2).mean())
        return {"rmse": float(np.sqrt(mse) * scale), "r2": 1.0 - mse / variance if variance > 0 else float("nan")}


@dataclass(frozen=True)
class Binary(Datafit):
    """Logistic loss of the logit ``out[:, 0]``; reports log-loss, accuracy, balanced accuracy and AUC."""

    name: ClassVar[str] = "binary"
    metric: ClassVar[str] = "accuracy"
    has_classes: ClassVar[bool] = True
    compares_by_row_loss: ClassVar[bool] = False  # compared by the Brier score

    def unweighted_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="none")

    def comparison_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The Brier score over both classes, ``2 (p - y)^2`` (see ``Datafit.comparison_row_loss``)."""
        return self._weighted(2.0 * (torch.sigmoid(out[:, 0]) - y.to(out.dtype)) ** 2, y)

    def scores(self, out: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
        loss = self._unweighted_loss(out, y)
        scores = out[:, 0].double().cpu().numpy()
        labels = y.cpu().numpy().astype(np.int64)
        predicted = (scores > 0).astype(np.int64)
        return {
            "log_loss": loss,
            "accuracy": float(np.mean(predicted == labels)),
            "balanced_accuracy": balanced_accuracy(predicted, labels),
            "auc": auc(scores, labels),
        }


# torch's CPU softmax puts a row's classes in vector lanes only from 16 classes on; with fewer, on
# many rows, laying the classes across rows (the rows in the lanes) takes the loss and its backward
# pass 1.5 to 4x faster (benchmarks/loss_kernels.py), with the same values up to the last bit.
ACROSS_ROWS_BELOW_CLASSES = 16
ACROSS_ROWS_FROM_ROWS = 512


@dataclass(frozen=True)
class Multiclass(Datafit):
    """Softmax cross-entropy over ``outputs`` classes; reports log-loss, accuracy and balanced accuracy."""

    name: ClassVar[str] = "multiclass"
    metric: ClassVar[str] = "accuracy"
    has_classes: ClassVar[bool] = True
    compares_by_row_loss: ClassVar[bool] = False  # compared by the Brier score

    @classmethod
    def outputs_for(cls, y: np.ndarray) -> int:
        return int(y.max()) + 1

    def unweighted_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.device.type == "cpu" and out.shape[1] < ACROSS_ROWS_BELOW_CLASSES and out.shape[0] >= ACROSS_ROWS_FROM_ROWS:
            # the classes as the second of three dimensions, the rows as the third
            return F.cross_entropy(out.t().unsqueeze(0), y.unsqueeze(0), reduction="none")[0]
        return F.cross_entropy(out, y, reduction="none")

    def comparison_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The Brier score, the squared distance of the class probabilities from the row's class's
        indicator (see ``Datafit.comparison_row_loss``)."""
        indicator = F.one_hot(y.long(), out.shape[1]).to(out.dtype)
        return self._weighted(((torch.softmax(out, dim=1) - indicator) ** 2).sum(dim=1), y)

    def target_outputs(self, y: torch.Tensor) -> torch.Tensor:
        """Each class's indicator, float64 (n_samples, outputs)."""
        return F.one_hot(y.long(), self.outputs).double()

    def scores(self, out: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
        loss = self._unweighted_loss(out, y)
        predicted = out.argmax(dim=1).cpu().numpy()
        labels = y.cpu().numpy().astype(np.int64)
        return {
            "log_loss": loss,
            "accuracy": float(np.mean(predicted == labels)),
            "balanced_accuracy": balanced_accuracy(predicted, labels),
        }


@dataclass(frozen=True)
class Cox(Datafit):
    """Negative Cox partial log-likelihood of the log-hazard ``out[:, 0]`` (``cox_row_loss``).

    The mean is taken over every row, censored rows adding 0, as glmnet's Cox model does: the mean
    of the row losses then stays the loss, and a batch without events is 0, not 0/0. Reports
    Harrell's C and the Cox loss.
    """

    name: ClassVar[str] = "survival"
    metric: ClassVar[str] = "c_index"
    pair_screen: ClassVar[bool] = False  # a survival time has no outputs the screen's moments read

    def unweighted_row_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cox_row_loss(out, y)

    def target_outputs(self, y: torch.Tensor) -> torch.Tensor:
        """The martingale residual, float64 (n_samples, 1): event minus the Nelson-Aalen cumulative
        hazard at the row's time (``y = +-(1 + time)``, the sign the event: data/survival.py), what a
        Cox score test at zero reads."""
        time, event = y.abs().double().cpu().numpy(), (y > 0).double().cpu().numpy()
        times, inverse = np.unique(time, return_inverse=True)
        events = np.bincount(inverse, weights=event, minlength=len(times))
        at_risk = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(times)))[:-1]])
        hazard = np.cumsum(events / at_risk)
        return torch.as_tensor(event - hazard[inverse], device=y.device).reshape(-1, 1)

    def scores(self, out: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
        loss = self._unweighted_loss(out, y)
        time, is_event = (part.double().cpu().numpy() for part in unfold(y))
        return {"c_index": concordance_index(out[:, 0].double().cpu().numpy(), time, is_event.astype(bool)), "cox_loss": loss}


DATAFITS: dict[str, type[Datafit]] = {fit.name: fit for fit in (Regression, Binary, Multiclass, Cox)}
PRIMARY_METRIC = {name: fit.metric for name, fit in DATAFITS.items()}


def make_datafit(task: str, n_outputs: int = 1, class_weights: np.ndarray | None = None) -> Datafit:
    """The datafit of ``task`` ("regression", "binary", "multiclass" or "survival").

    Parameters
    ----------
    task
        The target's task, as ``TargetEncoding.task`` names it.
    n_outputs
        Outputs of the network (the number of classes for multiclass).
    class_weights
        One weight per class, or None.
    """
    return DATAFITS[task](class_weights=class_weights, outputs=n_outputs)


def row_loss_function(task: str, class_weights: np.ndarray | None = None) -> LossFunction:
    """Each row's loss for ``task`` (``Datafit.row_loss``), for callers that hold a task name."""
    return make_datafit(task, class_weights=class_weights).row_loss


def loss_function(task: str, class_weights: np.ndarray | None = None) -> LossFunction:
    """Mean loss over rows for ``task`` (``Datafit.loss``), for callers that hold a task name."""
    return make_datafit(task, class_weights=class_weights).loss


def evaluate(out: torch.Tensor, y: torch.Tensor, target: TargetEncoding) -> dict[str, float]:
    """Reported metrics of model outputs ``out`` (n_samples, n_outputs) against encoded targets ``y``
    (``Datafit.scores`` of the target's task; losses unweighted whatever ``--class-weight`` says)."""
    return make_datafit(target.task).scores(out, y, target.scale)


__all__ = [
    "DATAFITS",
    "PRIMARY_METRIC",
    "Binary",
    "Cox",
    "Datafit",
    "LossFunction",
    "Multiclass",
    "Regression",
    "evaluate",
    "loss_function",
    "make_datafit",
    "row_loss_function",
]
