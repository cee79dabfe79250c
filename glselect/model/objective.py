"""The penalised objective as parts, shared by both solvers and the KKT tests.

- the loss (``metrics.loss_function``: task and class weights);
- the group-lasso penalty on the first-layer weight: its value, its prox (the group
  soft-threshold) and its KKT excess; with ``l1_ratio`` A > 0 the sparse group lasso, which adds
  a norm per encoded column inside the groups (Simon et al. 2013);
- the later-layer column-norm bound (a projection: the scale trap of ReLU networks);
- the optional neuron penalty on each hidden unit's outgoing weights.

A solver minimises ``loss + lam * penalty`` under the bound; it owns no part of the objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glselect.model.metrics import LossFunction
from glselect.model.prox import (
    column_soft_threshold, group_norms, group_soft_threshold, shrink_columns, shrink_groups,
    sparse_group_soft_threshold,
)

KKT_SLACK = 1e-6  # relative: a gradient on the ball's edge (up to float rounding) is inside it


ZERO_LAMBDA_BISECTIONS = 64  # halvings of the bracket: far below float64 resolution of lambda


@dataclass(frozen=True)
class GroupPenalty:
    """The penalty on the first-layer weight ``W`` (fan_out, n_features).

    ``(1 - A) * sum_g weights[g] ||W_g|| + A * column_weight * sum_j ||W[:, j]||`` with ``A =
    l1_ratio``. A = 0 is the group lasso (the columns' term and its code are skipped entirely);
    A = 1 is a lasso on the encoded columns, each column's fan_out weights one unit.
    """

    group_ids: torch.Tensor  # int64 (n_features,)
    weights: torch.Tensor  # sqrt(d_g), shape (n_groups,)
    l1_ratio: float = 0.0
    column_weight: float = 0.0  # sqrt(fan_out): a column's d counted as a group of its own would count it
    # group g is column g (no --groups): a group's norm is its column's, with no segment sum (wide
    # tables have tens of thousands of columns, and a solver takes these norms every iteration)
    columns_are_groups: bool = False

    @property
    def n_groups(self) -> int:
        return int(self.weights.shape[0])

    @property
    def is_sparse_group(self) -> bool:
        return self.l1_ratio > 0.0

    def norms(self, W: torch.Tensor) -> torch.Tensor:
        """Each group's norm in ``W`` (fan_out, n_features), shape (n_groups,)."""
        if self.columns_are_groups:
            return torch.linalg.vector_norm(W, dim=0)
        return group_norms(W, self.group_ids, self.n_groups)

    def value(self, W: torch.Tensor) -> torch.Tensor:
        """The penalty at ``W`` (a 0-d tensor: no host read)."""
        group_term = (self.weights * self.norms(W)).sum()
        if not self.is_sparse_group:
            return group_term
        column_term = torch.linalg.vector_norm(W, dim=0).sum()
        return (1.0 - self.l1_ratio) * group_term + self.l1_ratio * self.column_weight * column_term

    def prox(self, W: torch.Tensor, threshold_scale: float) -> torch.Tensor:
        """Prox of ``threshold_scale * value``: each group's norm shrinks by ``threshold_scale * sqrt(d_g)``
        (sparse group lasso: each column's first, by its share of the threshold, then each group's)."""
        if not self.is_sparse_group:
            return group_soft_threshold(W, self.group_ids, threshold_scale * self.weights)
        return sparse_group_soft_threshold(
            W, self.group_ids, threshold_scale * self.l1_ratio * self.column_weight,
            threshold_scale * (1.0 - self.l1_ratio) * self.weights,
        )

    def prox_and_value(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``prox(W, threshold_scale)`` and ``value`` at the result; the group lasso gets both from
        one segment sum over ``W`` (a solver calls this every iteration)."""
        if self.is_sparse_group:
            shrunk = self.prox(W, threshold_scale)
            return shrunk, self.value(shrunk)
        thresholds = threshold_scale * self.weights
        if self.columns_are_groups:
            shrunk, norms = shrink_columns(W, thresholds)
        else:
            shrunk, norms = shrink_groups(W, self.group_ids, thresholds)
        return shrunk, (self.weights * norms).sum()

    def kkt_excess(self, gradient: torch.Tensor, lam: float) -> torch.Tensor:
        """Per group, how far the loss gradient ``gradient`` (dL/dW, shape (fan_out, n_features)) lies
        beyond what a zero group can absorb at ``lam`` (0 inside), shape (n_groups,).

        Group lasso: ``||grad_g|| - lam sqrt(d_g)``. Sparse group lasso: each column's gradient is
        first soft-thresholded by its own ball (``lam A sqrt(fan_out)``); what is left must lie in
        the group's ball ``lam (1 - A) sqrt(d_g)``. A zero group with a positive excess violates
        its KKT condition and must enter the working set.
        """
        if self.is_sparse_group:
            column_ball = lam * self.l1_ratio * self.column_weight * (1 + KKT_SLACK)
            gradient = column_soft_threshold(gradient, column_ball)
        gradient_norms = self.norms(gradient)
        return torch.clamp(gradient_norms - lam * (1.0 - self.l1_ratio) * self.weights * (1 + KKT_SLACK), min=0.0)

    def zero_lambdas(self, gradient: torch.Tensor) -> torch.Tensor:
        """Per group, the smallest lambda at which a zero group meets its KKT condition, given the
        loss gradient (fan_out, n_features) at that zero: shape (n_groups,).

        Group lasso: ``||grad_g|| / sqrt(d_g)``. Sparse group lasso: the root of
        ``||S(grad_g, lam A v)|| = lam (1 - A) sqrt(d_g)``, whose left side falls and right side
        rises with lambda; found by bisection for every group at once (no loop over groups).
        """
        if not self.is_sparse_group:
            return self.norms(gradient) / self.weights
        column_norms = torch.linalg.vector_norm(gradient, dim=0).double()
        column_unit = self.l1_ratio * self.column_weight
        # at the largest column's lambda every column is thresholded away: the group is zero there
        high = torch.zeros(self.n_groups, dtype=torch.float64, device=gradient.device).scatter_reduce(
            0, self.group_ids, column_norms / column_unit, reduce="amax"
        )
        low = torch.zeros_like(high)
        group_unit = (1.0 - self.l1_ratio) * self.weights.double()
        for _ in range(ZERO_LAMBDA_BISECTIONS):
            middle = (low + high) / 2
            shrunk = torch.clamp(column_norms - middle[self.group_ids] * column_unit, min=0.0)
            left = torch.zeros_like(high).index_add_(0, self.group_ids, shrunk * shrunk).sqrt()
            inside = left <= middle * group_unit
            high = torch.where(inside, middle, high)
            low = torch.where(inside, low, middle)
        return high.to(gradient.dtype)


def make_penalty(
    group_ids: np.ndarray,
    n_encoded: np.ndarray,
    fan_out: int,
    dtype: torch.dtype,
    device: torch.device | None = None,
    l1_ratio: float = 0.0,
) -> GroupPenalty:
    """Group structure of a first layer with ``fan_out`` units, weighted by sqrt(d_g).

    d_g counts the group's weights (encoded columns x fan_out): a wide group has a larger
    gradient norm by chance alone, and the weight keeps it from entering merely for being wide.
    A column inside a group holds fan_out weights, so its own weight is sqrt(fan_out) by the same
    rule; with single-column groups the two terms are then the same penalty whatever ``l1_ratio``.
    """
    weights = np.sqrt(n_encoded * fan_out)
    return GroupPenalty(
        group_ids=torch.as_tensor(group_ids, dtype=torch.int64, device=device),
        weights=torch.as_tensor(weights, dtype=dtype, device=device),
        l1_ratio=float(l1_ratio),
        column_weight=float(np.sqrt(fan_out)),
        # column k is group k for every group: a problem restricted to groups 0..k-1 of more (an
        # all-relevant round) has columns 0..k-1 too, but its weights still count every group
        columns_are_groups=bool(len(group_ids) == len(n_encoded) and np.array_equal(group_ids, np.arange(len(group_ids)))),
    )


@dataclass(frozen=True)
class Objective:
    """``loss + lam * penalty(W1) + neuron_penalty * sum_h ||W2[:, h]||`` with later columns bounded by ``max_norm``."""

    loss_fn: LossFunction
    penalty: GroupPenalty | None  # None: no group penalty (the dense fit, refits)
    max_norm: float
    neuron_penalty: float = 0.0


def neuron_prox(W2: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Prox of ``threshold * sum_h ||W2[:, h]||``: a hidden unit whose outgoing weights reach zero is dead.

    ``threshold`` may be a 0-d tensor (the solver's step times the weight): no host read.
    """
    # each column is its own group: the column soft-threshold is the same prox without a segment sum
    return column_soft_threshold(W2, threshold)


__all__ = ["GroupPenalty", "Objective", "make_penalty", "neuron_prox", "KKT_SLACK"]
