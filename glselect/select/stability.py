"""Complementary-pairs stability selection (Shah & Samworth 2013) over group-lasso paths.

B times, the rows are split at random into two disjoint halves, and a path is fitted on each
half. Each half-path selects the ``q`` groups that survive longest on it. A group's frequency is
the share of the 2B half-paths that selected it; the groups whose frequency reaches the threshold
``pi`` are the stable set. Meinshausen & Bühlmann's bound on the expected number of falsely
selected groups, ``E[V] <= q^2 / ((2 pi - 1) p)`` for p groups, holds for complementary pairs
as well (Shah & Samworth, Theorem 1), under the same assumptions: the noise groups are
exchangeable and each half-path selects them no better than at random.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from glselect.config import ModelConfig, PathConfig, TrainConfig
from glselect.select.importance import survival
from glselect.model.mlp import GroupLassoMLP
from glselect.path.walk import fit_path


@dataclass(frozen=True)
class Stability:
    n_pairs: int
    q: int  # groups each half-path selects: the q that survive longest on it
    threshold: float  # pi: the frequency a group needs to be stable
    frequency: np.ndarray  # (n_groups,): share of the 2B half-paths that selected the group

    @property
    def stable(self) -> np.ndarray:
        return self.frequency >= self.threshold

    @property
    def expected_false_bound(self) -> float:
        """Upper bound on the expected number of noise groups in the stable set."""
        p = self.frequency.size
        return self.q**2 / ((2 * self.threshold - 1) * p) if p else 0.0


def top_surviving(path_lams: np.ndarray, last_norms: np.ndarray, q: int) -> np.ndarray:
    """Bool mask of the ``q`` groups that survive longest (ties: larger norm where last alive).

    Groups that were never non-zero (survival 0) are never selected, so fewer than q may come back.
    """
    order = np.lexsort((-last_norms, -path_lams))[:q]
    mask = np.zeros(path_lams.size, dtype=bool)
    mask[order[path_lams[order] > 0]] = True
    return mask


def stability_selection(
    X: torch.Tensor,
    y: torch.Tensor,
    group_ids: np.ndarray,
    n_encoded: np.ndarray,
    task: str,
    n_outputs: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
    path_config: PathConfig,
    n_pairs: int,
    q: int,
    threshold: float,
    val_fraction: float,
    seed: int,
    class_weights: np.ndarray | None = None,
    on_subsample: Callable[[int], None] | None = None,
) -> Stability:
    """Selection frequencies of each group over ``2 * n_pairs`` half-sample paths of ``(X, y)``.

    Parameters
    ----------
    X, y
        The rows to subsample (training and validation rows; never the test rows).
    q
        Groups each half-path selects; its path stops once q or fewer groups remain, which is
        where most of a path's cost would otherwise go.
    val_fraction
        Share of each half held out to early-stop its dense fit.
    on_subsample
        Called with the half-path's number (0-based) as it starts.
    """
    n_groups = int(n_encoded.size)
    rng = np.random.default_rng(seed)
    counts = np.zeros(n_groups)
    half_config = dataclasses.replace(path_config, min_features=q)
    half = len(y) // 2
    for b in range(n_pairs):
        order = rng.permutation(len(y))
        for j, rows in enumerate((order[:half], order[half : 2 * half])):
            if on_subsample is not None:
                on_subsample(2 * b + j)
            n_val = max(1, round(len(rows) * val_fraction))
            val = torch.as_tensor(np.sort(rows[:n_val]))
            train = torch.as_tensor(np.sort(rows[n_val:]))
            torch.manual_seed(seed + 1 + 2 * b + j)
            model = GroupLassoMLP(X.shape[1], model_config.hidden, n_outputs).to(device=X.device, dtype=X.dtype)
            path = fit_path(
                model, (X[train], y[train]), (X[val], y[val]), group_ids, n_encoded, task,
                model_config, train_config, half_config,
                class_weights=class_weights, score_step=lambda i: False,  # no relaxed scores: nothing is chosen by loss
            )
            counts += top_surviving(*survival(path), q)
    return Stability(n_pairs=n_pairs, q=q, threshold=threshold, frequency=counts / (2 * n_pairs))
