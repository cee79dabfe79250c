"""The penalties of the objective, one class each (the way skglm separates penalties).

Every penalty is a unit penalty: the objective multiplies it by its strength (lambda for the
first-layer penalty, ``--neuron-penalty`` for the neuron penalty). Each offers

- ``value(W)``: the penalty at ``W`` (a 0-d tensor: no host read);
- ``prox(W, threshold_scale)``: the proximal operator of ``threshold_scale * value``;
- ``kkt_excess(gradient, lam)``: per group, how far a zero group's loss gradient lies beyond the
  ball the penalty at ``lam`` can absorb (0 inside: the group may stay zero);
- ``zero_lambdas(gradient)``: per group, the smallest lambda at which a zero group stays zero;
- ``support(W)``: which groups (and columns) are non-zero, read back to the host once;
- ``restrict(keep)``: the same penalty on some of the columns, groups renumbered 0..k-1.

A new penalty is one new class here (and a line in ``make_penalty``, or ``penalty_for`` when a
setting of its own picks it).
Nothing loops over groups in Python: wide tables have tens of thousands of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from glselect.config import ModelConfig
from glselect.model.prox import (
    column_norms,
    column_soft_threshold,
    group_norms,
    group_soft_threshold,
    shrink_columns,
    shrink_groups,
    sparse_group_soft_threshold,
)

KKT_SLACK = 1e-6  # relative: a gradient on the ball's edge (up to float rounding) is inside it
ZERO_LAMBDA_BISECTIONS = 64  # halvings of the bracket: far below float64 resolution of lambda


@dataclass(frozen=True)
class Support:
    """The non-zero part of a first-layer weight, on the host.

    ``group_norms`` is float64 (n_groups,); ``column_norms`` float64 (n_features,) where a column
    can be zero inside a non-zero group (the sparse group lasso), else None: every column of a
    non-zero group is then in.
    """

    group_norms: np.ndarray
    column_norms: np.ndarray | None = None

    @property
    def active(self) -> np.ndarray:
        """Bool (n_groups,): the non-zero groups."""
        return self.group_norms > 0

    def column_mask(self, group_ids: np.ndarray) -> np.ndarray:
        """Bool (n_features,): the encoded columns with non-zero weights."""
        in_group = self.active[group_ids]
        return in_group if self.column_norms is None else in_group & (self.column_norms > 0)

    @property
    def packed_columns(self) -> np.ndarray | None:
        """``np.packbits`` of the non-zero columns where they can differ from their groups' (else None)."""
        return None if self.column_norms is None else np.packbits(self.column_norms > 0)

    def key(self, group_ids: np.ndarray) -> bytes:
        """The support as bytes: the groups, or the columns where a column can be zero inside a group."""
        return np.packbits(self.active if self.column_norms is None else self.column_mask(group_ids)).tobytes()


class Penalty(Protocol):
    """A first-layer penalty (see the module docstring)."""

    @property
    def group_ids(self) -> torch.Tensor:
        """int64 (n_features,): the group of each encoded column."""
        ...

    @property
    def weights(self) -> torch.Tensor:
        """Shape (n_groups,): each group's weight in the penalty."""
        ...

    @property
    def n_groups(self) -> int: ...

    def norms(self, W: torch.Tensor) -> torch.Tensor: ...

    def value(self, W: torch.Tensor) -> torch.Tensor: ...

    def prox(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> torch.Tensor: ...

    def prox_and_value(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def kkt_excess(self, gradient: torch.Tensor, lam: float) -> torch.Tensor: ...

    def zero_lambdas(self, gradient: torch.Tensor) -> torch.Tensor: ...

    def support(self, W: torch.Tensor) -> Support: ...

    def value_of(self, support: Support) -> float: ...

    def restrict(self, keep: np.ndarray) -> Penalty: ...


@dataclass(frozen=True)
class GroupLasso:
    """``sum_g weights[g] ||W_g||`` on the first-layer weight ``W`` (fan_out, n_features), weights sqrt(d_g).

    Parameters
    ----------
    group_ids
        int64 (n_features,): the group of each encoded column.
    weights
        Shape (n_groups,): sqrt of the number of weights in each group.
    columns_are_groups
        Group g is column g: a group's norm is its column's, with no segment sum (wide tables have
        tens of thousands of columns, and a solver takes these norms every iteration).
    """

    group_ids: torch.Tensor
    weights: torch.Tensor
    columns_are_groups: bool = False

    @property
    def n_groups(self) -> int:
        return int(self.weights.shape[0])

    def norms(self, W: torch.Tensor) -> torch.Tensor:
        """Each group's norm in ``W`` (fan_out, n_features), shape (n_groups,)."""
        if self.columns_are_groups:
            return column_norms(W)
        return group_norms(W, self.group_ids, self.n_groups)

    def value(self, W: torch.Tensor) -> torch.Tensor:
        """The penalty at ``W`` (a 0-d tensor: no host read)."""
        return (self.weights * self.norms(W)).sum()

    def prox(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> torch.Tensor:
        """Prox of ``threshold_scale * value``: each group's norm shrinks by ``threshold_scale * sqrt(d_g)``."""
        return group_soft_threshold(W, self.group_ids, threshold_scale * self.weights)

    def prox_and_value(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``prox(W, threshold_scale)`` and ``value`` at the result from one pass over ``W`` (a solver
        calls this every iteration): the shrunk norms are the norms times the shrink factors."""
        thresholds = threshold_scale * self.weights
        if self.columns_are_groups:
            shrunk, norms = shrink_columns(W, thresholds)
        else:
            shrunk, norms = shrink_groups(W, self.group_ids, thresholds)
        return shrunk, (self.weights * norms).sum()

    def kkt_excess(self, gradient: torch.Tensor, lam: float) -> torch.Tensor:
        """Per group, ``||grad_g|| - lam sqrt(d_g)`` clamped at 0, shape (n_groups,), for the loss
        gradient dL/dW (fan_out, n_features). A zero group with a positive excess violates its KKT
        condition and must enter the working set."""
        return self._excess(self.norms(gradient), lam, 1.0)

    def _excess(self, gradient_norms: torch.Tensor, lam: float, share: float) -> torch.Tensor:
        return torch.clamp(gradient_norms - lam * share * self.weights * (1 + KKT_SLACK), min=0.0)

    def zero_lambdas(self, gradient: torch.Tensor) -> torch.Tensor:
        """Per group, ``||grad_g|| / sqrt(d_g)``: the smallest lambda at which a zero group with loss
        gradient ``gradient`` (fan_out, n_features) meets its KKT condition, shape (n_groups,)."""
        return self.norms(gradient) / self.weights

    def support(self, W: torch.Tensor) -> Support:
        """The non-zero groups of ``W``, with their norms (float64 on the host: one read)."""
        # the segment sum whatever the layout: a path records the same norms for any group map
        return Support(group_norms(W.detach(), self.group_ids, self.n_groups).double().cpu().numpy())

    def value_of(self, support: Support) -> float:
        """The penalty from the norms ``support`` recorded, in float64 on the host."""
        return float((self.weights.double().cpu().numpy() * support.group_norms).sum())

    def restrict(self, keep: np.ndarray) -> GroupLasso:
        """The penalty on the columns where ``keep`` (bool, (n_features,)) is true, the groups they
        meet renumbered 0..k-1 in order; each keeps its weight (whole groups are kept)."""
        present, compact = np.unique(self.group_ids.cpu().numpy()[keep], return_inverse=True)
        device = self.weights.device
        return dataclasses.replace(
            self,
            group_ids=torch.as_tensor(compact, dtype=torch.int64, device=device),
            weights=self.weights[torch.as_tensor(present, device=device)],
        )


@dataclass(frozen=True)
class SparseGroupLasso(GroupLasso):
    """``(1 - A) sum_g weights[g] ||W_g|| + A column_weight sum_j ||W[:, j]||`` with ``A = l1_ratio`` > 0
    (Simon et al. 2013): a norm per encoded column inside the groups, so a group can keep some of its
    columns. A = 1 is a lasso on the encoded columns, each column's fan_out weights one unit.
    """

    l1_ratio: float = 0.5
    column_weight: float = 1.0  # sqrt(fan_out): a column's d counted as a group of its own would count it

    def value(self, W: torch.Tensor) -> torch.Tensor:
        group_term = (self.weights * self.norms(W)).sum()
        column_term = column_norms(W).sum()
        return (1.0 - self.l1_ratio) * group_term + self.l1_ratio * self.column_weight * column_term

    def prox(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> torch.Tensor:
        """Each column's norm shrinks first, by its share of the threshold, then each group's
        (the columns nest inside the groups: the composition is the prox of the sum)."""
        return sparse_group_soft_threshold(
            W,
            self.group_ids,
            threshold_scale * self.l1_ratio * self.column_weight,
            threshold_scale * (1.0 - self.l1_ratio) * self.weights,
        )

    def prox_and_value(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shrunk = self.prox(W, threshold_scale)
        return shrunk, self.value(shrunk)

    def kkt_excess(self, gradient: torch.Tensor, lam: float) -> torch.Tensor:
        """Each column's gradient is first soft-thresholded by its own ball (``lam A sqrt(fan_out)``);
        what is left must lie in the group's ball ``lam (1 - A) sqrt(d_g)``."""
        column_ball = lam * self.l1_ratio * self.column_weight * (1 + KKT_SLACK)
        return self._excess(self.norms(column_soft_threshold(gradient, column_ball)), lam, 1.0 - self.l1_ratio)

    def zero_lambdas(self, gradient: torch.Tensor) -> torch.Tensor:
        """The root of ``||S(grad_g, lam A v)|| = lam (1 - A) sqrt(d_g)``, whose left side falls and
        right side rises with lambda; found by bisection for every group at once."""
        norms = column_norms(gradient).double()
        column_unit = self.l1_ratio * self.column_weight
        # at the largest column's lambda every column is thresholded away: the group is zero there
        high = torch.zeros(self.n_groups, dtype=torch.float64, device=gradient.device).scatter_reduce(
            0, self.group_ids, norms / column_unit, reduce="amax"
        )
        low = torch.zeros_like(high)
        group_unit = (1.0 - self.l1_ratio) * self.weights.double()
        for _ in range(ZERO_LAMBDA_BISECTIONS):
            middle = (low + high) / 2
            shrunk = torch.clamp(norms - middle[self.group_ids] * column_unit, min=0.0)
            left = torch.zeros_like(high).index_add_(0, self.group_ids, shrunk * shrunk).sqrt()
            inside = left <= middle * group_unit
            high = torch.where(inside, middle, high)
            low = torch.where(inside, low, middle)
        return high.to(gradient.dtype)

    def support(self, W: torch.Tensor) -> Support:
        """The non-zero groups and the non-zero columns inside them."""
        norms = column_norms(W.detach()).double().cpu().numpy()
        return dataclasses.replace(super().support(W), column_norms=norms)

    def value_of(self, support: Support) -> float:
        assert support.column_norms is not None  # this penalty's own support records them
        group_term = super().value_of(support)
        return (1.0 - self.l1_ratio) * group_term + self.l1_ratio * self.column_weight * float(support.column_norms.sum())


@dataclass(frozen=True)
class NeuronPenalty:
    """``sum_h ||W2[:, h]||`` on the weights leaving each first-layer hidden unit (W2: (n_out, n_hidden)).

    A unit whose outgoing weights reach exactly zero is dead, so the saved model is smaller. Each
    column is a group of its own, so no segment sum is needed.
    """

    def value(self, W: torch.Tensor) -> torch.Tensor:
        return column_norms(W).sum()

    def prox(self, W: torch.Tensor, threshold_scale: float | torch.Tensor) -> torch.Tensor:
        """Each unit's outgoing norm shrinks by ``threshold_scale`` (a 0-d tensor is fine: no host read)."""
        return column_soft_threshold(W, threshold_scale)

    def kkt_excess(self, gradient: torch.Tensor, lam: float) -> torch.Tensor:
        """Per unit, ``||grad_h|| - lam`` clamped at 0."""
        return torch.clamp(column_norms(gradient) - lam * (1 + KKT_SLACK), min=0.0)

    def zero_lambdas(self, gradient: torch.Tensor) -> torch.Tensor:
        """Per unit, ``||grad_h||``: the strength above which a dead unit stays dead."""
        return column_norms(gradient)

    def support(self, W: torch.Tensor) -> Support:
        """The live units, with their outgoing norms."""
        return Support(column_norms(W.detach()).double().cpu().numpy())

    def restrict(self, keep: np.ndarray) -> NeuronPenalty:
        """The penalty on the units where ``keep`` is true: the same unit penalty."""
        return self


def make_penalty(
    group_ids: np.ndarray,
    n_encoded: np.ndarray,
    fan_out: int,
    dtype: torch.dtype,
    device: torch.device | None = None,
    l1_ratio: float = 0.0,
) -> GroupLasso:
    """The first-layer penalty of a layer with ``fan_out`` units: the group lasso, or with ``l1_ratio``
    > 0 the sparse group lasso.

    d_g counts the group's weights (encoded columns x fan_out): a wide group has a larger gradient
    norm by chance alone, and the weight sqrt(d_g) keeps it from entering merely for being wide. A
    column inside a group holds fan_out weights, so its own weight is sqrt(fan_out) by the same rule;
    with single-column groups the two terms are then the same penalty whatever ``l1_ratio``.
    """
    ids = torch.as_tensor(group_ids, dtype=torch.int64, device=device)
    weights = torch.as_tensor(np.sqrt(n_encoded * fan_out), dtype=dtype, device=device)
    # column k is group k for every group: a problem restricted to groups 0..k-1 of more (an
    # all-relevant round) has columns 0..k-1 too, but its weights still count every group
    columns_are_groups = bool(len(group_ids) == len(n_encoded) and np.array_equal(group_ids, np.arange(len(group_ids))))
    if l1_ratio > 0.0:
        return SparseGroupLasso(ids, weights, columns_are_groups, l1_ratio=float(l1_ratio), column_weight=float(np.sqrt(fan_out)))
    return GroupLasso(ids, weights, columns_are_groups)


def penalty_for(
    model: ModelConfig,
    group_ids: np.ndarray,
    n_encoded: np.ndarray,
    fan_out: int,
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> GroupLasso:
    """The first-layer penalty the model settings ask for (``make_penalty`` with their ``l1_ratio``):
    a penalty with a setting of its own reads it here, and no caller changes."""
    return make_penalty(group_ids, n_encoded, fan_out, dtype, device, model.l1_ratio)


__all__ = ["KKT_SLACK", "GroupLasso", "NeuronPenalty", "Penalty", "SparseGroupLasso", "Support", "make_penalty", "penalty_for"]
