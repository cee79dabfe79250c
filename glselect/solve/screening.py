"""Solve one lambda on only the groups that can be non-zero, then prove the rest are zero.

Along the path most groups are exactly zero, and a zero group whose gradient is inside its KKT
ball (``||grad_g|| <= lam * sqrt(d_g)``; for any penalty see its ``kkt_excess``) stays zero: its columns need not enter the forward and
backward passes at all. The solve runs on the previously active groups only (the first layer
shrinks as the path advances); afterwards one full gradient checks every excluded group, and
any that violates its condition joins the working set and the lambda is solved again. The
result is the same solution as an unscreened solve, found at the cost of the active columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP, restrict_inputs, widen_inputs
from glselect.model.objective import Objective
from glselect.model.penalties import Penalty
from glselect.solve.base import LambdaSolve, SolveResult
from glselect.solve.fista import ProximalGradient


def first_layer_gradient(
    model: GroupLassoMLP,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFunction,
    Z: torch.Tensor | None = None,
) -> torch.Tensor:
    """``dL/dW1`` at the model's weights, shape (fan_out, n_features).

    ``Z``: the first layer's pre-activations, when already known (from the working set alone,
    since the other columns are zero): then only the gradient ``dL/dZ^T X`` is computed here.
    """
    Z = (model.linears[0](X) if Z is None else Z).detach().requires_grad_(True)
    loss = loss_fn(model.forward_from_first(Z), y)
    (delta,) = torch.autograd.grad(loss, [Z])
    return delta.T @ X


def kkt_violators(
    model: GroupLassoMLP,
    rows: Rows,
    loss_fn: LossFunction,
    penalty: Penalty,
    lam: float,
    Z: torch.Tensor | None = None,
) -> np.ndarray:
    """Bool (n_groups,): groups whose gradient leaves the ball a zero group can absorb (``penalty.kkt_excess``)."""
    gradient = first_layer_gradient(model, rows.X, rows.y, loss_fn, Z)
    return (penalty.kkt_excess(gradient, lam) > 0).cpu().numpy()


def too_many_departures(
    penalty: Penalty, was_active: np.ndarray, max_departures: int | None
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A stop test for a solver: more than ``max_departures`` of the ``was_active`` groups are zero (None: never stop).

    The test returns a 0-d bool tensor, so a solver can fold it into its loop without a host read.
    """
    if max_departures is None:
        return None
    was_active_tensor = torch.as_tensor(was_active, device=penalty.weights.device)

    def stop(W: torch.Tensor) -> torch.Tensor:
        zero = penalty.norms(W) == 0
        return (zero & was_active_tensor).sum() > max_departures

    return stop


def solve_screened(
    model: GroupLassoMLP,
    rows: Rows,
    objective: Objective,
    solve: LambdaSolve,
    step: float,
    limits: tuple[int, float],
) -> tuple[SolveResult, float]:
    """Solve at ``solve.lam`` in place on ``model``, starting from the groups in ``solve.working``.

    ``objective`` carries the loss, the group penalty and the norm bound; ``step`` is the line
    search's step carried from the last lambda; ``limits`` is ``(max_iters, tol)`` for each solve.
    A lambda stopped by ``solve.max_departures`` (``result.stopped``) costs a few iterations
    instead of a full solve.

    Returns
    -------
    tuple
        The solve's result and the line-search step to carry to the next lambda.
    """
    penalty = objective.penalty
    assert penalty is not None  # a path's lambda always has its penalty
    group_ids = penalty.group_ids.cpu().numpy()
    max_iters, tol = limits
    working = solve.working.copy()
    while True:
        keep = working[group_ids]
        if keep.all():
            solver = ProximalGradient(model, rows, objective, step=step)
            stop = too_many_departures(penalty, working, solve.max_departures)
        else:
            columns = torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64, device=rows.X.device)
            small, small_penalty = restrict_inputs(model, keep), penalty.restrict(keep)
            small_rows = Rows(rows.X[:, columns], rows.y)
            solver = ProximalGradient(small, small_rows, dataclasses.replace(objective, penalty=small_penalty), step=step)
            stop = too_many_departures(small_penalty, np.ones(small_penalty.n_groups, dtype=bool), solve.max_departures)
        solver.set_lambda(solve.lam)
        result = solver.run(max_iters, tol, stop=stop, can_stall=not solve.to_tolerance)
        if keep.all():
            return result, solver.step
        step = solver.step
        widen_inputs(model, small, columns)
        if result.stopped:
            return result, step
        with torch.no_grad():
            Z = small.linears[0](small_rows.X)  # the excluded columns are zero: no full forward pass needed
        outside = kkt_violators(model, rows, objective.loss_fn, penalty, solve.lam, Z=Z) & ~working
        if not outside.any():
            return result, step
        working |= outside
