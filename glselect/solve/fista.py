"""Accelerated proximal gradient (FISTA with backtracking and adaptive restart) on full batches.

The objective for one lambda is ``loss(model(X), y) + lam * sum_g sqrt(d_g) * ||W_g||`` subject
to the later-layer column-norm bound. Each iteration takes a gradient step on the loss and then
applies the exact proximal operator: the group soft-threshold on the first layer weight (exact
zeros) and the norm-ball projection on the later weights. Fixed points are therefore KKT points,
which a plain autograd step on ``loss + penalty`` would never reach.

The hot loop stays on the device. Every decision an iteration makes (accept the trial point or
halve the step, restart the momentum, converged, stop) is a 0-d tensor combined with
``torch.where``; nothing is read back to Python inside an iteration. The loop looks at one flag,
``done``, every ``READ_EVERY`` iterations; once it is set the remaining iterations of that block
change nothing. Each iteration tries exactly one step length: a rejected trial halves the step
and the next iteration tries again from the same point, so the body has static shapes and no
data-dependent control flow (what a CUDA graph or ``torch.compile`` needs to capture it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import GroupPenalty, neuron_prox
from glselect.model.prox import project_column_norms

MIN_STEP = 1e-10
WINDOW = 5  # accepted iterations over which the mean relative improvement is compared with tol
STEP_GROWTH = 1.1  # after a step the line search accepted at once, try a longer one
GROW_BELOW = 0.5  # ...and only where the loss curved less than this share of its quadratic bound
# A rejected trial step (the line search halving) does not count against a run's iteration budget,
# as a halving inside the old per-iteration line search did not; up to this share of extra trials
BACKTRACK_ALLOWANCE = 0.25
# Iterations between host reads of the ``done`` flag. A read synchronises a GPU (tens of
# microseconds, more than a mid-sized iteration's arithmetic) and costs Python time on a CPU; a
# run that finishes inside a block spends at most READ_EVERY - 1 idle iterations (no-ops on the
# weights), so the block is short next to the 50 iterations a lambda typically gets.
READ_EVERY = 8
ObjectiveStop = Callable[[torch.Tensor], torch.Tensor]  # first-layer weight -> 0-d bool tensor


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
    step
        Starting step length (a float, or a 0-d tensor carried from another solver: no host read).
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
        step: float | torch.Tensor = 1.0,
        neuron_penalty: float = 0.0,
    ) -> None:
        self.model = model
        self.X, self.y = X, y
        self.loss_fn = loss_fn
        self.penalty = penalty
        self.max_norm = max_norm
        self._params = list(model.parameters())
        like = self._params[0].detach()
        self._step = torch.as_tensor(step, dtype=like.dtype).to(like.device).clone()
        self.lam = 0.0
        self._lam = torch.zeros((), dtype=like.dtype, device=like.device)
        self._first = 0  # index of the first-layer weight in _params
        later = {id(weight) for weight in model.later_weights}
        self._is_later = [id(p) in later for p in self._params]
        # the weight leaving the first hidden layer, when there is one and neurons are penalised
        self.neuron_penalty = neuron_penalty if model.later_weights else 0.0
        self._second = next(
            (i for i, p in enumerate(self._params) if model.later_weights and p is model.later_weights[0]), -1
        )
        self._reset_momentum()

    @property
    def step(self) -> float:
        """The line search's current step length (a host read: once per solve, not per iteration)."""
        return float(self._step)

    def _reset_momentum(self) -> None:
        self._x = [p.detach().clone() for p in self._params]
        self._x_prev = [x.clone() for x in self._x]
        self._t = torch.ones((), dtype=self._step.dtype, device=self._step.device)
        self._objective: torch.Tensor | None = None
        self._backtracked = torch.zeros((), dtype=torch.bool, device=self._step.device)

    def set_lambda(self, lam: float) -> None:
        """Start a new lambda from the current weights: momentum from the old objective is void."""
        self.lam = lam
        self._lam.fill_(lam)
        # let the line search try a longer step again: the curvature changes along the path
        self._step.mul_(2.0)
        self._reset_momentum()

    def _load(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, v in zip(self._params, values):
                p.copy_(v)

    def _penalty_value(self, values: list[torch.Tensor]) -> torch.Tensor:
        value = torch.zeros((), dtype=self._step.dtype, device=self._step.device)
        if self.penalty is not None and self.lam != 0.0:
            value = value + self._lam * self.penalty.value(values[self._first])
        if self.neuron_penalty:
            value = value + self.neuron_penalty * torch.linalg.vector_norm(values[self._second], dim=0).sum()
        return value

    def _prox(self, values: list[torch.Tensor], step: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The prox of every part at ``step``, and the penalty at the result."""
        out = []
        penalty_value = torch.zeros((), dtype=self._step.dtype, device=self._step.device)
        for i, v in enumerate(values):
            if i == self._first and self.penalty is not None and self.lam > 0.0:
                v, group_value = self.penalty.prox_and_value(v, step * self._lam)
                penalty_value = penalty_value + self._lam * group_value
            elif self._is_later[i]:
                if i == self._second and self.neuron_penalty:
                    # each column (one hidden unit's outgoing weights) is a group; shrinking and then
                    # capping a vector's norm is the prox of the penalty plus the bound: both are radial
                    v = neuron_prox(v, step * self.neuron_penalty)
                v = project_column_norms(v, self.max_norm)
                if i == self._second and self.neuron_penalty:
                    penalty_value = penalty_value + self.neuron_penalty * torch.linalg.vector_norm(v, dim=0).sum()
            out.append(v)
        return out, penalty_value

    @torch.no_grad()
    def _loss_at(self, values: list[torch.Tensor]) -> torch.Tensor:
        self._load(values)
        return self.loss_fn(self.model(self.X), self.y).detach()

    def objective(self) -> float:
        """Penalised objective at the current iterate (a host read)."""
        return float(self._loss_at(self._x) + self._penalty_value(self._x))

    def run(self, max_iters: int, tol: float, stop: ObjectiveStop | None = None) -> SolveResult:
        """Iterate until the mean relative objective improvement per accepted iteration, over the
        last ``WINDOW`` accepted iterations, falls below ``tol``, or for ``max_iters`` iterations
        (rejected trial steps not counted, up to ``BACKTRACK_ALLOWANCE`` of them), or until ``stop(first_layer_weight)`` (a 0-d bool tensor) holds
        after an accepted iteration.

        Reads the device at most once per ``READ_EVERY`` iterations, and once at the end.

        Returns
        -------
        SolveResult
            Iterations done, whether it converged, the final objective and loss.
        """
        device = self._step.device
        if self._objective is None:
            self._objective = self._loss_at(self._x) + self._penalty_value(self._x)
        flags = _Flags(
            history=self._objective.expand(WINDOW + 1).clone(),
            n_accepted=torch.zeros((), dtype=torch.int64, device=device),
            n_iters=torch.zeros((), dtype=torch.int64, device=device),
            done=torch.zeros((), dtype=torch.bool, device=device),
            converged=torch.zeros((), dtype=torch.bool, device=device),
            stopped=torch.zeros((), dtype=torch.bool, device=device),
        )
        for i in range(max_iters + int(BACKTRACK_ALLOWANCE * max_iters)):
            if i and i % READ_EVERY == 0 and bool(flags.done):
                break
            self._iterate(flags, tol, stop, max_iters)
        final_loss = self._loss_at(self._x)
        n_iters, converged, stopped, objective, loss = torch.stack(
            [flags.n_iters.double(), flags.converged.double(), flags.stopped.double(), self._objective.double(),
             final_loss.double()]
        ).tolist()
        return SolveResult(
            n_iters=int(n_iters), converged=bool(converged), objective=objective, loss=loss, stopped=bool(stopped)
        )

    def _iterate(self, flags: _Flags, tol: float, stop: ObjectiveStop | None, max_iters: int) -> None:
        """One trial step from the momentum point; every outcome is selected by tensor masks."""
        active = ~flags.done
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * self._t * self._t)) / 2.0
        beta = (self._t - 1.0) / t_next
        y_point = [x + beta * (x - xp) for x, xp in zip(self._x, self._x_prev)]
        self._load(y_point)
        loss_y = self.loss_fn(self.model(self.X), self.y)
        grads = torch.autograd.grad(loss_y, self._params)
        with torch.no_grad():
            loss_y = loss_y.detach()
            step = self._step
            candidate, candidate_penalty = self._prox([v - step * g for v, g in zip(y_point, grads)], step)
            loss_candidate = self._loss_at(candidate)
            moves = [c - v for c, v in zip(candidate, y_point)]
            linear = torch.stack([(g * m).sum() for g, m in zip(grads, moves)]).sum()
            quadratic = torch.stack([(m * m).sum() for m in moves]).sum() / (2.0 * step)
            # sufficient decrease of the smooth part; slack for float32 rounding
            fits = (loss_candidate <= loss_y + linear + quadratic + 1e-6 * loss_y.abs()) | (step < MIN_STEP)
            objective = loss_candidate + candidate_penalty
            finite = torch.isfinite(objective)
            settled = active & fits & finite
            improved = objective <= self._objective
            accept = settled & improved
            # momentum overshot: restart from the last accepted point; with no momentum to blame,
            # a plain proximal step that does not improve is stationary up to rounding
            restart = settled & ~improved & (beta > 0)
            stationary = settled & ~improved & (beta == 0)
            backtrack = active & ~fits

            moved = accept | restart
            self._x_prev = [torch.where(moved, x, xp) for x, xp in zip(self._x, self._x_prev)]
            self._x = [torch.where(accept, c, x) for c, x in zip(candidate, self._x)]
            self._objective = torch.where(accept, objective, self._objective)
            self._t = torch.where(accept, t_next, torch.where(restart, torch.ones_like(self._t), self._t))
            # lengthen the step only where the loss curved well below the quadratic bound: growing
            # after every accepted step made about one trial in eight a rejected (wasted) iteration
            curvature = loss_candidate - loss_y - linear
            grow = accept & ~self._backtracked & (curvature <= GROW_BELOW * quadratic)
            self._step = torch.where(backtrack, step * 0.5, torch.where(grow, step * STEP_GROWTH, step))
            self._backtracked = torch.where(active, backtrack, self._backtracked)

            flags.n_iters += (active & ~backtrack).long()
            flags.n_accepted += accept.long()
            flags.history = torch.where(accept, torch.cat([flags.history[1:], objective.reshape(1)]), flags.history)
            # mean improvement over a window: single iterations are noisy under momentum
            improvement = (flags.history[0] - objective) / (WINDOW * torch.clamp(objective.abs(), min=1e-12))
            window_converged = accept & (flags.n_accepted >= WINDOW) & (improvement < tol)
            stopped = accept & stop(self._x[self._first]) if stop is not None else torch.zeros_like(accept)
            flags.converged |= window_converged | stationary
            flags.stopped |= stopped
            flags.done |= window_converged | stationary | stopped | (active & fits & ~finite) | (flags.n_iters >= max_iters)


@dataclass
class _Flags:
    """One run's state on the device: the recent accepted objectives and what has happened."""

    history: torch.Tensor  # (WINDOW + 1,): the last accepted objectives, oldest first
    n_accepted: torch.Tensor
    n_iters: torch.Tensor  # iterations done before ``done`` was set, rejected trial steps not counted
    done: torch.Tensor
    converged: torch.Tensor
    stopped: torch.Tensor
