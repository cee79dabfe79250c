"""``--goal all-relevant``: every group that carries signal, redundant copies included (Boruta's question).

The penalised path answers the minimal question: of two columns that carry the same
information it keeps one, because the second adds nothing once the first is in. The dense
model (lambda = 0, early-stopped) has no such preference: it spreads its weight over every
column that helps, copies included, and leaves the noise columns with weights that fit chance.

The test: shuffle a group's columns in the validation rows and measure how much the dense
model's per-row loss grows (averaged over ``RELEVANCE_REPEATS`` shuffles). For a group the model
does not need, the growth is noise around zero (the shuffled column has the same distribution,
so the chance weights it carries hurt as much shuffled as not); for a group it uses, every row
is hurt on average. A group is relevant when the one-sided t statistic of the per-row growth
clears the Bonferroni-corrected normal quantile for a family-wise error rate of
``RELEVANCE_LEVEL`` over all groups: the chance that any noise group passes is at most about 5%.

The validation rows are held in memory by every batch source and are the same on every torchrun
rank, so every rank reaches the same set.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import torch

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath
from glselect.select.permutation import PermutationScores, permutation_importance

RELEVANCE_REPEATS = 10  # shuffles per group: the per-row growth is averaged over them
RELEVANCE_LEVEL = 0.05  # family-wise error rate over all groups


def relevance_threshold(n_groups: int, level: float = RELEVANCE_LEVEL) -> float:
    """The t a group must exceed: the normal quantile at ``level / n_groups`` (one-sided, Bonferroni)."""
    return NormalDist().inv_cdf(1.0 - level / max(n_groups, 1))


def dense_relevance(problem: Problem, path: LambdaPath) -> PermutationScores:
    """Permutation scores of every group for the dense model on the validation rows."""
    X = problem.val.X
    group_ids = np.asarray(problem.group_ids)
    column_sets = [np.flatnonzero(group_ids == g) for g in range(problem.n_groups)]
    model = path.dense_model
    with torch.no_grad():
        return permutation_importance(model, X, problem.val.y, column_sets, problem.row_loss_fn, RELEVANCE_REPEATS, problem.seed)


def all_relevant(problem: Problem, path: LambdaPath, minimal: np.ndarray) -> np.ndarray:
    """Bool (n_groups,): the ``minimal`` set (bool (n_groups,), already tested by its own rule)
    and every group whose shuffling hurts the dense model beyond the threshold."""
    scores = dense_relevance(problem, path)
    return minimal | (scores.t > relevance_threshold(problem.n_groups))


def check_goal_options(config: SelectionConfig) -> None:
    """``--goal all-relevant`` answers another question than the options that pick a set of their own.

    Checked when a fit starts, as ``check_fdr_options`` is, so each option alone still makes a config.
    """
    if config.goal != "all-relevant":
        return
    if config.fdr is not None:
        raise GlselectError(
            "--goal all-relevant and --fdr ask different questions: knockoffs test each group given all the others, "
            "so a redundant copy is never selected; give one of them"
        )
    if config.max_features is not None:
        raise GlselectError("--goal all-relevant and --max-features both choose the selected set: give one of them")
