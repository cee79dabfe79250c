"""A redundancy-aware top k for ``--max-features``: walk the path's ranking and skip a group that
is nearly a copy of one already taken.

The path's ranking keeps correlated neighbours together: a penalty that lets one of two similar
columns live keeps both while they share the work, so the last k groups alive on the path often
include near-copies (neighbouring MNIST pixels, correlated protein levels). Each copy spends one
of the k places on information the set already holds. Walking the ranking best first and
skipping a group whose largest absolute correlation with a group already taken exceeds
``max_correlation`` spends the places on new information instead.

Correlations are measured on the validation rows: they are held in memory by every batch source
(streamed too) and are the same rows on every torchrun rank, so every rank takes the same groups.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from glselect.model.prox import column_norms
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection, StepScores, choose_step
from glselect.select.importance import survival, survival_order
from glselect.select.knockoffs import sparsest_step_with
from glselect.select.refit import refit, scored_by


def ranked_groups(path: LambdaPath) -> np.ndarray:
    """Group indices best first: the last to leave the path first (ties: the larger norm there, then index)."""
    return survival_order(*survival(path))


def redundancy_aware_top_k(path: LambdaPath, problem: Problem, k: int, max_correlation: float) -> np.ndarray:
    """Bool (n_groups,): the first ``k`` groups of the ranking, skipping near-copies of groups taken.

    A group is a near-copy when some column of it correlates with some column of a group already
    taken by more than ``max_correlation`` in absolute value, on the validation rows. Groups the
    path never kept (zero even in the dense model) are not taken. When the ranking runs out of
    groups that are not near-copies before ``k`` are taken, the skipped ones fill the places left
    in ranking order: fewer than ``k`` come back only when the path kept fewer groups.
    """
    X = problem.val.X
    centred = X - X.mean(dim=0, keepdim=True)
    scale = column_norms(centred)
    # a constant column correlates with nothing: its unit vector stays zero
    unit = torch.where(scale > 0, centred / scale.clamp_min(torch.finfo(X.dtype).tiny), torch.zeros_like(centred))
    taken = np.zeros(problem.n_groups, dtype=bool)
    taken_columns: list[int] = []
    ever_alive = np.stack([step.group_norms for step in path.steps]).max(axis=0) > 0
    ranking = [group for group in ranked_groups(path) if ever_alive[group]]
    skipped = []
    for group in ranking:
        if taken.sum() >= k:
            break
        columns = np.flatnonzero(problem.group_ids == group)
        if taken_columns and len(X) > 1:
            index = torch.as_tensor(columns, dtype=torch.int64, device=X.device)
            chosen = torch.as_tensor(taken_columns, dtype=torch.int64, device=X.device)
            correlation = unit.index_select(1, index).T @ unit.index_select(1, chosen)
            if float(correlation.abs().max()) > max_correlation:
                skipped.append(group)
                continue
        taken[group] = True
        taken_columns.extend(columns.tolist())
    # when every group left is a near-copy, the places still free go to the best of the skipped:
    # a copy adds less than new information, but more than an empty place
    for group in skipped[: max(0, k - int(taken.sum()))]:
        taken[group] = True
    return taken


class TopK:
    """``--max-features K`` with ``--max-correlation`` under 1: the redundancy-aware top k, refitted."""

    name = "top-k"
    kind = "choose"

    def choose(self, fit: Fit, scores: StepScores | None) -> tuple[Selection, Part]:
        config = fit.config.selection
        assert config.max_features is not None  # the plan runs this stage only with --max-features
        _, rule = choose_step(fit.path, config, scores)  # stops when no step has at most K groups
        fit.progress.announce("refit")
        top_k = redundancy_aware_top_k(fit.path, fit.problem, config.max_features, config.max_correlation)
        selection = refit(fit.problem, fit.path, sparsest_step_with(fit.path, top_k), rule, group_mask=top_k)
        selection = dataclasses.replace(selection, unconfirmed=np.zeros_like(top_k))
        return selection, Part(self.name, summary={"scored_by": scored_by(fit, scores)})
