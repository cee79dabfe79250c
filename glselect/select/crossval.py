"""K-fold cross-validation of the path: every fold walks the full path's lambdas, and each lambda
is scored by the mean over folds of its relaxed held-out loss.

Each fold fits its own path (its own dense start, its own supports) on the other folds' rows, so
the score of a lambda includes the variability of which columns that lambda selects: a lambda
whose support is padded with chance correlations on the full data pays for it on held-out folds.
The chosen lambda's support is then read off the full path, as glmnet's ``cv.glmnet`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glselect.data.split import cv_fold
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath, fit_path
from glselect.select.base import Fit, Part
from glselect.select.choose import StepScores, stack_row_losses

# --cv auto: below this many validation rows, the path is scored by AUTO_FOLDS-fold cross-validation.
# A paired loss difference's standard error shrinks as 1/sqrt(rows): with 250 rows one validation
# split resolves a difference of about 0.13 standard deviations of the per-row difference, so a
# weak column is lost to the split's noise; five folds score every model row (5x the rows, at 5x
# the path's cost, which is small on a table this size). 250 validation rows is a 1,250-row table
# at the default --val-fraction 0.2.
AUTO_CV_BELOW_ROWS = 250
AUTO_FOLDS = 5


def folds_for(setting: int | str, n_validation_rows: int) -> int:
    """The number of folds ``--cv`` asks for on a table with this many validation rows (0: none)."""
    if setting == "auto":
        return AUTO_FOLDS if n_validation_rows < AUTO_CV_BELOW_ROWS else 0
    return int(setting)


@dataclass(frozen=True)
class CrossValidation:
    """``fold_losses`` and ``fold_sizes`` have shape (n_folds, n_steps of the full path)."""

    n_folds: int
    fold_losses: np.ndarray  # relaxed held-out loss of each fold at each of the full path's lambdas (NaN: not scored)
    fold_sizes: np.ndarray  # groups non-zero in each fold's model at each lambda
    # (n_steps, n model rows): each row's relaxed loss while its fold was held out, the folds one
    # after another (NaN: not scored); None when the folds kept no per-row losses
    row_losses: np.ndarray | None = None

    def scores(self) -> StepScores:
        """Mean loss over folds; its standard error is the folds' spread over sqrt(K).

        Every model row is held out once, so the paired 1se rule compares two steps on all of them.
        """
        loss = self.fold_losses.mean(axis=0)
        se = self.fold_losses.std(axis=0, ddof=1) / math.sqrt(self.n_folds)
        return StepScores(loss=loss, se=se, source=f"cv{self.n_folds}", rows=self.row_losses)


def cross_validate(problem: Problem, path: LambdaPath, n_folds: int, on_fold: Callable[[int], None] | None = None) -> CrossValidation:
    """Score every scored step of ``path`` by K-fold cross-validation on the model rows.

    The folds partition every row but the test rows by a hash of the row's position
    (``split.cv_fold``), so the same folds come out of a table in memory and a stream.

    Parameters
    ----------
    path
        The full path; its lambdas are the grid, and only its steps that carry a relaxed score
        are scored again in the folds (the others stay NaN and are never chosen).
    on_fold
        Called with the fold number (0-based) as each fold starts.
    """
    grid = [step.lam for step in path.steps[1:]]
    scored = [bool(np.isfinite(step.relaxed_val_loss)) for step in path.steps]
    fold_losses = np.full((n_folds, len(path.steps)), np.nan)
    fold_sizes = np.zeros((n_folds, len(path.steps)), dtype=np.int64)
    fold_rows: list[np.ndarray | None] = []
    for k in range(n_folds):
        if on_fold is not None:
            on_fold(k)
        fold = problem.on_rows(*cv_fold(k, n_folds), seed=problem.seed + 1 + k)  # each fold's own start, reproducible
        fold_path = fit_path(fold, grid=grid, score_step=lambda i: scored[i])
        fold_losses[k] = [step.relaxed_val_loss if scored[i] else np.nan for i, step in enumerate(fold_path.steps)]
        fold_sizes[k] = [step.n_selected for step in fold_path.steps]
        fold_rows.append(stack_row_losses([step.relaxed_val_rows if scored[i] else None for i, step in enumerate(fold_path.steps)]))
    complete = [rows for rows in fold_rows if rows is not None]
    row_losses = np.concatenate(complete, axis=1) if len(complete) == n_folds else None
    return CrossValidation(n_folds=n_folds, fold_losses=fold_losses, fold_sizes=fold_sizes, row_losses=row_losses)


class CrossValidate:
    """``--cv``: the path's steps scored by K-fold cross-validation (none when ``--cv auto`` finds
    enough validation rows: the chooser then reads the validation rows' scores)."""

    name = "cross-validation"
    kind = "score"

    def score(self, fit: Fit) -> tuple[StepScores | None, Part]:
        n_folds = folds_for(fit.config.selection.cv, len(fit.problem.val))
        if not n_folds:
            return None, Part(self.name)
        cross_validation = cross_validate(fit.problem, fit.path, n_folds, on_fold=fit.progress.counter("cv fold", n_folds))
        return cross_validation.scores(), Part(self.name, result=cross_validation)
