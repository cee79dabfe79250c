"""The penalised objective, assembled from parts, and its one prox for both solvers.

- the datafit's loss (``glselect.model.datafits``: task and class weights);
- a penalty on the first-layer weight, times lambda (``glselect.model.penalties``: the group
  lasso, or the sparse group lasso, which adds a norm per encoded column inside the groups);
- the later-layer column-norm bound (a projection: the scale trap of ReLU networks);
- the optional neuron penalty on each hidden unit's outgoing weights, times its own strength.

A solver minimises ``loss + lam * penalty`` under the bound and owns no part of the objective: it
takes a step on the loss and calls ``Objective.prox_``, so full-batch FISTA and mini-batch SGD
apply the same operators in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from glselect.model.metrics import LossFunction
from glselect.model.penalties import KKT_SLACK, NeuronPenalty, Penalty, make_penalty
from glselect.model.prox import project_column_norms

NEURON_PENALTY = NeuronPenalty()


@dataclass(frozen=True)
class Objective:
    """``loss + lam * penalty(W1) + neuron_penalty * sum_h ||W2[:, h]||`` with later columns bounded by ``max_norm``.

    Parameters
    ----------
    loss_fn
        Mean loss of outputs against targets (``Datafit.loss``).
    penalty
        The first-layer penalty; None trains without one (the dense fit, refits).
    max_norm
        Column-norm bound of every later weight.
    neuron_penalty
        Strength of the neuron penalty on the second layer's weight (0: none).
    """

    loss_fn: LossFunction
    penalty: Penalty | None
    max_norm: float
    neuron_penalty: float = 0.0

    def penalty_value(self, first: torch.Tensor, later: Sequence[torch.Tensor], lam: float | torch.Tensor, penalised: bool) -> torch.Tensor:
        """``lam * penalty(first)`` (when ``penalised``) plus the neuron penalty of ``later[0]``, a 0-d tensor."""
        value = torch.zeros((), dtype=first.dtype, device=first.device)
        if self.penalty is not None and penalised:
            value = value + lam * self.penalty.value(first)
        if self.neuron_penalty and later:
            value = value + self.neuron_penalty * NEURON_PENALTY.value(later[0])
        return value

    def prox_(
        self,
        first: torch.Tensor,
        later: Sequence[torch.Tensor],
        step: float | torch.Tensor,
        lam: float | torch.Tensor,
        *,
        penalised: bool,
        with_value: bool,
    ) -> torch.Tensor | None:
        """Apply every part's prox at ``step`` in place: the first-layer penalty's at ``step * lam``
        (when ``penalised``), the neuron penalty's on ``later[0]``, then the norm bound on every
        later weight. Shrinking and then capping a column's norm is the prox of the neuron penalty
        plus the bound: both are radial.

        ``step`` and ``lam`` may be 0-d tensors (no host read). With ``with_value`` returns the
        penalty at the result (the group lasso takes it from the prox's own norms); else None and
        the plain prox is applied (a mini-batch solver never reads the value).
        """
        value = torch.zeros((), dtype=first.dtype, device=first.device) if with_value else None
        if self.penalty is not None and penalised:
            if value is not None:
                shrunk, group_value = self.penalty.prox_and_value(first, step * lam)
                value = value + lam * group_value
            else:
                shrunk = self.penalty.prox(first, step * lam)
            first.copy_(shrunk)
        for i, weight in enumerate(later):
            prunes_neurons = i == 0 and bool(self.neuron_penalty)
            moved = NEURON_PENALTY.prox(weight, step * self.neuron_penalty) if prunes_neurons else weight
            bounded = project_column_norms(moved, self.max_norm)
            weight.copy_(bounded)
            if prunes_neurons and value is not None:
                value = value + self.neuron_penalty * NEURON_PENALTY.value(bounded)
        return value


def neuron_prox(W2: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Prox of ``threshold * sum_h ||W2[:, h]||``: a hidden unit whose outgoing weights reach zero is dead."""
    return NEURON_PENALTY.prox(W2, threshold)


__all__ = ["KKT_SLACK", "Objective", "make_penalty", "neuron_prox"]
