"""Refit: a fresh unpenalised network on the chosen columns, the pruned model that is saved."""

from __future__ import annotations

import numpy as np

from glselect.model.mlp import prune_dead_neurons, restrict_inputs
from glselect.path.problem import Problem
from glselect.path.walk import REFIT_KEY, LambdaPath
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection, StepScores, choose_step


def refit(
    problem: Problem,
    path: LambdaPath,
    step_index: int,
    rule: str,
    group_mask: np.ndarray | None = None,
    warm_from: Selection | None = None,
) -> Selection:
    """Train a fresh unpenalised network on the chosen step's columns, early-stopped on validation rows.

    This refit, not the penalised step, is the pruned model: the penalty's shrinkage is gone and
    the model is built on purpose from the chosen columns (the last, emptiest step is never saved).
    ``group_mask`` (bool, (n_groups,)): refit on these groups instead, a subset of the step's
    (what confirmation kept); the others are marked ``unconfirmed``. With a neuron penalty the
    hidden units it zeroes are pruned and the smaller network is fitted again without it.
    With ``--l1-ratio`` the refit reads only the step's non-zero encoded columns of those groups.
    ``warm_from``: start from that refit's network on the columns both read (its columns must
    include these) rather than from a fresh one: what backward elimination uses between its tests.
    """
    step = path.steps[step_index]
    in_step = step.group_norms > 0
    group_mask = in_step if group_mask is None else group_mask
    feature_mask = group_mask[problem.group_ids]
    if step.column_support is not None:
        # sparse group lasso: the columns the penalty zeroed inside a kept group stay out of the refit
        feature_mask = feature_mask & step.column_mask(problem.group_ids)
    narrow = problem.restrict(feature_mask)
    model = narrow.new_model() if warm_from is None else restrict_inputs(warm_from.model, feature_mask[warm_from.feature_mask])
    neuron_penalty = problem.settings.model.neuron_penalty
    result = narrow.train(model, "train", key=REFIT_KEY, neuron_penalty=neuron_penalty)
    n_hidden_before = model.hidden[0] if model.hidden else 0
    if neuron_penalty > 0 and model.hidden:
        model = prune_dead_neurons(model)
        result = narrow.train(model, "train", key=REFIT_KEY + 1)
    return Selection(
        step_index=step_index,
        rule=rule,
        lam=step.lam,
        group_mask=group_mask,
        feature_mask=feature_mask,
        model=model,
        refit=result,
        n_pruned_neurons=n_hidden_before - (model.hidden[0] if model.hidden else 0),
        unconfirmed=in_step & ~group_mask,
    )


def scored_by(fit: Fit, scores: StepScores | None) -> str:
    """What the chosen step was scored by: the cross-validation folds, the validation rows, or nothing (``--max-features``)."""
    if scores is not None:
        return scores.source
    return "validation" if fit.config.selection.max_features is None else "max_features"


class RuleChoice:
    """The step ``--rule`` (or ``--max-features``) picks on the path, refitted on its groups."""

    name = "rule"
    kind = "choose"

    def choose(self, fit: Fit, scores: StepScores | None) -> tuple[Selection, Part]:
        step_index, rule = choose_step(fit.path, fit.config.selection, scores)
        fit.progress.announce("refit")
        selection = refit(fit.problem, fit.path, step_index, rule)
        return selection, Part(self.name, summary={"scored_by": scored_by(fit, scores)})
