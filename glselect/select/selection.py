"""Pick one step of the path by a named rule, refit an unpenalised model on its columns, and confirm them.

Confirmation: a path step's support is nested in the path's order, so a noise column with a
chance correlation that outlives a true column with a weak first-order signal (Friedman's
symmetric ``(x2 - 0.5)^2``) rides along in every step that has the true one. The refit model
shows which of its inputs it actually relies on: shuffling a noise column leaves its validation
loss unchanged up to noise, shuffling a real one raises it by many standard errors. The weakest
group is dropped and the network refitted until every group left passes (backward elimination).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glselect.config import ModelConfig, SelectionConfig, TrainConfig
from glselect.errors import GlselectError
from glselect.model.metrics import LossFunction, loss_function, row_loss_function
from glselect.model.mlp import GroupLassoMLP, prune_dead_neurons
from glselect.path.walk import LambdaPath
from glselect.select.permutation import PermutationScores, permutation_importance
from glselect.solve.train import TrainResult, train_on_columns


@dataclass(frozen=True)
class Selection:
    """The chosen step and the pruned model refitted on its columns.

    ``group_mask`` is bool (n_groups,); ``feature_mask`` is bool (n_features,) over encoded
    columns; ``model`` reads only the encoded columns where ``feature_mask`` is true.
    """

    step_index: int
    rule: str
    lam: float
    group_mask: np.ndarray
    feature_mask: np.ndarray
    model: GroupLassoMLP
    refit: TrainResult
    n_pruned_neurons: int  # first-layer hidden units removed by the neuron penalty
    unconfirmed: np.ndarray  # bool (n_groups,): in the chosen step but dropped by confirmation


@dataclass(frozen=True)
class StepScores:
    """A loss per path step to choose by (NaN: not scored) and its standard error.

    From the validation rows (``validation_scores``), or the mean over cross-validation folds.
    """

    loss: np.ndarray
    se: np.ndarray
    source: str  # "validation" or "cv<K>"


def validation_scores(path: LambdaPath) -> StepScores:
    """The path's own relaxed validation losses, their standard errors taken over validation rows."""
    return StepScores(
        loss=np.array([step.relaxed_val_loss for step in path.steps]),
        se=np.array([step.relaxed_val_se for step in path.steps]),
        source="validation",
    )


def choose_step(path: LambdaPath, config: SelectionConfig, scores: StepScores | None = None) -> tuple[int, str]:
    """Index of the chosen step and the rule that chose it.

    - ``max_features=K``: the least-penalised step with at most K groups (the K groups that
      survive longest, when groups leave one at a time).
    - ``min``: the lowest relaxed loss.
    - ``1se``: the sparsest (largest-lambda) step whose relaxed loss is within one standard
      error of the lowest.

    ``scores`` defaults to the validation rows' (``validation_scores``).

    Raises
    ------
    GlselectError
        No step has at most ``max_features`` groups (the path stopped at a higher floor).
    """
    steps = path.steps
    if config.max_features is not None:
        within = [i for i, step in enumerate(steps) if step.n_selected <= config.max_features]
        if not within:
            raise GlselectError(
                f"no step of the path has at most {config.max_features} groups "
                f"(the sparsest has {min(step.n_selected for step in steps)})",
                hint="lower --min-features or raise --max-features",
            )
        return within[0], f"max_features={config.max_features}"
    scores = scores or validation_scores(path)
    losses = np.where(np.isfinite(scores.loss), scores.loss, np.inf)  # unscored (NaN) or diverged steps are never chosen
    # ties go to the sparser step: later on the path
    best = int(len(losses) - 1 - np.argmin(losses[::-1]))
    if config.rule == "min":
        return best, "min"
    threshold = losses[best] + np.nan_to_num(scores.se[best])
    return int(np.flatnonzero(losses <= threshold).max()), "1se"


def refit(
    path: LambdaPath,
    step_index: int,
    rule: str,
    group_ids: np.ndarray,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    task: str,
    n_outputs: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    class_weights: np.ndarray | None = None,
    group_mask: np.ndarray | None = None,
) -> Selection:
    """Train a fresh unpenalised network on the chosen step's columns, early-stopped on validation rows.

    This refit, not the penalised step, is the pruned model: the penalty's shrinkage is gone and
    the model is built on purpose from the chosen columns (the last, emptiest step is never saved).
    ``group_mask`` (bool, (n_groups,)): refit on these groups instead, a subset of the step's
    (what confirmation kept); the others are marked ``unconfirmed``.
    """
    step = path.steps[step_index]
    in_step = step.group_norms > 0
    group_mask = in_step if group_mask is None else group_mask
    feature_mask = group_mask[group_ids]
    torch.manual_seed(seed)
    model = GroupLassoMLP(int(feature_mask.sum()), model_config.hidden, n_outputs).to(device=train[0].device, dtype=train[0].dtype)
    loss_fn = loss_function(task, class_weights)
    result = train_on_columns(
        model, feature_mask, train, val, loss_fn, model_config.max_norm, train_config, model_config.neuron_penalty
    )
    n_hidden_before = model.hidden[0] if model.hidden else 0
    if model_config.neuron_penalty > 0 and model.hidden:
        # drop the units the neuron penalty zeroed, then fit the smaller network without penalty
        model = prune_dead_neurons(model)
        result = train_on_columns(model, feature_mask, train, val, loss_fn, model_config.max_norm, train_config)
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


CONFIRM_REPEATS = 10  # shuffles per group: per-row increases averaged over them steady the t statistic


def group_permutation(
    selection: Selection,
    rows: tuple[torch.Tensor, torch.Tensor],
    group_ids: np.ndarray,
    row_loss_fn: LossFunction,
    repeats: int,
    seed: int,
) -> PermutationScores:
    """Permutation importance of each group (all of them, in group order) for the refit model on
    ``rows`` (``(X, y)`` with every encoded column); groups the model does not read score 0."""
    model_groups = group_ids[selection.feature_mask]  # the group of each of the refit model's inputs
    X_model = rows[0][:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64)]
    column_sets = [np.flatnonzero(model_groups == g) for g in range(selection.group_mask.size)]
    return permutation_importance(selection.model, X_model, rows[1], column_sets, row_loss_fn, repeats, seed)


def weakest_unconfirmed(
    selection: Selection,
    val: tuple[torch.Tensor, torch.Tensor],
    group_ids: np.ndarray,
    row_loss_fn: LossFunction,
    min_t: float,
    seed: int,
) -> int | None:
    """The selected group whose shuffling raises the refit model's validation loss least, if that
    rise is under ``min_t`` standard errors; None when every selected group passes.

    One group at a time (the caller refits without it and asks again): two columns that carry
    the same information each look useless while the other is in, and dropping both at once
    would lose it.
    """
    chosen = np.flatnonzero(selection.group_mask)
    if chosen.size == 0:
        return None
    t = group_permutation(selection, val, group_ids, row_loss_fn, CONFIRM_REPEATS, seed).t[chosen]
    weakest = int(np.argmin(t))
    return int(chosen[weakest]) if t[weakest] < min_t else None


def confirm(
    selection: Selection,
    path: LambdaPath,
    group_ids: np.ndarray,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    task: str,
    n_outputs: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    min_t: float,
    class_weights: np.ndarray | None = None,
) -> Selection:
    """Drop the weakest unconfirmed group and refit, until every group left passes ``min_t``."""
    row_loss_fn = row_loss_function(task, class_weights)
    while (weakest := weakest_unconfirmed(selection, val, group_ids, row_loss_fn, min_t, seed)) is not None:
        kept = selection.group_mask.copy()
        kept[weakest] = False
        selection = refit(
            path, selection.step_index, selection.rule, group_ids, train, val, task, n_outputs,
            model_config, train_config, seed, class_weights, group_mask=kept,
        )
    return selection
