"""Pick one step of the path by a named rule; ``Selection`` is what the selection stages produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.path.walk import LambdaPath
from glselect.text import plural
from glselect.solve.train import TrainResult


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
                f"no step of the path has at most {plural(config.max_features, 'group')} "
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
