"""Confirm the chosen groups by a permutation test of the refit model, by backward elimination.

A path step's support is nested in the path's order, so a noise column with a chance
correlation that outlives a true column with a weak first-order signal (Friedman's symmetric
``(x2 - 0.5)^2``) rides along in every step that has the true one. The refit model shows which
of its inputs it actually relies on: shuffling a noise column leaves its validation loss
unchanged up to noise, shuffling a real one raises it by many standard errors. The weakest group
is dropped and the network refitted until every group left passes.

Under the sparse group lasso (``--l1-ratio``) confirmation still tests groups, each with the
columns the path kept inside it, and not the columns one by one: the columns of a group are
the ones a user declared to belong together (often correlated channels or one-hot levels), so
shuffling one of them while its neighbours stay in measures little, and which columns inside a
group matter is already the within-group penalty's answer; a per-column test would also cost a
refit for every column it drops.
"""

from __future__ import annotations

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.model.metrics import LossFunction
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath
from glselect.select.choose import Selection
from glselect.select.permutation import PermutationScores, permutation_importance
from glselect.select.refit import refit

CONFIRM_REPEATS = 10  # shuffles per group: per-row increases averaged over them steady the t statistic


def group_permutation(
    selection: Selection, rows: Rows, group_ids: np.ndarray, row_loss_fn: LossFunction, repeats: int, seed: int
) -> PermutationScores:
    """Permutation importance of each group (all of them, in group order) for the refit model on
    ``rows`` (with every encoded column); groups the model does not read score 0."""
    model_groups = group_ids[selection.feature_mask]  # the group of each of the refit model's inputs
    X_model = rows.X[:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=rows.X.device)]
    # only the model's groups have columns to shuffle: a wide table has thousands of others
    column_sets = [np.empty(0, dtype=np.int64)] * selection.group_mask.size
    for g in np.unique(model_groups):
        column_sets[g] = np.flatnonzero(model_groups == g)
    return permutation_importance(selection.model, X_model, rows.y, column_sets, row_loss_fn, repeats, seed)


def weakest_unconfirmed(selection: Selection, problem: Problem, min_t: float) -> int | None:
    """The selected group whose shuffling raises the refit model's validation loss least, if that
    rise is under ``min_t`` standard errors; None when every selected group passes.

    One group at a time (the caller refits without it and asks again): two columns that carry
    the same information each look useless while the other is in, and dropping both at once
    would lose it.
    """
    chosen = np.flatnonzero(selection.group_mask)
    if chosen.size == 0:
        return None
    scores = group_permutation(selection, problem.val, problem.group_ids, problem.row_loss_fn, CONFIRM_REPEATS, problem.seed)
    t = scores.t[chosen]
    weakest = int(np.argmin(t))
    return int(chosen[weakest]) if t[weakest] < min_t else None


def confirm(problem: Problem, path: LambdaPath, selection: Selection, min_t: float) -> Selection:
    """Drop the weakest unconfirmed group and refit, until every group left passes ``min_t``.

    Between tests the network is refitted from the last one without the dropped group's columns
    (warm-started, early-stopped as any refit): on a wide table the chosen step can hold dozens of
    groups that fail one after another, and a fresh network for each cost most of the fit. Once
    every group passes, a fresh network is fitted on them and tested in turn, so the model kept is
    a fresh refit whose every group passes, as when each test had its own fresh refit.
    """
    fresh = True  # the selection's model is a fresh refit (the pipeline's, to begin with)
    while True:
        weakest = weakest_unconfirmed(selection, problem, min_t)
        if weakest is None and fresh:
            return selection
        if weakest is None:
            selection = refit(problem, path, selection.step_index, selection.rule, group_mask=selection.group_mask)
            fresh = True
            continue
        kept = selection.group_mask.copy()
        kept[weakest] = False
        selection = refit(problem, path, selection.step_index, selection.rule, group_mask=kept, warm_from=selection)
        fresh = False
