"""Pick one step of the path by a named rule, then refit an unpenalised model on its columns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from glselect.config import ModelConfig, SelectionConfig, TrainConfig
from glselect.errors import GlselectError
from glselect.metrics import loss_function
from glselect.model import GroupLassoMLP, prune_dead_neurons
from glselect.path import LambdaPath
from glselect.training import TrainResult, train_on_columns


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


def choose_step(path: LambdaPath, config: SelectionConfig) -> tuple[int, str]:
    """Index of the chosen step and the rule that chose it.

    - ``max_features=K``: the least-penalised step with at most K groups (the K groups that
      survive longest, when groups leave one at a time).
    - ``min``: the lowest relaxed validation loss.
    - ``1se``: the sparsest (largest-lambda) step whose relaxed validation loss is within one
      standard error of the lowest.

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
    losses = np.array([step.relaxed_val_loss for step in steps])
    losses = np.where(np.isfinite(losses), losses, np.inf)  # unscored (NaN) or diverged steps are never chosen
    # ties go to the sparser step: later on the path
    best = int(len(losses) - 1 - np.argmin(losses[::-1]))
    if config.rule == "min":
        return best, "min"
    threshold = losses[best] + np.nan_to_num(steps[best].relaxed_val_se)
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
) -> Selection:
    """Train a fresh unpenalised network on the chosen step's columns, early-stopped on validation rows.

    This refit, not the penalised step, is the pruned model: the penalty's shrinkage is gone and
    the model is built on purpose from the chosen columns (the last, emptiest step is never saved).
    """
    step = path.steps[step_index]
    group_mask = step.group_norms > 0
    feature_mask = group_mask[group_ids]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # a model with no inputs (nothing selected) is an intercept; torch warns about the empty weight
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        model = GroupLassoMLP(int(feature_mask.sum()), model_config.hidden, n_outputs).to(device=train[0].device, dtype=train[0].dtype)
    loss_fn = loss_function(task)
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
    )
