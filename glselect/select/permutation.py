"""Permutation importance: how much a fitted model's loss on held-out rows grows when columns are shuffled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.model.metrics import LossFunction
from glselect.model.mlp import GroupLassoMLP
from glselect.path.problem import Problem
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection

# First-layer activations held at once while scoring shuffles (each shuffle is n_rows x fan_out):
# batching many shuffles into one forward pass saves the per-call overhead of small passes.
SHUFFLED_VALUES = 4_000_000


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
    # (n sets, n rows) float64: each row's increase averaged over repeats (0 for unscored sets), so
    # that increases on several sets of rows can be pooled into one t (cross-fitted confirmation);
    # None unless asked for
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class Shuffles:
    """How the columns are shuffled: ``repeats`` permutations per set, drawn from ``seed``; with
    ``keep_rows`` each row's increase is returned too (``PermutationScores.rows``)."""

    repeats: int
    seed: int
    keep_rows: bool = False


@torch.no_grad()
def permutation_importance(
    model: GroupLassoMLP,
    X: torch.Tensor,
    y: torch.Tensor,
    column_sets: list[np.ndarray],
    row_loss_fn: LossFunction,
    shuffles: Shuffles,
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
    shuffles
        Permutations per set (``std`` is their spread: 0 with one repeat), their seed, and
        whether each row's increase is kept.
    """
    repeats, seed, keep_rows = shuffles.repeats, shuffles.seed, shuffles.keep_rows
    generator = torch.Generator().manual_seed(seed)
    Z = model.layers[0](X)  # first-layer pre-activations of the unshuffled rows
    base = row_loss_fn(model.forward_from_first(Z), y).double()
    mean, std, t = (np.zeros(len(column_sets)) for _ in range(3))
    per_row = np.zeros((len(column_sets), X.shape[0])) if keep_rows else None
    scored = [i for i, columns in enumerate(column_sets) if columns.size and repeats]
    # every (set, repeat) shuffle in order; each permutation is drawn when its batch is built (the
    # generator's sequence is the same as drawing all first) and each set's per-row growth is kept
    # only until its last repeat is scored: holding every draw's permutation and growth at once
    # cost 16 bytes per row per shuffle (80 MB for 5 groups on a streamed fit's 100,000 held-out rows)
    draws = [(i, repeat) for i in scored for repeat in range(repeats)]
    growth_of: dict[int, torch.Tensor] = {}  # set -> (repeats, n_rows) float64, while it is being scored
    per_batch = max(1, SHUFFLED_VALUES // max(1, Z.numel()))
    W = model.first_weight.detach()
    for start in range(0, len(draws), per_batch):
        batch = [(i, repeat, torch.randperm(X.shape[0], generator=generator)) for i, repeat in draws[start : start + per_batch]]
        # the first layer is linear: shuffling columns S moves Z by (X[order, S] - X[:, S]) W[:, S]^T,
        # so each shuffle costs its own columns, not the whole table, and all go through one forward pass
        shifted = torch.stack(
            [
                Z + (X[:, index][order.to(X.device)] - X[:, index]) @ W[:, index].T
                for i, _, order in batch
                for index in [torch.as_tensor(column_sets[i], dtype=torch.int64, device=X.device)]
            ]
        )
        outputs = model.forward_from_first(shifted.reshape(-1, Z.shape[1])).reshape(len(batch), X.shape[0], -1)
        for k, (i, repeat, _) in enumerate(batch):
            if i not in growth_of:
                growth_of[i] = torch.zeros(repeats, X.shape[0], dtype=torch.float64)
            growth_of[i][repeat] = (row_loss_fn(outputs[k], y).double() - base).cpu()
            if repeat == repeats - 1:
                growth = growth_of.pop(i)
                mean[i], std[i], t[i] = _growth_scores(growth)
                if per_row is not None:
                    per_row[i] = growth.mean(dim=0).numpy()
    return PermutationScores(mean=mean, std=std, t=t, rows=per_row)


def _growth_scores(rows: torch.Tensor) -> tuple[float, float, float]:
    """Mean, spread over repeats and t of one set's loss growth ``rows`` (repeats, n_rows)."""
    per_repeat = rows.mean(dim=1)
    mean = float(per_repeat.mean())
    std = float(per_repeat.std()) if rows.shape[0] > 1 else 0.0
    return mean, std, growth_t(mean, rows.mean(dim=0).numpy())


def growth_t(mean: float, per_row: np.ndarray) -> float:
    """How many standard errors of the per-row increases ``per_row`` their mean ``mean`` is from zero."""
    se = float(per_row.std(ddof=1)) / np.sqrt(per_row.size) if per_row.size > 1 else 0.0
    return mean / se if se > 0 else (np.inf if mean > 0 else 0.0)


def group_permutation(
    selection: Selection,
    rows: Rows,
    group_ids: np.ndarray,
    row_loss_fn: LossFunction,
    shuffles: Shuffles,
    groups: np.ndarray | None = None,
) -> PermutationScores:
    """Permutation importance of each group in ``groups`` (default: all of them, in group order)
    for the refit model on ``rows`` (with every encoded column); groups the model does not read
    score 0."""
    model_groups = group_ids[selection.feature_mask]  # the group of each of the refit model's inputs
    X_model = rows.X[:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=rows.X.device)]
    # only the model's groups have columns to shuffle: a wide table has thousands of others
    column_sets = [np.empty(0, dtype=np.int64)] * selection.group_mask.size
    for g in np.unique(model_groups):
        column_sets[g] = np.flatnonzero(model_groups == g)
    if groups is not None:
        column_sets = [column_sets[g] for g in groups]
    return permutation_importance(selection.model, X_model, rows.y, column_sets, row_loss_fn, shuffles)


def held_out_importances(
    problem: Problem, selection: Selection, test: Rows, repeats: int
) -> tuple[PermutationScores, dict[str, tuple[float, float]]]:
    """Permutation importance of the refit model on the test rows: per group, and per table column it reads."""
    by_group = group_permutation(selection, test, problem.group_ids, problem.datafit.row_loss, Shuffles(repeats, problem.seed))
    sources = problem.data.encoder.sources
    model_sources = np.asarray(sources, dtype=object)[selection.feature_mask]
    read_columns = list(dict.fromkeys(model_sources))
    column_sets = [np.flatnonzero(model_sources == name) for name in read_columns]
    X_model = test.X[:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=test.X.device)]
    by_column = permutation_importance(
        selection.model, X_model, test.y, column_sets, problem.datafit.row_loss, Shuffles(repeats, problem.seed)
    )
    return by_group, {name: (float(m), float(sd)) for name, m, sd in zip(read_columns, by_column.mean, by_column.std)}


class PermutationImportance:
    """How much the refit model's held-out loss grows when a group (a table column) is shuffled."""

    name = "permutation"
    kind = "measure"
    columns = ("permutation", "permutation_std")

    def measure(self, fit: Fit, selection: Selection) -> Part:
        fit.progress.announce("permutation importance")
        by_group, by_column = held_out_importances(fit.problem, selection, fit.test, fit.config.importance.permutation_repeats)
        return Part(
            self.name,
            group_columns={"permutation": by_group.mean, "permutation_std": by_group.std},
            column_values={
                "permutation": {name: mean for name, (mean, _) in by_column.items()},
                "permutation_std": {name: spread for name, (_, spread) in by_column.items()},
            },
            unread=0.0,  # a column the refit model does not read: shuffling it changes nothing
        )
