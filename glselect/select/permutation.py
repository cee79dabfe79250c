"""Permutation importance: how much a fitted model's loss on held-out rows grows when columns are shuffled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP


@dataclass(frozen=True)
class PermutationScores:
    """Per column set: the loss increase when it is shuffled.

    ``mean`` and ``std``: over repeats. ``t``: the mean over the standard error of the per-row
    increases (each row's increase averaged over repeats), i.e. how many standard errors the
    increase is away from zero; 0 where the model does not read the set.
    """

    mean: np.ndarray
    std: np.ndarray
    t: np.ndarray


@torch.no_grad()
def permutation_importance(
    model: GroupLassoMLP,
    X: torch.Tensor,
    y: torch.Tensor,
    column_sets: list[np.ndarray],
    row_loss_fn: LossFunction,
    repeats: int,
    seed: int,
) -> PermutationScores:
    """Growth of the mean loss of ``model`` on ``(X, y)`` when each set of its input columns is shuffled.

    The columns of a set are shuffled with one row permutation, so a group (or the one-hot
    levels of one column) moves as a whole and its internal structure stays intact. An empty set
    scores 0: the model does not read it.

    Parameters
    ----------
    X
        The model's own inputs (n_rows, model inputs), held-out rows.
    column_sets
        Indices into X's columns, one array per set to score.
    repeats
        Permutations per set; ``std`` is their spread (0 with one repeat).
    """
    generator = torch.Generator().manual_seed(seed)
    base = row_loss_fn(model(X), y).double()
    mean, std, t = (np.zeros(len(column_sets)) for _ in range(3))
    for i, columns in enumerate(column_sets):
        if columns.size == 0 or repeats == 0:
            continue
        index = torch.as_tensor(columns, dtype=torch.int64)
        growth = torch.zeros(repeats, X.shape[0], dtype=torch.float64)  # per repeat, per row
        for r in range(repeats):
            shuffled = X.clone()
            order = torch.randperm(X.shape[0], generator=generator)
            shuffled[:, index] = X[order][:, index]
            growth[r] = row_loss_fn(model(shuffled), y).double() - base
        per_repeat = growth.mean(dim=1)
        mean[i] = float(per_repeat.mean())
        std[i] = float(per_repeat.std()) if repeats > 1 else 0.0
        per_row = growth.mean(dim=0)
        se = float(per_row.std()) / np.sqrt(max(per_row.numel(), 1))
        t[i] = mean[i] / se if se > 0 else (np.inf if mean[i] > 0 else 0.0)
    return PermutationScores(mean=mean, std=std, t=t)
