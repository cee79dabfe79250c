"""Accelerated proximal gradient (FISTA with backtracking and adaptive restart) on full batches.

The objective for one lambda is ``loss(model(X), y) + lam * sum_g sqrt(d_g) * ||W_g||`` subject
to the later-layer column-norm bound. Each iteration takes a gradient step on the loss and then
applies the exact proximal operator: the group soft-threshold on the first-layer weight (exact
zeros) and the norm-ball projection on the later weights. Fixed points are therefore KKT points,
which a plain autograd step on ``loss + penalty`` would never reach.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import torch

from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import GroupPenalty, neuron_prox
from glselect.model.prox import project_column_norms

MIN_STEP = 1e-10
WINDOW = 5  # iterations over which the mean relative improvement is compared with tol
STEP_GROWTH = 1.1  # after a step the line search accepted at once, try a longer one


@dataclass(frozen=True)
class SolveResult:
    """What one solver run did; both solvers return it."""

    n_iters: int
    converged: bool
    objective: float
    stopped: bool  # ended early because the caller's stop condition held
    loss: float


class ProximalGradient:
    """Minimise one lambda's objective over ``model``'s parameters, in place.

    The solver keeps its momentum and step size between ``run`` calls, so training can be split
    into chunks (for early stopping) and the step carries over between lambdas (warm start).

    Parameters
    ----------
    model
        The network; its parameters are overwritten with the iterates.
    X, y
        Training rows: X (n_samples, n_features), y (n_samples,).
    loss_fn
        Mean loss of outputs against targets.
    penalty
        Group structure of the first layer; None trains without a group penalty.
    max_norm
        Column-norm bound of the later weights.
    neuron_penalty
        Weight of ``sum_h ||W2[:, h]||``, the norms of the weights leaving each first-layer hidden
        unit: a unit whose outgoing weights reach exactly zero is dead and can be pruned.
    """

    exact = True  # every row in every step: a converged run is stationary up to tol

    def __init__(
        self,
        model: GroupLassoMLP,
        X: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFunction,
        penalty: GroupPenalty | None,
        max_norm: float,
        step: float = 1.0,
        neuron_penalty: float = 0.0,
    ) -> None:
        self.model = model
        self.X, self.y = X, y
        self.loss_fn = loss_fn
        self.penalty = penalty
        self.max_norm = max_norm
        self.step = step
        self.lam = 0.0
        self._params = list(model.parameters())
        self._first = 0  # index of the first-layer weight in _params
        later = {id(weight) for weight in model.later_weights}
        self._is_later = [id(p) in later for p in self._params]
        # the weight leaving the first hidden layer, when there is one and neurons are penalised
        self.neuron_penalty = neuron_penalty if model.later_weights else 0.0
        self._second = next(
            (i for i, p in enumerate(self._params) if model.later_weights and p is model.later_weights[0]), -1
        )
        self._reset_momentum()

    def _reset_momentum(self) -> None:
        self._x = [p.detach().clone() for p in self._params]
        self._x_prev = [x.clone() for x in self._x]
        self._t = 1.0
        self._objective: float | None = None

    def set_lambda(self, lam: float) -> None:
        """Start a new lambda from the current weights: momentum from the old objective is void."""
        self.lam = lam
        # let the line search try a longer step again: the curvature changes along the path
        self.step *= 2.0
        self._reset_momentum()

    def _load(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, v in zip(self._params, values):
                p.copy_(v)

    def _penalty_value(self, values: list[torch.Tensor]) -> float:
        value = 0.0
        if self.penalty is not None and self.lam != 0.0:
            value += self.lam * float(self.penalty.value(values[self._first]))
        if self.neuron_penalty:
            value += self.neuron_penalty * float(torch.linalg.vector_norm(values[self._second], dim=0).sum())
        return value

    def _prox(self, values: list[torch.Tensor], step: float) -> list[torch.Tensor]:
        out = []
        for i, v in enumerate(values):
            if i == self._first and self.penalty is not None and self.lam > 0.0:
                v = self.penalty.prox(v, step * self.lam)
            elif self._is_later[i]:
                if i == self._second and self.neuron_penalty:
                    # each column (one hidden unit's outgoing weights) is a group; shrinking and then
                    # capping a vector's norm is the prox of the penalty plus the bound: both are radial
                    v = neuron_prox(v, step * self.neuron_penalty)
                v = project_column_norms(v, self.max_norm)
            out.append(v)
        return out

    @torch.no_grad()
    def _loss_at(self, values: list[torch.Tensor]) -> float:
        self._load(values)
        return float(self.loss_fn(self.model(self.X), self.y))

    def objective(self) -> float:
        """Penalised objective at the current iterate."""
        return self._loss_at(self._x) + self._penalty_value(self._x)

    def run(self, max_iters: int, tol: float, stop: Callable[[torch.Tensor], bool] | None = None) -> SolveResult:
        """Iterate until the mean relative objective improvement per iteration, over the last
        ``WINDOW`` iterations, falls below ``tol``, or for ``max_iters`` iterations, or until
        ``stop(first_layer_weight)`` holds after an accepted iteration.

        Returns
        -------
        SolveResult
            Iterations done, whether it converged, the final objective and loss.
        """
        if self._objective is None:
            self._objective = self.objective()
        recent = deque([self._objective], maxlen=WINDOW + 1)
        converged = stopped = False
        n_iters = 0
        for n_iters in range(1, max_iters + 1):
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * self._t**2)) / 2.0
            beta = (self._t - 1.0) / t_next
            y_point = [x + beta * (x - xp) for x, xp in zip(self._x, self._x_prev)]
            self._load(y_point)
            loss_y = self.loss_fn(self.model(self.X), self.y)
            grads = torch.autograd.grad(loss_y, self._params)
            loss_y_value = float(loss_y.detach())
            backtracked = False
            while True:
                candidate = self._prox([v - self.step * g for v, g in zip(y_point, grads)], self.step)
                loss_candidate = self._loss_at(candidate)
                moves = [c - v for c, v in zip(candidate, y_point)]
                linear = sum(float((g * m).sum()) for g, m in zip(grads, moves))
                quadratic = sum(float((m * m).sum()) for m in moves) / (2.0 * self.step)
                # sufficient decrease of the smooth part; slack for float32 rounding
                if loss_candidate <= loss_y_value + linear + quadratic + 1e-6 * abs(loss_y_value):
                    break
                self.step *= 0.5
                backtracked = True
                if self.step < MIN_STEP:
                    break
            objective = loss_candidate + self._penalty_value(candidate)
            if not math.isfinite(objective):
                break
            if objective > self._objective:
                if beta == 0.0:
                    # even a plain proximal step does not improve: stationary up to rounding
                    converged = True
                    break
                # momentum overshot: restart from the last accepted point
                self._x_prev = [x.clone() for x in self._x]
                self._t = 1.0
                continue
            self._x_prev, self._x = self._x, candidate
            self._objective = objective
            self._t = t_next
            if not backtracked:
                self.step *= STEP_GROWTH
            recent.append(objective)
            if stop is not None and stop(candidate[self._first]):
                stopped = True
                break
            # mean improvement over a window: single iterations are noisy under momentum
            if len(recent) == recent.maxlen:
                improvement = (recent[0] - objective) / (WINDOW * max(abs(objective), 1e-12))
                if improvement < tol:
                    converged = True
                    break
        self._load(self._x)
        return SolveResult(
            n_iters=n_iters, converged=converged, objective=self._objective, loss=self._loss_at(self._x), stopped=stopped
        )
