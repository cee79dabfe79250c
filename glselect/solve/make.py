"""The one place that looks at the kind of training rows: it picks how they are solved.

Rows in memory (``FullBatch``) are solved exactly by full-batch FISTA, each lambda screened to
the groups that can be non-zero; streamed rows (``MiniBatches``) by proximal SGD, a budget of
mini-batch steps per lambda. ``make_solving(rows, settings)`` returns the object that knows which:
its solver, its iteration budgets, one lambda's solve, the training loss it can report, the mean
gradient of the first layer and a sample of the rows. A new row source is one new class here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from glselect import distributed
from glselect.data.source import FullBatch, TrainingRows
from glselect.data.stream import MiniBatches
from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.solve.base import Budget, LambdaSolve, Settings, Solver, SolveResult, lambda_budget
from glselect.solve.fista import ProximalGradient
from glselect.solve.screening import (
    first_layer_gradient,
    solve_screened,
    too_many_departures,
)
from glselect.solve.sgd import ProximalSGD

MAX_PROBE_BATCHES = 64  # mini-batches averaged for the gradient at a zero first layer (lambda_max estimate)
MIN_RELAX_STEPS = 100  # mini-batch steps that score a support, on tables with few steps per lambda


@dataclass(frozen=True)
class FullBatchSolving:
    """Every training row in every step: exact solves (a converged run is stationary up to tol)."""

    rows: FullBatch
    settings: Settings
    exact = True

    def solver(self, model: GroupLassoMLP, objective: Objective, key: int = 0, step: float = 1.0) -> Solver:
        """Full-batch FISTA on ``model`` (``key`` is unused: no shuffles)."""
        return ProximalGradient(model, self.rows.rows, objective, step=step)

    def budget(self, kind: str) -> Budget:
        """Iterations for ``kind``: "train" (dense fit, refit), "lambda" (one path step) or "relax" (a relaxed score)."""
        train, path = self.settings.train, self.settings.path
        max_iters = {"train": train.max_iters, "lambda": path.max_iters_per_lambda, "relax": path.relax_iters}[kind]
        return Budget(max_iters, train.check_every, train.patience)

    def solve_lambda(
        self, model: GroupLassoMLP, objective: Objective, solve: LambdaSolve, step: float, key: int
    ) -> tuple[SolveResult, float]:
        """Screened FISTA from the ``solve.working`` groups, stopping once more than ``solve.max_departures`` leave."""
        budget = lambda_budget(self.settings.path.max_iters_per_lambda, solve)
        limits = (budget, self.settings.path.tol_for(self.settings.model.hidden))
        return solve_screened(model, self.rows.rows, objective, solve, step, limits)

    def training_loss(self, model: GroupLassoMLP, loss_fn: LossFunction) -> float:
        """Mean loss over every training row."""
        with torch.no_grad():
            return float(loss_fn(model(self.rows.rows.X), self.rows.rows.y))

    def mean_first_layer_gradient(self, model: GroupLassoMLP, loss_fn: LossFunction, key: int) -> torch.Tensor:
        """``dL/dW1`` over every training row, shape (fan_out, n_features)."""
        return first_layer_gradient(model, self.rows.rows.X, self.rows.rows.y, loss_fn)

    def sample(self, wanted: int, key: int, max_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """About ``wanted`` evenly spaced training rows (a table sorted by anything is still sampled across)."""
        X, y = self.rows.rows.X, self.rows.rows.y
        if len(y) > wanted:
            picked = torch.linspace(0, len(y) - 1, wanted, device=y.device).round().long()
            X, y = X.index_select(0, picked), y.index_select(0, picked)
        return X, y


@dataclass(frozen=True)
class MiniBatchSolving:
    """Mini-batches of a stream, per torchrun rank: each solve carries mini-batch noise."""

    rows: MiniBatches
    settings: Settings
    exact = False

    @property
    def context(self) -> distributed.Context:
        return self.rows.context

    def solver(self, model: GroupLassoMLP, objective: Objective, key: int = 0, step: float = 1.0) -> Solver:
        """Proximal SGD reading the shuffles ``key`` names (``step`` is unused: the learning rate is set)."""
        return ProximalSGD(model, self.rows, objective, self.settings.stream, key)

    def budget(self, kind: str) -> Budget:
        """Mini-batch steps for ``kind`` ("train", "lambda", "relax"), counted in epochs of this stream."""
        stream = self.settings.stream
        per_epoch = self.rows.steps_per_epoch
        per_lambda = max(1, round(stream.epochs_per_lambda * per_epoch))
        max_iters = {
            "train": max(1, round(stream.max_epochs * per_epoch)),
            "lambda": per_lambda,
            # the fine-tune that scores a support must undo the penalty's shrinkage: a quarter of a
            # lambda's steps on large tables, at least a few epochs (up to MIN_RELAX_STEPS) on small ones
            "relax": max(per_lambda // 4, min(MIN_RELAX_STEPS, 3 * per_epoch), 1),
        }[kind]
        return Budget(max_iters, max(1, per_epoch // 4), self.settings.train.patience)

    def solve_lambda(
        self, model: GroupLassoMLP, objective: Objective, solve: LambdaSolve, step: float, key: int
    ) -> tuple[SolveResult, float]:
        """One budget of SGD steps, stopping once more than ``solve.max_departures`` of the ``solve.working`` groups leave."""
        solver = self.solver(model, objective, key)
        solver.set_lambda(solve.lam)
        assert objective.penalty is not None  # a path's lambda always has its penalty
        stop = too_many_departures(objective.penalty, solve.working, solve.max_departures)
        return solver.run(self.budget("lambda").max_iters, self.settings.path.tol_for(self.settings.model.hidden), stop=stop), step

    def training_loss(self, model: GroupLassoMLP, loss_fn: LossFunction) -> float:
        """NaN: a stream has no exact training loss (a step's record carries its run's mean)."""
        return float("nan")

    def mean_first_layer_gradient(self, model: GroupLassoMLP, loss_fn: LossFunction, key: int) -> torch.Tensor:
        """``dL/dW1`` averaged over up to ``MAX_PROBE_BATCHES`` mini-batches and every rank."""
        n_batches = min(self.rows.steps_per_epoch, MAX_PROBE_BATCHES)
        batches = self.rows.stream(key=key)
        gradient = torch.zeros_like(model.first_weight)
        for _ in range(n_batches):
            X, y = next(batches)
            model.zero_grad(set_to_none=True)
            loss_fn(model(X), y).backward()
            batch_gradient = model.first_weight.grad
            assert batch_gradient is not None  # backward() just filled it
            gradient += batch_gradient
        gradient = distributed.all_reduce_sum(gradient.cpu(), self.context) / (n_batches * self.context.world_size)
        return gradient.to(model.first_weight.device)

    def sample(self, wanted: int, key: int, max_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share (``wanted / world_size``) of the first mini-batches of the shuffle ``key``
        names, at most ``max_batches`` of them."""
        per_rank = math.ceil(wanted / self.context.world_size)
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        batches, n_read = self.rows.stream(key=key), 0
        for _ in range(min(self.rows.steps_per_epoch, max_batches)):
            if n_read >= per_rank:
                break
            parts.append(next(batches))
            n_read += len(parts[-1][1])
        return torch.cat([part[0] for part in parts])[:per_rank], torch.cat([part[1] for part in parts])[:per_rank]


Solving = FullBatchSolving | MiniBatchSolving


def make_solving(rows: TrainingRows, settings: Settings) -> Solving:
    """How ``rows`` are solved: full-batch FISTA for rows in memory, proximal SGD for a stream."""
    if isinstance(rows, FullBatch):
        return FullBatchSolving(rows, settings)
    assert isinstance(rows, MiniBatches)  # the two kinds of TrainingRows
    return MiniBatchSolving(rows, settings)


def make_solver(
    rows: TrainingRows, settings: Settings, model: GroupLassoMLP, objective: Objective, key: int = 0, step: float = 1.0
) -> Solver:
    """The solver for ``rows`` on ``model`` and ``objective`` (see ``make_solving``)."""
    return make_solving(rows, settings).solver(model, objective, key, step)


__all__ = ["FullBatchSolving", "MiniBatchSolving", "Solving", "make_solver", "make_solving"]
