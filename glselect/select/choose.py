"""Pick one step of the path by a named rule; ``Selection`` is what the selection stages produce."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.path.walk import LambdaPath
from glselect.solve.train import TrainResult
from glselect.text import plural


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
    confirmed_by: str | None = None  # "validation" or "cross-fit<K>" once confirmed (select/confirm.py)


@dataclass(frozen=True)
class StepScores:
    """A loss per path step to choose by (NaN: not scored) and its standard error.

    From the validation rows (``validation_scores``), or the mean over cross-validation folds.
    ``rows`` (float, (n_steps, n_rows), NaN where a step is not scored) holds every scored row's
    loss at every step, the same rows in the same order for each step, so that two steps can be
    compared row by row; None: not kept (the unpaired ``se`` is used instead).
    """

    loss: np.ndarray
    se: np.ndarray
    source: str  # "validation" or "cv<K>"
    rows: np.ndarray | None = None

    def paired_se(self, best: int) -> np.ndarray:
        """Per step, the standard error of its mean per-row loss difference to step ``best``.

        The rows that are hard for one support are hard for every support, so the difference
        of two steps' losses varies far less than either loss: this is the yardstick for "as
        good as the best", where each loss's own standard error (``se``) is far too lenient.
        Steps without per-row losses fall back to ``se[best]``.
        """
        fallback = np.full(self.loss.shape, np.nan_to_num(self.se[best]))
        if self.rows is None or not np.isfinite(self.rows[best]).all():
            return fallback
        differences = self.rows - self.rows[best]
        n_rows = differences.shape[1]
        if n_rows < 2:
            return fallback
        with np.errstate(invalid="ignore"):
            se = differences.std(axis=1, ddof=1) / np.sqrt(n_rows)
        return np.where(np.isfinite(se), se, fallback)


def validation_scores(path: LambdaPath) -> StepScores:
    """The path's own relaxed validation losses, their standard errors and per-row losses over validation rows."""
    return StepScores(
        loss=np.array([step.relaxed_val_loss for step in path.steps]),
        se=np.array([step.relaxed_val_se for step in path.steps]),
        source="validation",
        rows=stack_row_losses([step.relaxed_val_rows for step in path.steps]),
    )


def stack_row_losses(rows: list[np.ndarray | None]) -> np.ndarray | None:
    """(n_steps, n_rows) float64 with NaN for unscored steps; None when no step kept per-row losses."""
    width = max((r.size for r in rows if r is not None), default=0)
    if width == 0:
        return None
    stacked = np.full((len(rows), width), np.nan)
    for index, r in enumerate(rows):
        if r is not None and r.size == width:
            stacked[index] = r
    return stacked


def choose_step(path: LambdaPath, config: SelectionConfig, scores: StepScores | None = None) -> tuple[int, str]:
    """Index of the chosen step and the rule that chose it.

    - ``max_features=K``: the least-penalised step with at most K groups (the K groups that
      survive longest, when groups leave one at a time).
    - ``min``: the lowest relaxed loss.
    - ``1se``: the sparsest (largest-lambda) step whose relaxed loss is within one standard
      error of the lowest, the standard error being that of the paired per-row difference
      between the step and the best step (``StepScores.paired_se``). So the empty model is
      chosen only when no step beats it by more than one paired standard error.

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
    within = losses - losses[best] <= scores.paired_se(best)
    return int(np.flatnonzero(within).max()), "1se"
