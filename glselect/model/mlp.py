"""The multilayer perceptron whose first-layer weight carries the group penalty.

The model knows nothing of lambdas; it only exposes its first-layer weight, the later weights
that must stay bounded, and the per-group norms of the first layer.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from glselect.model.prox import column_norms, group_norms, project_column_norms


class GroupLassoMLP(nn.Module):
    """ReLU network ``n_inputs -> hidden... -> n_outputs``; ``hidden=()`` is the linear model.

    Parameters
    ----------
    n_inputs
        Number of encoded input columns.
    hidden
        Hidden layer widths.
    n_outputs
        1 for regression and binary classification, the number of classes for multiclass.
    """

    def __init__(self, n_inputs: int, hidden: tuple[int, ...], n_outputs: int) -> None:
        super().__init__()
        widths = [n_inputs, *hidden, n_outputs]
        with warnings.catch_warnings():
            # a model with no inputs (nothing selected, or a fold past its last group) or no live
            # hidden units is an intercept; torch warns that initialising an empty weight does nothing
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.n_inputs = n_inputs
        self.hidden = tuple(hidden)
        self.n_outputs = n_outputs

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs of shape (n_samples, n_outputs) for inputs of shape (n_samples, n_inputs)."""
        return self.forward_from_first(self.layers[0](X))

    def forward_from_first(self, Z: torch.Tensor) -> torch.Tensor:
        """Outputs from the first layer's pre-activations Z, shape (n_samples, fan_out)."""
        if len(self.layers) == 1:
            return Z
        out = torch.relu(Z)
        for layer in self.layers[1:-1]:
            out = torch.relu(layer(out))
        return self.layers[-1](out)

    def forward_from_first_with(self, weights: Sequence[torch.Tensor], Z: torch.Tensor) -> torch.Tensor:
        """Outputs from the first layer's pre-activations Z (bias included) with ``weights`` (as in
        ``forward_with``; the first layer's are not read) in place of the later layers' own."""
        out = Z
        for i in range(1, len(self.layers)):
            out = F.linear(torch.relu(out), weights[2 * i], weights[2 * i + 1])
        return out

    def forward_with(self, weights: Sequence[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        """Outputs with ``weights`` (in ``parameters()`` order: each layer's weight, then its bias)
        in place of the module's own: a solver evaluates its iterates without copying them in."""
        return self.forward_from_first_with(weights, F.linear(X, weights[0], weights[1]))

    @property
    def linears(self) -> list[nn.Linear]:
        """The layers in order (every one an ``nn.Linear``), typed for the code that reads their weights."""
        return [layer for layer in self.layers if isinstance(layer, nn.Linear)]

    @property
    def first_weight(self) -> torch.Tensor:
        """The penalised weight (a parameter), shape (fan_out, n_inputs)."""
        return self.linears[0].weight

    @property
    def later_weights(self) -> list[torch.Tensor]:
        """Weights after the first layer (parameters), kept within a column-norm bound."""
        return [layer.weight for layer in self.linears[1:]]

    def group_norms(self, group_ids: torch.Tensor, n_groups: int) -> torch.Tensor:
        """Norm of each group of first-layer weights, shape (n_groups,)."""
        return group_norms(self.first_weight.detach(), group_ids, n_groups)

    @torch.no_grad()
    def bound_later_layers_(self, max_norm: float) -> None:
        """Project the later weights onto the column-norm ball (in place)."""
        for weight in self.later_weights:
            weight.copy_(project_column_norms(weight, max_norm))

    def n_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())


def prune_dead_neurons(model: GroupLassoMLP) -> GroupLassoMLP:
    """A copy of ``model`` without the first-layer hidden units whose outgoing weights are all zero.

    Such a unit adds nothing to any output, so the smaller network computes exactly the same function.
    """
    if not model.later_weights:
        return model
    alive = column_norms(model.later_weights[0].detach()) > 0
    kept = torch.nonzero(alive).flatten()
    hidden = (int(kept.numel()), *model.hidden[1:])
    smaller = GroupLassoMLP(model.n_inputs, hidden, model.n_outputs).to(model.first_weight)
    small_layers, layers = smaller.linears, model.linears
    with torch.no_grad():
        small_layers[0].weight.copy_(layers[0].weight[kept])
        small_layers[0].bias.copy_(layers[0].bias[kept])
        small_layers[1].weight.copy_(layers[1].weight[:, kept])
        small_layers[1].bias.copy_(layers[1].bias)
        for target, source in zip(small_layers[2:], layers[2:]):
            target.load_state_dict(source.state_dict())
    return smaller


def restrict_inputs(model: GroupLassoMLP, keep: np.ndarray) -> GroupLassoMLP:
    """A copy of ``model`` that reads only the input columns where ``keep`` (bool, (n_features,)) is true."""
    columns = torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64, device=model.first_weight.device)
    small = GroupLassoMLP(int(columns.numel()), model.hidden, model.n_outputs).to(model.first_weight)
    with torch.no_grad():
        for index, (target, source) in enumerate(zip(small.linears, model.linears)):
            target.bias.copy_(source.bias)
            target.weight.copy_(source.weight[:, columns] if index == 0 else source.weight)
    return small


@torch.no_grad()
def widen_inputs(model: GroupLassoMLP, small: GroupLassoMLP, columns: torch.Tensor) -> None:
    """Write ``small`` (a ``restrict_inputs`` copy reading ``columns`` of ``model``'s inputs) back
    into ``model``, in place: zero first-layer weights in every other column."""
    model.first_weight.zero_()
    model.first_weight[:, columns] = small.first_weight
    model.linears[0].bias.copy_(small.linears[0].bias)
    for target, source in zip(model.linears[1:], small.linears[1:]):
        target.load_state_dict(source.state_dict())
