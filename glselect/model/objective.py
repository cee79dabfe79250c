"""The penalised objective as parts, shared by both solvers and the KKT tests.

- the loss (``metrics.loss_function``: task and class weights);
- the group-lasso penalty on the first-layer weight: its value, its prox (the group
  soft-threshold) and its KKT excess;
- the later-layer column-norm bound (a projection: the scale trap of ReLU networks);
- the optional neuron penalty on each hidden unit's outgoing weights.

A solver minimises ``loss + lam * penalty`` under the bound; it owns no part of the objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glselect.model.metrics import LossFunction
from glselect.model.prox import group_norms, group_soft_threshold

KKT_SLACK = 1e-6  # relative: a gradient on the ball's edge (up to float rounding) is inside it


@dataclass(frozen=True)
class GroupPenalty:
    """The group structure of the first-layer weight: ``group_ids`` (n_features,), ``weights`` (n_groups,)."""

    group_ids: torch.Tensor
    weights: torch.Tensor  # sqrt(d_g)

    @property
    def n_groups(self) -> int:
        return int(self.weights.shape[0])

    def value(self, W: torch.Tensor) -> torch.Tensor:
        """``sum_g sqrt(d_g) ||W_g||`` (a 0-d tensor: no host read)."""
        return (self.weights * group_norms(W, self.group_ids, self.n_groups)).sum()

    def prox(self, W: torch.Tensor, threshold_scale: float) -> torch.Tensor:
        """Prox of ``threshold_scale * value``: each group's norm shrinks by ``threshold_scale * sqrt(d_g)``."""
        return group_soft_threshold(W, self.group_ids, threshold_scale * self.weights)

    def kkt_excess(self, gradient_norms: torch.Tensor, lam: float) -> torch.Tensor:
        """Per group, how far ``||grad_g||`` (``gradient_norms``, shape (n_groups,)) lies beyond
        ``lam * sqrt(d_g)`` (0 inside the ball).

        A zero group with a positive excess violates its KKT condition and must enter the working set.
        """
        return torch.clamp(gradient_norms - lam * self.weights * (1 + KKT_SLACK), min=0.0)


def make_penalty(
    group_ids: np.ndarray, n_encoded: np.ndarray, fan_out: int, dtype: torch.dtype, device: torch.device | None = None
) -> GroupPenalty:
    """Group structure of a first layer with ``fan_out`` units, weighted by sqrt(d_g).

    d_g counts the group's weights (encoded columns x fan_out): a wide group has a larger
    gradient norm by chance alone, and the weight keeps it from entering merely for being wide.
    """
    weights = np.sqrt(n_encoded * fan_out)
    return GroupPenalty(
        group_ids=torch.as_tensor(group_ids, dtype=torch.int64, device=device),
        weights=torch.as_tensor(weights, dtype=dtype, device=device),
    )


@dataclass(frozen=True)
class Objective:
    """``loss + lam * penalty(W1) + neuron_penalty * sum_h ||W2[:, h]||`` with later columns bounded by ``max_norm``."""

    loss_fn: LossFunction
    penalty: GroupPenalty | None  # None: no group penalty (the dense fit, refits)
    max_norm: float
    neuron_penalty: float = 0.0


def neuron_prox(W2: torch.Tensor, threshold: float) -> torch.Tensor:
    """Prox of ``threshold * sum_h ||W2[:, h]||``: a hidden unit whose outgoing weights reach zero is dead."""
    columns = torch.arange(W2.shape[1], device=W2.device)
    thresholds = torch.full((W2.shape[1],), threshold, dtype=W2.dtype, device=W2.device)
    return group_soft_threshold(W2, columns, thresholds)


__all__ = ["GroupPenalty", "Objective", "make_penalty", "neuron_prox", "KKT_SLACK"]
