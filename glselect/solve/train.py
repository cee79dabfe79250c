"""The one early-stopping loop: unpenalised training checked on held-out rows (the dense start,
relaxed scores and refits, for either solver)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.errors import GlselectError
from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.solve.base import Budget, Solver


@dataclass(frozen=True)
class TrainResult:
    n_iters: int
    best_val_loss: float
    stopped_early: bool  # validation loss stopped improving before max_iters


@torch.no_grad()
def mean_loss(model: GroupLassoMLP, rows: Rows, loss_fn: LossFunction) -> float:
    return float(loss_fn(model(rows.X), rows.y)) if len(rows) else math.nan


@torch.no_grad()
def mean_and_se(model: GroupLassoMLP, rows: Rows, row_loss_fn: LossFunction) -> tuple[float, float, np.ndarray | None]:
    """``model``'s mean loss over ``rows``, its standard error (0 for one row) and each row's loss
    (float32); NaN, NaN, None for no rows."""
    if len(rows) == 0:
        return math.nan, math.nan, None
    losses = row_loss_fn(model(rows.X), rows.y).double()
    se = float(losses.std() / math.sqrt(max(losses.numel(), 1))) if losses.numel() > 1 else 0.0
    return float(losses.mean()), se, losses.float().cpu().numpy()


def train_early_stopped(solver: Solver, model: GroupLassoMLP, val: Rows, loss_fn: LossFunction, budget: Budget) -> TrainResult:
    """Run ``solver`` (lambda 0) on ``model`` in chunks; keep the weights with the best validation loss.

    Stops once ``budget.patience`` checks in a row have not lowered the best validation loss by
    more than ``budget.min_gain`` (and a relative 1e-6) below where it stood at the last such gain,
    or after ``budget.max_iters`` iterations.

    Parameters
    ----------
    model
        The model ``solver`` updates in place; it ends with the best weights seen.
    val
        Held-out rows read by ``model`` as they are (already restricted to its columns).

    Raises
    ------
    GlselectError
        The training loss is not finite (diverged).
    """
    best_loss = mean_loss(model, val, loss_fn)
    best_state = copy.deepcopy(model.state_dict())
    reference = best_loss  # the best loss at the last gain that counted
    n_iters = 0
    checks_without_gain = 0
    stopped_early = False
    while n_iters < budget.max_iters:
        result = solver.run(min(budget.check_every, budget.max_iters - n_iters), tol=1e-7)
        n_iters += result.n_iters
        if not solver.exact and not math.isfinite(result.loss):
            raise GlselectError(
                "training diverged: the loss is not finite",
                hint="check the table for extreme values (streaming: lower --learning-rate)",
            )
        val_loss = mean_loss(model, val, loss_fn)
        if val_loss < best_loss - 1e-6 * abs(best_loss):
            best_loss = val_loss
            best_state = copy.deepcopy(model.state_dict())
        if best_loss < reference - max(budget.min_gain, 1e-6 * abs(reference)):
            reference = best_loss
            checks_without_gain = 0
        else:
            checks_without_gain += 1
        if checks_without_gain >= budget.patience or (solver.exact and result.converged):
            stopped_early = True
            break
    model.load_state_dict(best_state)
    return TrainResult(n_iters=n_iters, best_val_loss=best_loss, stopped_early=stopped_early)
