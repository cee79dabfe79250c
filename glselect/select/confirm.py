"""Confirm the chosen groups by a permutation test of the refit model, by backward elimination.

A path step's support is nested in the path's order, so a noise column with a chance
correlation that outlives a true column with a weak first-order signal (Friedman's symmetric
``(x2 - 0.5)^2``) rides along in every step that has the true one. The refit model shows which
of its inputs it actually relies on: shuffling a noise column leaves its validation loss
unchanged up to noise, shuffling a real one raises it by many standard errors. The weakest group
is dropped and the network refitted until every group left passes.

Where the validation rows are few (under ``AUTO_CV_BELOW_ROWS``, as for ``--cv auto``) or the path
is cross-validated, the test is cross-fitted: each of K folds of the model rows gets its own refit
on the other folds, each row's loss increase is measured while its fold is held out, and the t
statistic pools every model row. A true column's t grows about as the square root of the rows
tested, while each fold's refit never sees the rows it is tested on (not even to stop early), so a
noise column's t stays near zero: on the p >> n benchmark (120 validation rows of 600, three
seeds; ``benchmarks/confirmation.py``) the seven clear true columns scored t 3.2 to 8.5 on the
validation rows and 8.0 to 16.8 cross-fitted, the weak wave 0.5 to 1.4 and 1.1 to 3.7, and noise
columns -1.4 to 2.2 and -2.3 to 1.5. The power has a price for the minimal question: where the
chosen step holds exact copies (r = a + b beside a and b) and the refits lean on all of them, each
passes, where on the validation rows one of them often failed for want of rows.

Under the sparse group lasso (``--l1-ratio``) confirmation still tests groups, each with the
columns the path kept inside it, and not the columns one by one: the columns of a group are
the ones a user declared to belong together (often correlated channels or one-hot levels), so
shuffling one of them while its neighbours stay in measures little, and which columns inside a
group matter is already the within-group penalty's answer; a per-column test would also cost a
refit for every column it drops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from glselect.data.source import Rows
from glselect.data.split import cross_fit_fold
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection
from glselect.select.crossval import AUTO_CV_BELOW_ROWS, folds_for
from glselect.select.permutation import Shuffles, group_permutation, growth_t
from glselect.select.refit import refit

CONFIRM_REPEATS = 10  # shuffles per group: per-row increases averaged over them steady the t statistic
CROSS_FIT_FOLDS = 5  # folds of a cross-fitted test when the path is not cross-validated
FOLD_SEED_OFFSET = 1  # fold k's refits are seeded problem.seed + 1 + k, as the CV folds' paths are
# Below this many validation rows (a table of about 100 rows) a fold would stop its refit early on
# a handful of rows: the test stays on the validation rows.
CROSS_FIT_FROM_ROWS = 20


def confirmation_folds(cv: int | str, n_validation_rows: int, from_rows: int = CROSS_FIT_FROM_ROWS) -> int:
    """Folds the confirmation test is cross-fitted over (0: the validation rows alone).

    ``--cv``'s folds when the path is cross-validated; otherwise ``CROSS_FIT_FOLDS`` when the
    validation rows are fewer than ``AUTO_CV_BELOW_ROWS`` but at least ``CROSS_FIT_FROM_ROWS``.
    Unlike cross-validating the path (a path per fold), this costs a refit of the chosen columns
    per fold and test, so small tables get it whatever ``--cv`` says.
    """
    n_folds = folds_for(cv, n_validation_rows)
    if n_folds:
        return n_folds
    return CROSS_FIT_FOLDS if from_rows <= n_validation_rows < AUTO_CV_BELOW_ROWS else 0


@dataclass(frozen=True)
class FoldRefits:
    """Cross-fitted confirmation's state: the groups still in, and each fold's refit on them."""

    group_mask: np.ndarray
    # per fold: its problem (fitting and early-stopping rows), the rows it is tested on, and its refit
    fits: tuple[tuple[Problem, Rows, Selection], ...]


State = TypeVar("State", Selection, FoldRefits)


def cross_fit_folds(problem: Problem, n_folds: int) -> list[tuple[Problem, Rows]]:
    """Per fold: the problem its refits train on (fitting and early-stopping rows) and the rows it is tested on."""
    folds = []
    for k in range(n_folds):
        fitting, stopping, tested = cross_fit_fold(k, n_folds, problem.settings.val_fraction)
        folds.append((problem.on_rows(fitting, stopping, seed=problem.seed + FOLD_SEED_OFFSET + k), problem.held_out(tested)))
    return folds


def t_on_validation(selection: Selection, problem: Problem) -> np.ndarray:
    """t of every group for the refit model on the validation rows."""
    return group_permutation(selection, problem.val, problem.group_ids, problem.datafit.row_loss, Shuffles(CONFIRM_REPEATS, problem.seed)).t


def t_cross_fitted(state: FoldRefits) -> np.ndarray:
    """t of every group (0 for those out), pooling each model row's increase while its fold was held out."""
    chosen = np.flatnonzero(state.group_mask)
    increases = np.concatenate(
        [  # (chosen groups, model rows): only the groups in, on a wide table
            group_permutation(
                fit, tested, fold.group_ids, fold.datafit.row_loss, Shuffles(CONFIRM_REPEATS, fold.seed, keep_rows=True), chosen
            ).rows
            for fold, tested, fit in state.fits
        ],
        axis=1,
    )
    t = np.zeros(state.group_mask.size)
    t[chosen] = [growth_t(float(row.mean()), row) for row in increases]
    return t


def weakest_unconfirmed(group_mask: np.ndarray, t: np.ndarray, min_t: float) -> int | None:
    """The selected group whose shuffling raises the held-out loss least, if that rise is under
    ``min_t`` standard errors; None when every selected group passes.

    One group at a time (the caller refits without it and asks again): two columns that carry
    the same information each look useless while the other is in, and dropping both at once
    would lose it.
    """
    chosen = np.flatnonzero(group_mask)
    if chosen.size == 0:
        return None
    weakest = int(np.argmin(t[chosen]))
    return int(chosen[weakest]) if t[chosen][weakest] < min_t else None


def _backward_elimination(
    state: State,
    t_of: Callable[[State], np.ndarray],
    refit_on: Callable[[State, np.ndarray, bool], State],
    min_t: float,
    retest_fresh: bool,
) -> State:
    """Drop the weakest group and refit (warm), until every group passes.

    Between tests the networks are refitted from the last ones without the dropped group's columns
    (warm-started, early-stopped as any refit): on a wide table the chosen step can hold dozens of
    groups that fail one after another, and a fresh network for each cost most of the fit. With
    ``retest_fresh``, once every group passes, fresh networks are fitted on them and tested in turn,
    so the result is as when each test had its own fresh refits. ``state`` starts fresh.
    """
    fresh = True
    while True:
        weakest = weakest_unconfirmed(state.group_mask, t_of(state), min_t)
        if weakest is None and (fresh or not retest_fresh):
            return state
        if weakest is None:
            state, fresh = refit_on(state, state.group_mask, False), True
            continue
        kept = state.group_mask.copy()
        kept[weakest] = False
        state, fresh = refit_on(state, kept, True), False


def confirm(problem: Problem, path: LambdaPath, selection: Selection, min_t: float, n_folds: int = 0) -> Selection:
    """Drop the weakest unconfirmed group and refit, until every group left passes ``min_t``.

    ``n_folds`` 0 tests the refit ``selection`` itself on the validation rows; K > 0 cross-fits the
    test over K folds of the model rows (``confirmation_folds``), and the groups that pass are
    refitted once more, fresh, on the training rows: that refit is the saved model. Same input and
    seed, same groups and model: every fold's rows and seed are fixed by the problem's.
    """
    step, rule = selection.step_index, selection.rule
    if not selection.group_mask.any():  # the empty model: nothing to test, and no fold refits to pay for
        return dataclasses.replace(selection, confirmed_by=f"cross-fit{n_folds}" if n_folds else "validation")
    if not n_folds:
        confirmed = _backward_elimination(
            selection,
            lambda s: t_on_validation(s, problem),
            lambda s, mask, warm: refit(problem, path, step, rule, group_mask=mask, warm_from=s if warm else None),
            min_t,
            retest_fresh=True,  # the tested refit is the saved model: it must be a fresh one that passes
        )
        return dataclasses.replace(confirmed, confirmed_by="validation")
    folds = cross_fit_folds(problem, n_folds)
    if any(len(fold.val) == 0 or len(tested) == 0 for fold, tested in folds):
        # --cv K on a table too small for K folds: some fold has no row to stop on or to test
        return confirm(problem, path, selection, min_t)

    def refit_folds(state: FoldRefits, mask: np.ndarray, warm: bool) -> FoldRefits:
        return FoldRefits(
            mask,
            tuple(
                (fold, tested, refit(fold, path, step, rule, group_mask=mask, warm_from=fit if warm else None))
                for fold, tested, fit in state.fits
            ),
        )

    first = FoldRefits(
        selection.group_mask,
        tuple((fold, tested, refit(fold, path, step, rule, group_mask=selection.group_mask)) for fold, tested in folds),
    )
    # the folds' refits are not the saved model: a fresh round after the last drop would cost K
    # refits to retest what the warm-started ones (each on its own fold's rows) already passed
    passed = _backward_elimination(first, t_cross_fitted, refit_folds, min_t, retest_fresh=False).group_mask
    if not np.array_equal(passed, selection.group_mask):
        selection = refit(problem, path, step, rule, group_mask=passed)
    return dataclasses.replace(selection, confirmed_by=f"cross-fit{n_folds}")


class Confirm:
    """``--confirm``: drop the chosen groups the refit model does not rely on (backward elimination)."""

    name = "confirmation"
    kind = "refine"

    def refine(self, fit: Fit, selection: Selection) -> tuple[Selection, Part]:
        config = fit.config.selection
        fit.progress.announce("confirmation")
        n_folds = confirmation_folds(config.cv, len(fit.problem.val))
        return confirm(fit.problem, fit.path, selection, config.confirm, n_folds), Part(self.name)
