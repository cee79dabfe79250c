"""Unpenalised training with early stopping on validation loss: the dense start and the refit."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from glselect.config import TrainConfig
from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.solve.fista import ProximalGradient


@dataclass(frozen=True)
class TrainResult:
    n_iters: int
    best_val_loss: float
    stopped_early: bool  # validation loss stopped improving before max_iters


@torch.no_grad()
def mean_loss(model: GroupLassoMLP, X: torch.Tensor, y: torch.Tensor, loss_fn: LossFunction) -> float:
    return float(loss_fn(model(X), y))


def train_early_stopped(
    model: GroupLassoMLP,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    loss_fn: LossFunction,
    max_norm: float,
    config: TrainConfig,
    neuron_penalty: float = 0.0,
) -> TrainResult:
    """Train ``model`` in place without a group penalty; keep the weights with the best validation loss.

    Parameters
    ----------
    train, val
        ``(X, y)`` pairs, X of shape (n_samples, n_features).
    max_norm
        Column-norm bound of the later layers (the same model class as on the path).
    neuron_penalty
        Penalty on each first-layer hidden unit's outgoing weights (0: none), to prune units.
    """
    solver = ProximalGradient(model, *train, loss_fn, penalty=None, max_norm=max_norm, neuron_penalty=neuron_penalty)
    best_loss = mean_loss(model, *val, loss_fn)
    best_state = copy.deepcopy(model.state_dict())
    n_iters = 0
    checks_without_gain = 0
    stopped_early = False
    while n_iters < config.max_iters:
        result = solver.run(min(config.check_every, config.max_iters - n_iters), tol=1e-7)
        n_iters += result.n_iters
        val_loss = mean_loss(model, *val, loss_fn)
        if val_loss < best_loss - 1e-6 * abs(best_loss):
            best_loss = val_loss
            best_state = copy.deepcopy(model.state_dict())
            checks_without_gain = 0
        else:
            checks_without_gain += 1
        if checks_without_gain >= config.patience or result.converged:
            stopped_early = True
            break
    model.load_state_dict(best_state)
    return TrainResult(n_iters=n_iters, best_val_loss=best_loss, stopped_early=stopped_early)


def train_on_columns(
    model: GroupLassoMLP,
    keep: np.ndarray,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    loss_fn: LossFunction,
    max_norm: float,
    config: TrainConfig,
    neuron_penalty: float = 0.0,
) -> TrainResult:
    """``train_early_stopped`` for a model that reads only the encoded columns where ``keep`` (bool) is true."""
    columns = torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64, device=train[0].device)
    return train_early_stopped(
        model, (train[0][:, columns], train[1]), (val[0][:, columns], val[1]), loss_fn, max_norm, config, neuron_penalty
    )
