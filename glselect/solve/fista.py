"""Accelerated proximal gradient (FISTA with backtracking and adaptive restart) on full batches.

The objective for one lambda is ``loss(model(X), y) + lam * sum_g sqrt(d_g) * ||W_g||`` subject
to the later-layer column-norm bound. Each iteration takes a gradient step on the loss and then
applies the exact proximal operator: the group soft-threshold on the first layer weight (exact
zeros) and the norm-ball projection on the later weights. Fixed points are therefore KKT points,
which a plain autograd step on ``loss + penalty`` would never reach.

The hot loop can stay on the device. Every decision an iteration makes (accept the trial point
or halve the step, restart the momentum, converged, stop) is a comparison of 0-d tensors; off
the CPU they are combined with ``torch.where`` (``_settle_on_device``) and the loop looks at one
flag, ``done``, every ``READ_EVERY`` iterations; once it is set the remaining iterations of that
block change nothing. Each iteration tries exactly one step length: a rejected trial halves the
step and the next iteration tries again from the same point, so the body has static shapes and
no data-dependent control flow (what a CUDA graph or ``torch.compile`` needs to capture it). On
a CPU a read costs less than the masks: the trial's numbers are read back each iteration and the
decisions taken in Python (``_settle_on_host``), with the step length and momentum counter held
as NumPy scalars (a 0-d tensor operation costs microseconds), which also lets the iteration
after a rejected trial reuse the gradient at the unchanged point. Both give the same iterates,
bit for bit.

The iterates are one flat vector holding every parameter, and the network is evaluated on views
of it (``GroupLassoMLP.forward_with``): the momentum point, the move, its inner products and the
accept mask are one operation each rather than one per parameter (on a CPU a small network's
iteration is mostly such operations' fixed cost).

The first layer's pre-activations ``Z = X W1^T`` are linear in its weight, so the solver keeps them
for the current and the previous iterate and takes the momentum point's as the same combination
of the two (``torch.lerp``) instead of multiplying X again: of the three products with the whole
table an iteration made (the momentum point's forward pass, its weight gradient ``dZ^T X``, the
trial point's forward pass) two remain. On a tall table those products are most of the time; on
a small one the bookkeeping costs more than the product saves, and on a wide one it was measured
to walk a longer path, so there the solver multiplies again (``CARRY_FIRST_FROM``). The
combination differs from the product by float32 rounding, inside the line search's slack.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.solve.base import ObjectiveStop, SolveResult
from glselect.solve.stationarity import SAMPLES, min_norm_weights

MIN_STEP = 1e-10
# the line search's float32 slack, relative to the loss or 1, whichever is larger (``_trial``)
LINE_SEARCH_SLACK = 1e-6
# A penalised run stalls, and stops unconverged, once its objective's relative improvement per
# accepted iteration (a moving mean over about STALL_WINDOW of them) falls below STALL_TOL before
# it converges: on ReLU networks at small lambda the optimality measure can hover at a tenth to a
# half of lambda for thousands of iterations (hundreds of noise groups shrinking together, the
# line search's step shrinking at the kinks). Solving those further costs more than the path:
# measured on Friedman #1 1,500 x 100 with 300 iterations per lambda and no stall test, 3.5x the
# time, and 19 of 83 steps still short. These are the numbers of the test that ended every solve
# before optimality was measured, so a stalled run costs what it did.
STALL_WINDOW = 5
STALL_TOL = 1e-4
STALL_DECAY = 1.0 - 1.0 / STALL_WINDOW
# Unpenalised runs (lambda 0: the dense fit, relaxed scores, refits) stop on validation loss; their
# own convergence test is a mean relative improvement below tol over this many accepted iterations.
WINDOW = 5
STEP_GROWTH = 1.1  # after a step the line search accepted at once, try a longer one
# A rejected trial step (the line search halving) does not count against a run's iteration budget,
# as a halving inside a per-iteration line search would not; up to this share of extra trials.
# Measured on Friedman #1 20,000 x 500: a quarter (with growth only where the loss curved little)
# left lambdas short of progress, and the path took 181 lambdas and 1.7x the time instead of 137.
BACKTRACK_ALLOWANCE = 1.0
# Iterations between host reads of the ``done`` flag off the CPU. A read synchronises a GPU (tens
# of microseconds, more than a mid-sized iteration's arithmetic); a run that finishes inside a
# block spends at most READ_EVERY - 1 idle iterations (no-ops on the weights), short next to the
# 50 iterations a lambda typically gets. On a CPU a read costs about a microsecond: the loop
# reads every iteration there.
READ_EVERY = 8
# The first-layer product is carried (module docstring) from this many table cells (rows x the
# columns the solve reads), more than CARRY_FIRST_COLUMNS columns and at least as many rows as
# columns. Measured per iteration, hidden 32, one thread: 15,000 x 500 37.1 -> 30.4 ms, 1,000 x 200
# 3.7 -> 2.2, 15,000 x 40 6.8 -> 5.1; 15,000 x 10 and 2,000 x 30 the same; 5,000 x 30 2.5 -> 2.7,
# 300 x 8 1.2 -> 1.35. A wide table's iterations were cheaper too (200 x 10,000: 19.7 -> 14.8 ms),
# but its default fit walked 357 lambdas instead of 225 (38.9 s against 35.4) and kept a noise
# column: not carried there.
CARRY_FIRST_FROM = 100_000
CARRY_FIRST_COLUMNS = 32
# On a network with hidden ReLU units a penalised run also converges when the smallest convex
# combination of the gradient mappings at its last ``SAMPLES`` accepted iterates is within tol
# (``glselect.solve.stationarity``: at a minimum on the units' kinks no single point's mapping
# vanishes). Looked at every SAMPLE_EVERY trials, once the best single-point measure is within
# SAMPLE_FROM times tol (further out a combination is rarely that much smaller, and each look
# costs a millisecond on the host), over iterates within SAMPLE_RADIUS of the newest (relative
# to its norm: a combination of far-apart points says nothing about any one of them).
SAMPLE_EVERY = 8
SAMPLE_FROM = 10.0
SAMPLE_RADIUS = 1e-2


_MOMENTUM: dict[torch.dtype, list[float]] = {}


def momentum_weight(k: int, dtype: torch.dtype) -> float:
    """FISTA's momentum weight ``(t_k - 1) / t_{k+1}`` at the k-th step since a (re)start
    (``t_0 = 1``, ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``), as the device's 0-d tensors compute
    it, bit for bit (torch's float32 sqrt is not NumPy's correctly rounded one): the sequence is
    the same for every run, so the host looks it up instead of spending eight tensor operations."""
    weights = _MOMENTUM.setdefault(dtype, [])
    if k >= len(weights):
        t = torch.ones((), dtype=dtype)
        values = []
        for _ in range(max(2 * k, 64)):
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
            values.append(float((t - 1.0) / t_next))
            t = t_next
        weights[:] = values
    return weights[k]


def default_read_every(device: torch.device) -> int:
    return 1 if device.type == "cpu" else READ_EVERY


class ProximalGradient:
    """Minimise one lambda's objective over ``model``'s parameters, in place.

    The solver keeps its momentum and step size between ``run`` calls, so training can be split
    into chunks (for early stopping) and the step carries over between lambdas (warm start).

    Parameters
    ----------
    model
        The network; its parameters are overwritten with the iterate at the end of each run.
    rows
        Training rows: X (n_samples, n_features), y (n_samples,).
    objective
        The loss, the first-layer penalty (None trains without one), the later weights' norm
        bound and the neuron penalty (``glselect.model.objective``). A network without hidden
        units has no unit for the neuron penalty to prune: it is then left out.
    step
        Starting step length (a float, or a 0-d tensor carried from another solver: no host read).
    read_every
        Iterations between looks at the ``done`` flag (default: 1 on a CPU, ``READ_EVERY`` on
        other devices). The iterates are the same whatever it is; only the reads differ.
    """

    exact = True  # every row in every step: a converged run is stationary up to tol

    def __init__(
        self,
        model: GroupLassoMLP,
        rows: Rows,
        objective: Objective,
        step: float | torch.Tensor = 1.0,
        read_every: int | None = None,
    ) -> None:
        self.model = model
        self.X, self.y = rows.X, rows.y
        self.loss_fn = objective.loss_fn
        self.objective_parts = objective if model.later_weights else dataclasses.replace(objective, neuron_penalty=0.0)
        self._params = list(model.parameters())
        self._shapes = [p.shape for p in self._params]
        self._sizes = [p.numel() for p in self._params]
        like = self._params[0].detach()
        self.read_every = read_every or default_read_every(like.device)
        # a solver that reads every iteration (a CPU) holds its step length and momentum counter
        # as NumPy scalars of the weights' dtype: the same arithmetic, bit for bit, without a
        # tensor operation's fixed cost (a dozen of them an iteration on a small network)
        self._on_host = self.read_every == 1
        self._scalar = torch.empty((), dtype=like.dtype).numpy().dtype.type
        self._step: torch.Tensor | np.floating = (
            self._scalar(float(step)) if self._on_host else torch.as_tensor(step, dtype=like.dtype).to(like.device).clone()
        )
        self.lam = 0.0
        self._lam = torch.zeros((), dtype=like.dtype, device=like.device)
        # parameters() order is layer 0's weight and bias, then layer 1's, ...: index 0 is the
        # penalised weight, every later even index a bounded one, index 2 the hidden units' outgoing weights
        self._later = list(range(2, len(self._params), 2))
        n_rows, n_columns = self.X.shape
        self._carry_first = self.X.numel() >= CARRY_FIRST_FROM and CARRY_FIRST_COLUMNS < n_columns <= n_rows
        penalty = objective.penalty
        # the optimality measure's scales: each first-layer group's penalty weight, and for the
        # unpenalised parameters together sqrt of their count (the weight a group of that size gets)
        self._group_weights = penalty.weights.to(like.dtype) if penalty is not None else None
        self._rest_weight = max(sum(self._sizes[1:]), 1) ** 0.5
        # the stall test is for the kinks of hidden ReLU units; without hidden layers the problem is
        # convex and FISTA converges by the measure (tests/solve/test_reference_skglm.py)
        self._can_stall = bool(model.later_weights)
        # the gradient mappings of the last accepted iterates and the iterates (``_Samples``), for
        # a penalised run on a network with hidden units; None: the single point's measure alone.
        # The buffers are made once per solver (``_sample_buffers``); each run fills them anew.
        self._samples: _Samples | None = None
        self._buffers: _Samples | None = None
        self._reset_momentum()

    @property
    def step(self) -> float:
        """The line search's current step length (a host read: once per solve, not per iteration)."""
        return float(self._step)

    def _reset_momentum(self) -> None:
        self._x = torch.cat([p.detach().reshape(-1) for p in self._params])
        self._x_prev = self._x.clone()
        # the first layer's products at both (``_first_product``; None: not carried): the momentum point's are their lerp
        self._z = self._first_product(self._views(self._x)) if self._carry_first else None
        self._z_prev = self._z
        like = self._params[0]
        # the momentum counter (on the host: its index in ``momentum_weight``'s sequence)
        self._t: torch.Tensor | int = 0 if self._on_host else torch.ones((), dtype=like.dtype, device=like.device)
        # the objective at the last accepted point; None until a run computes it at its start
        self._objective: torch.Tensor | None = None
        # whether the last trial was rejected (it carries over between runs): a tensor for
        # decisions on the device, a bool for decisions on the host
        self._backtracked = torch.zeros((), dtype=torch.bool, device=like.device)
        self._backtracked_on_host = False
        # the momentum point with its loss and gradient, while a rejected trial may reuse them
        self._at_y: _Point | None = None

    def set_lambda(self, lam: float) -> None:
        """Start a new lambda from the current weights: momentum from the old objective is void."""
        self.lam = lam
        self._lam.fill_(lam)
        # let the line search try a longer step again: the curvature changes along the path
        self._step = self._step * 2.0
        self._reset_momentum()

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [piece.view(shape) for piece, shape in zip(flat.split(self._sizes), self._shapes)]

    # The helpers below take a flat vector's ``_views`` (the parameters' shapes): a trial computes
    # its candidate's views once for the prox, the product and the loss (each a few tensor operations).
    def _loss(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(self.model.forward_with(views, self.X), self.y)

    def _first_product(self, views: list[torch.Tensor]) -> torch.Tensor:
        """``X W1^T`` for the first-layer weight in ``views``: the pre-activations without the bias."""
        with torch.no_grad():
            return self.X @ views[0].T

    def _loss_from_first(self, views: list[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """The loss at ``views`` given its first-layer product ``z`` (``_first_product``)."""
        return self.loss_fn(self.model.forward_from_first_with(views, z + views[1]), self.y)

    def _loss_and_gradient(self, flat: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss at ``flat`` (whose first-layer product is ``z``) and its gradient, flat.

        Autograd runs from the loss back to ``z`` and the later parameters; the first-layer weight's
        gradient is then ``dZ^T X`` (one product with the table, as autograd's own would be)."""
        first_size = self._sizes[0]
        rest = flat[first_size:].detach().requires_grad_(True)
        z = z.detach().requires_grad_(True)
        # the first weight as a view of ``flat`` and the rest as views of the leaf: no copy of either
        later = [piece.view(shape) for piece, shape in zip(rest.split(self._sizes[1:]), self._shapes[1:])]
        loss = self._loss_from_first([flat[:first_size].detach().view(self._shapes[0]), *later], z)
        grad_z, grad_rest = torch.autograd.grad(loss, [z, rest])
        return loss.detach(), torch.cat([(grad_z.T @ self.X).reshape(-1), grad_rest])

    def _prox_(self, views: list[torch.Tensor], step: torch.Tensor | float) -> torch.Tensor:
        """Apply every part's prox at ``step`` to ``views`` in place; return the penalty at the result."""
        later = [views[i] for i in self._later]
        value = self.objective_parts.prox_(views[0], later, step, self._lam, penalised=self.lam > 0.0, with_value=True)
        assert value is not None  # asked for with_value
        return value

    def _penalty_value(self, flat: torch.Tensor) -> torch.Tensor:
        views = self._views(flat)
        later = [views[i] for i in self._later]
        return self.objective_parts.penalty_value(views[0], later, self._lam, penalised=self.lam != 0.0)

    @torch.no_grad()
    def objective(self) -> float:
        """Penalised objective at the current iterate (a host read)."""
        return float(self._loss(self._views(self._x)) + self._penalty_value(self._x))

    @torch.no_grad()
    def _store(self) -> None:
        """Write the iterate into the model's parameters."""
        for parameter, value in zip(self._params, self._views(self._x)):
            parameter.copy_(value)

    def run(self, max_iters: int, tol: float, stop: ObjectiveStop | None = None, can_stall: bool = True) -> SolveResult:
        """Iterate until converged, or for ``max_iters`` iterations (rejected trial steps not
        counted, up to ``BACKTRACK_ALLOWANCE`` of them), or until ``stop(first_layer_weight)`` (a
        0-d bool tensor) holds after an accepted iteration.

        Converged, at a lambda > 0: an accepted step's gradient mapping ``G = (y - prox(y - s grad)) / s``
        (zero exactly at a KKT point) is at most ``tol`` relative to lambda, in every first-layer
        group (``||G_g|| <= tol * lam * w_g``) and in the unpenalised parameters taken together
        (``||G_rest|| <= tol * lam * sqrt(d_rest)``): see ``_optimality``. At lambda 0: the mean
        relative objective improvement over the last ``WINDOW`` accepted iterations is below ``tol``.
        Also converged, at any lambda: a plain proximal step (no momentum) from the current point
        no longer lowers the objective, i.e. stationary at the resolution of the arithmetic. On
        ReLU networks in float32 that is where most small-lambda solves end: the measured optimality
        there (``SolveResult.optimality``, path.csv) falls as lambda grows, from about 0.15 of lambda
        at the sample's first lambda to below 0.02 from a tenth of lambda_max up.
        Unconverged: the budget ran out, or the run stalled (``STALL_TOL``; ``can_stall`` False:
        never, for a solve to --tol).

        Reads the device at most once per ``read_every`` iterations, and once at the end.

        Returns
        -------
        SolveResult
            Iterations done, whether it converged, the final objective and loss.
        """
        with torch.no_grad():
            objective = self._loss(self._views(self._x)) + self._penalty_value(self._x) if self._objective is None else self._objective
        by_optimality = self.lam > 0.0 and self._group_weights is not None
        limits = _Limits(max_iters, tol, stop, by_optimality=by_optimality, can_stall=by_optimality and self._can_stall and can_stall)
        self._samples = self._sample_buffers() if by_optimality and self._can_stall else None
        if self._on_host:
            return self._run_on_host(objective, limits)
        return self._run_on_device(objective, limits)

    def _run_on_host(self, objective: torch.Tensor, limits: _Limits) -> SolveResult:
        """``run`` deciding each trial in Python (``_settle_on_host``)."""
        flags = _HostFlags(history=[float(objective)] * (WINDOW + 1), objective=objective, backtracked=self._backtracked_on_host)
        for index in range(limits.n_trials):
            # the host knows whether the last trial was rejected: then the momentum point is
            # unchanged, and so are the loss and gradient there
            self._settle_on_host(self._trial(self._at_y if flags.backtracked else None, limits.by_optimality), flags, limits)
            if not flags.done and self._samples is not None and _looks_at_samples(index, flags.n_accepted, flags.best_optimality, limits):
                measured = self._sampled_optimality(flags.n_accepted)
                flags.best_optimality = min(flags.best_optimality, measured)
                flags.converged = flags.done = measured <= limits.tol
            if flags.done:
                break
        self._at_y = None
        self._backtracked_on_host = flags.backtracked
        self._objective = flags.objective
        with torch.no_grad():
            final_loss = self._loss(self._views(self._x))
        self._store()
        objective_value, loss = torch.stack([flags.objective.double(), final_loss.double()]).tolist()
        return SolveResult(
            n_iters=flags.n_iters,
            converged=flags.converged,
            objective=objective_value,
            loss=loss,
            stopped=flags.stopped,
            optimality=flags.best_optimality if limits.by_optimality else math.nan,
        )

    def _run_on_device(self, objective: torch.Tensor, limits: _Limits) -> SolveResult:
        """``run`` deciding each trial with tensor masks (``_settle_on_device``), reading ``done`` every ``read_every``."""
        device = self._params[0].device
        flags = _Flags(
            history=objective.expand(WINDOW + 1).clone(),
            objective=objective,
            n_accepted=torch.zeros((), dtype=torch.int64, device=device),
            n_iters=torch.zeros((), dtype=torch.int64, device=device),
            done=torch.zeros((), dtype=torch.bool, device=device),
            converged=torch.zeros((), dtype=torch.bool, device=device),
            stopped=torch.zeros((), dtype=torch.bool, device=device),
            best_optimality=torch.full((), math.inf, dtype=objective.dtype, device=device),
            improvement=torch.zeros((), dtype=objective.dtype, device=device),
        )
        for i in range(limits.n_trials):
            if i and self._samples is not None and i % SAMPLE_EVERY == 0:
                # the host's loop looks at the samples after this trial's predecessor: one read for that and ``done``
                if self._look_on_device(i - 1, flags, limits):
                    break
            elif i and i % self.read_every == 0 and bool(flags.done):
                break
            self._settle_on_device(self._trial(None, limits.by_optimality), flags, limits)
        if self._samples is not None and limits.n_trials % SAMPLE_EVERY == 0:
            self._look_on_device(limits.n_trials - 1, flags, limits)
        self._at_y = None
        self._objective = flags.objective
        with torch.no_grad():
            final_loss = self._loss(self._views(self._x))
        self._store()
        n_iters, converged, stopped, objective_value, loss, optimality = torch.stack(
            [
                flags.n_iters.double(),
                flags.converged.double(),
                flags.stopped.double(),
                flags.objective.double(),
                final_loss.double(),
                flags.best_optimality.double(),
            ]
        ).tolist()
        return SolveResult(
            n_iters=int(n_iters),
            converged=bool(converged),
            objective=objective_value,
            loss=loss,
            stopped=bool(stopped),
            optimality=optimality if limits.by_optimality else math.nan,
        )

    def _look_on_device(self, index: int, flags: _Flags, limits: _Limits) -> bool:
        """After trial ``index``, what the host's loop does there (``_looks_at_samples``): one read of
        ``done`` and what decides whether to look, then the look. Returns whether the run is done."""
        done, n_accepted, best = torch.stack([flags.done.double(), flags.n_accepted.double(), flags.best_optimality.double()]).tolist()
        if done or not _looks_at_samples(index, int(n_accepted), best, limits):
            return bool(done)
        measured = self._sampled_optimality(int(n_accepted))
        flags.best_optimality = torch.clamp(flags.best_optimality, max=measured)
        if measured > limits.tol:
            return False
        flags.converged.fill_(True)
        flags.done.fill_(True)
        return True

    def _trial(self, at_y: _Point | None, with_optimality: bool) -> _Trial:
        """One trial step from the momentum point at the current step length (nothing decided yet);
        ``at_y``: that point with its loss and gradient when they are known (after a rejected trial);
        ``with_optimality``: measure the step's gradient mapping (``_optimality``)."""
        t_next: torch.Tensor | int
        beta: torch.Tensor | float
        if isinstance(self._t, torch.Tensor):
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * self._t * self._t)) / 2.0
            beta = (self._t - 1.0) / t_next
        else:  # on the host the counter is how many steps since the momentum (re)started
            t_next, beta = self._t + 1, momentum_weight(self._t, self._params[0].dtype)
        weight = -beta
        if at_y is None:
            y_point = torch.lerp(self._x, self._x_prev, weight)
            if self._z is not None and self._z_prev is not None:
                loss_y, grad = self._loss_and_gradient(y_point, torch.lerp(self._z, self._z_prev, weight))
            else:
                y_point.requires_grad_(True)
                loss_y = self._loss(self._views(y_point))
                (grad,) = torch.autograd.grad(loss_y, [y_point])
                y_point, loss_y = y_point.detach(), loss_y.detach()
            at_y = _Point(y_point, loss_y, grad)
            self._at_y = at_y
        y_point, loss_y, grad = at_y
        with torch.no_grad():
            step = self._step if isinstance(self._step, torch.Tensor) else float(self._step)
            candidate = y_point - step * grad
            views = self._views(candidate)
            candidate_penalty = self._prox_(views, step)
            z_candidate = self._first_product(views) if self._carry_first else None
            loss_candidate = self._loss(views) if z_candidate is None else self._loss_from_first(views, z_candidate)
            move = candidate - y_point
            linear = torch.dot(grad, move)
            quadratic = torch.dot(move, move) / (2.0 * step)
            # sufficient decrease of the smooth part; slack for float32 rounding, relative to at
            # least 1 (the scale of a loss on standardised targets or of a log-loss at the start):
            # relative to the loss alone it vanished once a network memorised its rows, and the
            # ReLU kinks then failed the test at every step length (tests/solve/test_solver.py)
            fits = loss_candidate <= loss_y + linear + quadratic + LINE_SEARCH_SLACK * torch.clamp(loss_y.abs(), min=1.0)
            if isinstance(step, torch.Tensor):
                fits = fits | (step < MIN_STEP)
            elif step < MIN_STEP:
                fits = torch.ones_like(fits)
            optimality = self._optimality(move, step) if with_optimality else None
            # the gradient mapping, each coordinate over its group's penalty weight (``_Samples``)
            sample = torch.mul(move, self._samples.scale).div_(step) if self._samples is not None else None
        return _Trial(t_next, beta, candidate, z_candidate, loss_candidate + candidate_penalty, fits, optimality, sample, y_point)

    def _optimality(self, move: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        """How far the momentum point is from a KKT point, relative to lambda (a 0-d tensor).

        ``move / step`` is minus the gradient mapping; its norm in each first-layer group over
        ``lam * w_g``, and in the other parameters together over ``lam * sqrt(d_rest)``, the
        largest of these. 0 exactly at a KKT point of this lambda.
        """
        penalty = self.objective_parts.penalty
        assert penalty is not None and self._group_weights is not None  # measured only for a penalised run
        first_size = self._sizes[0]
        by_group = penalty.norms(move[:first_size].view(self._shapes[0])) / self._group_weights
        rest = torch.linalg.vector_norm(move[first_size:]) / self._rest_weight
        return _largest(by_group, rest) / (step * self._lam)

    def _sample_buffers(self) -> _Samples:
        """The solver's gradient-mapping buffers (made at the first penalised run; each run fills them anew)."""
        if self._buffers is not None:
            return self._buffers
        penalty = self.objective_parts.penalty
        assert penalty is not None and self._group_weights is not None  # sampled only for a penalised run
        like = self._x
        scale = torch.full_like(like, 1.0 / self._rest_weight)
        # the first-layer weight is (hidden units, columns): a column's coordinates share its group's weight
        by_column = (1.0 / self._group_weights)[penalty.group_ids.to(like.device)]
        scale[: self._sizes[0]] = by_column.expand(self._shapes[0]).reshape(-1)
        self._buffers = _Samples(
            scale,
            torch.empty((SAMPLES, like.numel()), dtype=like.dtype, device=like.device),
            torch.empty((SAMPLES, like.numel()), dtype=like.dtype, device=like.device),
        )
        return self._buffers

    def _sampled_optimality(self, n_accepted: int) -> float:
        """The optimality measure (``_optimality``'s, relative to lambda) of the smallest convex
        combination of the last ``SAMPLES`` accepted gradient mappings; inf when those iterates lie
        further than ``SAMPLE_RADIUS`` from the newest (two host reads)."""
        samples = self._samples
        assert samples is not None and self.objective_parts.penalty is not None  # looked at only while sampling
        gradients, points = samples.gradients, samples.points
        weights = min_norm_weights((gradients @ gradients.T).double().cpu().numpy())
        combination = torch.as_tensor(weights, dtype=gradients.dtype, device=gradients.device) @ gradients
        first_size = self._sizes[0]
        # ``_optimality``'s measure: the samples' coordinates are already over their groups' weights
        worst = _largest(
            self.objective_parts.penalty.norms(combination[:first_size].view(self._shapes[0])),
            torch.linalg.vector_norm(combination[first_size:]),
        )
        newest = points[(n_accepted - 1) % SAMPLES]
        spread = torch.linalg.vector_norm(points - newest, dim=1).max() / torch.clamp(torch.linalg.vector_norm(newest), min=1e-12)
        measured, radius = torch.stack([worst / self._lam, spread]).tolist()
        return measured if radius <= SAMPLE_RADIUS else math.inf

    def _converged_test(self, history: torch.Tensor, trial: _Trial, limits: _Limits) -> torch.Tensor:
        """Whether ``trial``, if accepted, ends the run as converged (see ``run``), a 0-d bool tensor."""
        if limits.by_optimality:
            assert trial.optimality is not None  # measured when by_optimality
            return trial.optimality <= limits.tol
        return self._window_converged(history, trial.objective, limits.tol)

    def _window_converged(self, history: torch.Tensor, objective: torch.Tensor, tol: float) -> torch.Tensor:
        """Whether ``objective``, once appended to ``history``, ends a window of too little improvement.
        The oldest of the window is then ``history[1]``."""
        # mean improvement over a window: single iterations are noisy under momentum
        return (history[1] - objective) / (WINDOW * torch.clamp(objective.abs(), min=1e-12)) < tol

    @torch.no_grad()
    def _settle_on_device(self, trial: _Trial, flags: _Flags, limits: _Limits) -> None:
        """Decide the trial with tensor masks: accept it, halve the step, or restart the momentum."""
        active = ~flags.done
        objective = trial.objective
        finite = torch.isfinite(objective)
        settled = active & trial.fits & finite
        improved = objective <= flags.objective
        accept = settled & improved
        previous_objective = flags.objective
        # momentum overshot: restart from the last accepted point; with no momentum to blame,
        # a plain proximal step that does not improve is stationary up to rounding
        restart = settled & ~improved & (trial.beta > 0)
        stationary = settled & ~improved & (trial.beta == 0)
        backtrack = active & ~trial.fits
        step = self._step
        # the device's solver holds its counter and step as tensors (``_on_host`` False)
        assert isinstance(self._t, torch.Tensor) and isinstance(trial.t_next, torch.Tensor) and isinstance(step, torch.Tensor)

        if self._samples is not None and trial.sample is not None and trial.y is not None:
            self._samples.put_where(accept, flags.n_accepted % SAMPLES, trial.sample, trial.y)
        self._x_prev = torch.where(accept | restart, self._x, self._x_prev)
        self._x = torch.where(accept, trial.candidate, self._x)
        if self._z is not None and self._z_prev is not None and trial.z is not None:
            self._z_prev = torch.where(accept | restart, self._z, self._z_prev)
            self._z = torch.where(accept, trial.z, self._z)
        flags.objective = torch.where(accept, objective, flags.objective)
        self._t = torch.where(accept, trial.t_next, torch.where(restart, torch.ones_like(self._t), self._t))
        grow = accept & ~self._backtracked
        self._step = torch.where(backtrack, step * 0.5, torch.where(grow, step * STEP_GROWTH, step))
        self._backtracked = torch.where(active, backtrack, self._backtracked)

        flags.n_iters += (active & ~backtrack).long()
        flags.n_accepted += accept.long()
        enough = torch.ones_like(accept) if limits.by_optimality else flags.n_accepted >= WINDOW
        window_converged = accept & enough & self._converged_test(flags.history, trial, limits)
        flags.history = torch.where(accept, torch.cat([flags.history[1:], objective.reshape(1)]), flags.history)
        stopped = accept & limits.stop(self._views(self._x)[0]) if limits.stop is not None else torch.zeros_like(accept)
        stalled = torch.zeros_like(accept)
        if limits.by_optimality:
            assert trial.optimality is not None  # measured when by_optimality
            # a step that passed the line search measured the gradient mapping at its momentum point
            flags.best_optimality = torch.where(settled, torch.minimum(flags.best_optimality, trial.optimality), flags.best_optimality)
            gain = (previous_objective - objective) / torch.clamp(objective.abs(), min=1e-12)
            flags.improvement = torch.where(accept, STALL_DECAY * flags.improvement + (1 - STALL_DECAY) * gain, flags.improvement)
            stalled = accept & (flags.n_accepted >= STALL_WINDOW) & (flags.improvement < STALL_TOL) & limits.can_stall
        flags.converged |= window_converged | stationary
        flags.stopped |= stopped
        flags.done |= (
            window_converged | stationary | stopped | stalled | (active & trial.fits & ~finite) | (flags.n_iters >= limits.max_iters)
        )

    @torch.no_grad()
    def _settle_on_host(self, trial: _Trial, flags: _HostFlags, limits: _Limits) -> None:
        """The same decisions as ``_settle_on_device``, read back (two reads) and taken in Python: on a
        CPU a read costs less than the masks, whose values are the same (``torch.where`` copies)."""
        objective = trial.objective
        # two reads: the numbers, and the yes/no tests (the line search's, the caller's stop, the window's)
        numbers = [objective] + ([trial.optimality] if limits.by_optimality and trial.optimality is not None else [])
        tests = [trial.fits]
        if limits.stop is not None:
            tests.append(limits.stop(trial.candidate[: self._sizes[0]].view(self._shapes[0])))
        objective_value, *measured = torch.stack(numbers).tolist()
        fits, *stop_now = torch.stack(tests).tolist()
        optimality = measured[0] if limits.by_optimality else math.inf
        # as the device computes them (``_window_converged``, the gain): in the weights' dtype
        last, now, tiny = self._scalar(flags.objective_value), self._scalar(objective_value), self._scalar(1e-12)
        if limits.by_optimality:
            window = optimality <= limits.tol
        else:
            window = bool((self._scalar(flags.history[1]) - now) / (WINDOW * max(abs(now), tiny)) < limits.tol)
        gain = float((last - now) / max(abs(now), tiny))
        finite = math.isfinite(objective_value)
        improved = objective_value <= flags.objective_value
        has_momentum = trial.beta > 0
        settled = fits and finite
        accept = settled and improved
        restart = settled and not improved and has_momentum
        stationary = settled and not improved and not has_momentum
        if accept or restart:
            self._x_prev, self._z_prev = self._x, self._z
        if accept and self._samples is not None and trial.sample is not None and trial.y is not None:
            self._samples.put(flags.n_accepted % SAMPLES, trial.sample, trial.y)
        if accept:
            self._x, self._z, flags.objective, self._t = trial.candidate, trial.z, objective, trial.t_next
            flags.history = [*flags.history[1:], objective_value]
        elif restart:
            self._t = 0
        if not fits:
            self._step = self._step * 0.5
        elif accept and not flags.backtracked:
            self._step = self._step * STEP_GROWTH
        flags.backtracked = not fits
        flags.n_iters += fits
        flags.n_accepted += accept
        window_converged = accept and (limits.by_optimality or flags.n_accepted >= WINDOW) and window
        stopped = accept and bool(stop_now and stop_now[0])
        stalled = False
        if settled and limits.by_optimality:
            flags.best_optimality = min(flags.best_optimality, optimality)
        if accept and limits.by_optimality:
            flags.improvement = STALL_DECAY * flags.improvement + (1 - STALL_DECAY) * gain
            stalled = limits.can_stall and flags.n_accepted >= STALL_WINDOW and flags.improvement < STALL_TOL
        flags.converged |= window_converged or stationary
        flags.stopped |= stopped
        flags.done = window_converged or stationary or stopped or stalled or (fits and not finite) or flags.n_iters >= limits.max_iters


def _largest(by_group: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """The largest of the groups' measures and the unpenalised parameters' together; a working set
    can hold no first-layer group (every group screened out), and then the rest decides."""
    return torch.maximum(by_group.max(), rest) if by_group.numel() else rest


def _looks_at_samples(index: int, n_accepted: int, best_optimality: float, limits: _Limits) -> bool:
    """Whether a run looks at its gradient-mapping samples after trial ``index`` (``SAMPLE_EVERY``):
    the same trials on the host and on a device, so both stop at the same iterate."""
    return (index + 1) % SAMPLE_EVERY == 0 and n_accepted >= SAMPLES and best_optimality <= SAMPLE_FROM * limits.tol


@dataclass(frozen=True)
class _Samples:
    """The last ``SAMPLES`` accepted iterates of a run and their gradient mappings, each coordinate
    of a mapping divided by its group's penalty weight (the unpenalised ones by ``sqrt(d_rest)``),
    so that the Euclidean smallest combination is small in every group (``stationarity``)."""

    scale: torch.Tensor  # (parameters,): 1 / the penalty weight of each coordinate's group
    gradients: torch.Tensor  # (SAMPLES, parameters): scaled gradient mappings, slot = accepted count % SAMPLES
    points: torch.Tensor  # (SAMPLES, parameters): the momentum points they were measured at

    def put(self, slot: int, gradient: torch.Tensor, point: torch.Tensor) -> None:
        self.gradients[slot].copy_(gradient)
        self.points[slot].copy_(point)

    def put_where(self, accept: torch.Tensor, slot: torch.Tensor, gradient: torch.Tensor, point: torch.Tensor) -> None:
        """``put`` where ``accept`` holds, with the slot a device tensor: no host read."""
        index = slot.view(1)
        for buffer, value in ((self.gradients, gradient), (self.points, point)):
            buffer.index_copy_(0, index, torch.where(accept, value, buffer.index_select(0, index)[0]).unsqueeze(0))


@dataclass(frozen=True)
class _Limits:
    """What ends one run: its iteration budget, the convergence tolerance and the caller's stop test."""

    max_iters: int
    tol: float
    stop: ObjectiveStop | None
    by_optimality: bool = False  # converged by the gradient mapping relative to lambda (else the objective window)
    can_stall: bool = False  # a penalised run on a network with hidden layers: may stop as stalled (STALL_TOL)

    @property
    def n_trials(self) -> int:
        """Trial steps at most: ``max_iters`` plus the rejected ones ``BACKTRACK_ALLOWANCE`` allows."""
        return self.max_iters + int(BACKTRACK_ALLOWANCE * self.max_iters)


class _Point(NamedTuple):
    """The momentum point of a trial, with the loss and its gradient there."""

    y: torch.Tensor
    loss: torch.Tensor
    grad: torch.Tensor


class _Trial(NamedTuple):
    """One trial step's numbers, before any decision."""

    t_next: torch.Tensor | int  # the momentum counter if the trial is accepted (an index on the host)
    beta: torch.Tensor | float  # the momentum weight the trial was taken with (0: a plain proximal step)
    candidate: torch.Tensor  # the flat iterate after the step and the prox
    z: torch.Tensor | None  # the candidate's first-layer product X W1^T (``ProximalGradient._first_product``); None: not carried
    objective: torch.Tensor  # penalised objective at the candidate
    fits: torch.Tensor  # the step length passed the sufficient-decrease test
    optimality: torch.Tensor | None = None  # the gradient mapping relative to lambda (``_optimality``); None: not measured
    sample: torch.Tensor | None = None  # the gradient mapping scaled for ``_Samples``; None: not sampled
    y: torch.Tensor | None = None  # the momentum point the trial stepped from


@dataclass
class _HostFlags:
    """``_Flags`` held in Python, for a solver that reads every iteration (a CPU)."""

    history: list[float]  # (WINDOW + 1) accepted objectives, read, oldest first
    objective: torch.Tensor
    n_accepted: int = 0
    n_iters: int = 0
    done: bool = False
    converged: bool = False
    stopped: bool = False
    backtracked: bool = False
    best_optimality: float = math.inf
    improvement: float = 0.0  # moving mean of the relative objective improvement per accepted iteration

    @property
    def objective_value(self) -> float:
        """``objective``, read: the newest of ``history``."""
        return self.history[-1]


@dataclass
class _Flags:
    """One run's state on the device: the recent accepted objectives and what has happened."""

    history: torch.Tensor  # (WINDOW + 1,): the last accepted objectives, oldest first
    objective: torch.Tensor  # the objective at the last accepted point
    n_accepted: torch.Tensor
    n_iters: torch.Tensor  # iterations done before ``done`` was set, rejected trial steps not counted
    done: torch.Tensor
    converged: torch.Tensor
    stopped: torch.Tensor
    best_optimality: torch.Tensor  # the smallest optimality measure of a step that passed the line search (inf: none yet)
    improvement: torch.Tensor  # moving mean of the relative objective improvement per accepted iteration
