"""``--goal auto``: the smallest set of groups that predicts as well as all of them.

This is the question a user brings: which few columns do the work of the whole table? The rule's
step and the confirmation test answer a different one (which groups each carry signal the noise
cannot hide), and on correlated tables that answer keeps too many columns or, by dropping groups
one standard error at a time, too few.

Every candidate set is refitted and scored on held-out rows, row by row, against a reference: the
best model seen with more columns (the dense network, or a larger set the search fitted when one
beats it; ``Reference``). A set is *as good as all columns* when its mean per-row loss is not
worse than the reference's by more than ``NOISE_SE`` standard errors of the paired per-row
difference, or by a negligible share of what all columns gain over none (``NEGLIGIBLE_SHARE``).
The rows that are hard for one model are hard for both, so the difference varies far less than
either loss, and this is the noise of that one comparison. Where the validation rows are few
(``confirm.confirmation_folds``, from ``SEARCH_CROSS_FIT_FROM_ROWS`` of them up) every set is
fitted on each of K folds of the model rows and scored on the fold it did not see, so all model
rows decide, not one small split; the dense reference is then a refit of every group on each fold.

1. Start from the rule's step, chosen among the penalised steps only: the dense step's score is
   its own fit's, which the relaxed scores of sparser steps are not comparable with. If that step
   is not as good as all columns, bisect the denser scored steps for the sparsest one that is.
2. Backward elimination: drop the groups whose shuffling raises the held-out loss least (every
   one under ``WEAK_T`` together, else the weakest alone; a block that fails is halved) and refit
   the rest, warm-started from the larger set's networks for one group (``HeldOut.fit``), fresh
   for a block, and keep the drop while the set stays as good as all columns. The search ends
   when dropping the weakest group alone does not.
   Where the larger set's networks stopped at their budget rather than on their validation loss
   (a stream's short runs), the larger set is first continued as far, so that the extra training
   a warm refit gets does not pass for the dropped group's worth.
3. The set found is refitted fresh on the training rows: that refit is the saved model.

If no set the search tries is as good (not even the densest scored step), the answer is the set it
started from, and the summary says so (``as_good`` false).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glselect.config import SelectionConfig
from glselect.data.source import Rows
from glselect.path.problem import Problem
from glselect.path.walk import LambdaPath
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection, StepScores, choose_step, validation_scores
from glselect.select.confirm import FoldRefits, confirmation_folds, cross_fit_folds, t_cross_fitted, t_on_validation
from glselect.select.refit import refit, scored_by

# A set is as good as all columns while its mean per-row held-out loss exceeds the reference's by
# at most this many standard errors of the paired difference. Half of one: the search compares
# many sets on the same rows and keeps the smallest that passes, so each look must be stricter
# than glmnet's one standard error (with one, breast_cancer kept 2 or 3 of 30 columns and lost 4 to
# 5 points of test accuracy; benchmarks/default_answer.py).
NOISE_SE = 0.5
# ... or by at most this share of what all columns gain over none (the empty model's loss minus the
# reference's): one point of R^2 for squared error. Two fits of sets that carry the same information
# differ by more than the rows' noise (an exact copy of a column speeds its training, and the refits
# stop early), so a paired test alone would keep a copy for a difference no user could see.
NEGLIGIBLE_SHARE = 0.01
# The elimination first tries dropping every group whose shuffling raises the held-out loss by less
# than this many standard errors, together: one refit where one group at a time took one each (77
# columns to 28 on mice_protein took 49). When the block together carried something (copies of one
# signal each look weak while the other is in), its weaker half is tried, down to one group.
WEAK_T = 1.0
# Sets are compared across K folds of the model rows from this many validation rows up (a table of
# about 25 rows), where confirmation's test waits for 20 (``confirm.CROSS_FIT_FROM_ROWS``): a fold's
# refit stops early on few rows, but a comparison of sets on 10 validation rows decides nothing.
# glioma (50 rows, 10 validation rows), ten seeds: on the validation rows alone the search took the
# empty model once (4 of 16 test rows lost); across folds of the 40 model rows it kept 1 to 8
# columns. warpar10p (130 rows) with 19 validation rows on one seed: no set passed on them and the
# answer kept 452 columns; across folds, 43 (``benchmarks/default_answer.py``).
SEARCH_CROSS_FIT_FROM_ROWS = 5


@dataclass(frozen=True)
class Comparison:
    """A set's held-out loss against a reference model's, on the same rows."""

    difference: float  # mean per-row loss of the set minus the reference's
    se: float  # standard error of that mean difference (over rows)
    negligible: float = 0.0  # a difference this small counts as none (``NEGLIGIBLE_SHARE``)

    @property
    def as_good(self) -> bool:
        return bool(self.difference <= max(NOISE_SE * self.se, self.negligible))

    def as_dict(self) -> dict[str, float]:
        return {"loss_difference": self.difference, "standard_error": self.se, "negligible": self.negligible}


def compare(rows: np.ndarray, reference_rows: np.ndarray, negligible: float = 0.0) -> Comparison:
    """The paired comparison of per-row losses ``rows`` against ``reference_rows`` (the same rows, in order)."""
    difference = rows.astype(np.float64) - reference_rows.astype(np.float64)
    if difference.size == 0:
        return Comparison(0.0, 0.0, negligible)
    se = float(difference.std(ddof=1) / math.sqrt(difference.size)) if difference.size > 1 else 0.0
    return Comparison(float(difference.mean()), se, negligible)


@torch.no_grad()
def selection_row_losses(selection: Selection, rows: Rows, row_loss: Callable[..., torch.Tensor]) -> np.ndarray:
    """Each of ``rows``' loss (float64) under ``selection``'s refit, which reads only its own columns."""
    columns = torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=rows.X.device)
    return row_loss(selection.model(rows.X[:, columns]), rows.y).double().cpu().numpy()


@dataclass(frozen=True)
class Candidate:
    """A set of groups, its refit (one, or one per fold) and each held-out row's loss under it."""

    group_mask: np.ndarray
    fits: tuple[Selection, ...]
    row_losses: np.ndarray


class HeldOut:
    """Fits sets of groups and scores them on held-out rows: the validation rows, or K folds."""

    def __init__(self, problem: Problem, path: LambdaPath, rule: str, n_folds: int) -> None:
        self.problem, self.path, self.rule = problem, path, rule
        folds = cross_fit_folds(problem, n_folds) if n_folds else []
        if any(len(fold.val) == 0 or len(tested) == 0 for fold, tested in folds):
            folds = []  # too few rows for K folds: some fold has no row to stop on or to test
        self.folds = folds
        self.source = f"cross-fit{len(folds)}" if folds else "validation"
        # the path scored its steps by the row loss; where sets are compared by another (classes:
        # the Brier score), the dense and empty models' rows are scored again
        self.by_row_loss = problem.datafit.compares_by_row_loss

    def fit(self, step: int, group_mask: np.ndarray, warm_from: Candidate | None = None) -> Candidate:
        """Refit ``group_mask`` (groups of path step ``step``) on every fold, or once on the training
        rows: fresh, or from ``warm_from``'s networks (whose columns include these).

        A drop is refitted warm: two fresh fits of nearly the same columns differ by more than the
        rows' noise on a small table (their random starts, their early stops), and that difference
        would decide; a warm refit moves from the larger set's network only as far as the dropped
        columns require."""
        fits, losses = [], []
        for k, (problem, rows) in enumerate(self.folds or [(self.problem, self.problem.val)]):
            warm = warm_from.fits[k] if warm_from is not None else None
            fitted = refit(problem, self.path, step, self.rule, group_mask=group_mask, warm_from=warm)
            fits.append(fitted)
            losses.append(self._losses(fitted, problem, rows))
        return Candidate(group_mask, tuple(fits), np.concatenate(losses))

    def empty_loss(self) -> float:
        """The mean held-out loss of no columns at all (the training rows' mean, or class shares)."""
        last = self.path.steps[-1]
        if self.by_row_loss and last.n_selected == 0 and math.isfinite(last.relaxed_val_loss):
            return float(last.relaxed_val_loss)
        empty = np.zeros(self.problem.n_groups, dtype=bool)
        return float(self._losses(refit(self.problem, self.path, 0, self.rule, group_mask=empty), self.problem, self.problem.val).mean())

    def dense_rows(self) -> np.ndarray:
        """The dense model's per-row held-out losses, in the rows' order of ``fit``'s candidates."""
        if not self.folds:
            rows = self.path.steps[0].relaxed_val_rows
            if rows is not None and self.by_row_loss:
                return rows.astype(np.float64)
            return self._losses(refit(self.problem, self.path, 0, self.rule), self.problem, self.problem.val)
        return self.fit(0, self.path.steps[0].group_norms > 0).row_losses

    def t(self, candidate: Candidate) -> np.ndarray:
        """Per group: how many standard errors shuffling it raises the held-out loss (0 for groups out)."""
        if not self.folds:
            return t_on_validation(candidate.fits[0], self.problem)
        return t_cross_fitted(FoldRefits(candidate.group_mask, tuple((f, t, s) for (f, t), s in zip(self.folds, candidate.fits))))

    def _losses(self, fitted: Selection, problem: Problem, rows: Rows) -> np.ndarray:
        return selection_row_losses(fitted, rows, problem.datafit.comparison_row_loss)


def penalised_scores(scores: StepScores) -> StepScores:
    """``scores`` without the dense step's: the rule then chooses among the penalised steps."""
    loss = scores.loss.copy()
    loss[0] = np.nan
    return dataclasses.replace(scores, loss=loss)


def scored_supports(path: LambdaPath, scores: StepScores, denser_than: int) -> list[int]:
    """Steps denser than step ``denser_than`` with a score, one per support size, sparsest first."""
    by_size: dict[int, int] = {}
    for index in range(denser_than - 1, 0, -1):
        if np.isfinite(scores.loss[index]):
            by_size.setdefault(path.steps[index].n_selected, index)
    return [by_size[size] for size in sorted(by_size) if size > path.steps[denser_than].n_selected]


class Reference:
    """The model a set is compared with: the best seen with more columns.

    It starts as the dense network; a set the search fits that beats it on the held-out rows
    takes its place. A dense network can be a poor yardstick (on a small table its held-out loss
    is dominated by a few confident mistakes, on a stream it trains short), and against a poor
    one any set looks as good.
    """

    def __init__(self, row_losses: np.ndarray, n_groups: int, empty_loss: float) -> None:
        self.row_losses, self.n_groups, self.empty_loss = row_losses, n_groups, empty_loss

    def compare(self, candidate: Candidate) -> Comparison:
        """``candidate`` against the reference, which it replaces when it is better."""
        if float(candidate.row_losses.mean()) < float(self.row_losses.mean()):
            self.row_losses, self.n_groups = candidate.row_losses, int(candidate.group_mask.sum())
        negligible = NEGLIGIBLE_SHARE * max(self.empty_loss - float(self.row_losses.mean()), 0.0)
        return compare(candidate.row_losses, self.row_losses, negligible)


@dataclass(frozen=True)
class Smallest:
    """What the search found: the set, its comparison with all columns, and what it tried."""

    candidate: Candidate
    step: int
    comparison: Comparison
    drops: tuple[int, ...]  # groups dropped by the elimination, in order
    source: str
    reference_groups: int  # groups in the model compared with: the best seen with more columns
    against_dense: Comparison  # the set against the dense network itself, for the record
    dense_groups: int


def smallest_as_good(
    problem: Problem,
    path: LambdaPath,
    scores: StepScores,
    config: SelectionConfig,
    n_folds: int,
    on_candidate: Callable[[int], None] | None = None,
) -> Smallest:
    """The smallest set of groups as good as all of them (see the module docstring)."""
    penalised = penalised_scores(scores)
    start, rule = choose_step(path, config, penalised) if np.isfinite(penalised.loss).any() else (0, config.rule)
    held = HeldOut(problem, path, rule, n_folds)
    dense_rows, dense_groups = held.dense_rows(), int(np.count_nonzero(path.steps[0].group_norms))
    best = Reference(dense_rows, dense_groups, held.empty_loss())
    tried = 0

    def fit(step: int, mask: np.ndarray, warm_from: Candidate | None = None) -> tuple[Candidate, Comparison]:
        nonlocal tried
        tried += 1
        if on_candidate is not None:
            on_candidate(tried)
        candidate = held.fit(step, mask, warm_from)
        return candidate, best.compare(candidate)

    step = start
    current, comparison = fit(step, path.steps[step].group_norms > 0)
    if not comparison.as_good:
        step, current, comparison = _denser_as_good(path, scores, start, fit) or (step, current, comparison)
    drops: list[int] = []
    while current.group_mask.any():
        t = held.t(current)
        chosen = np.flatnonzero(current.group_mask)
        weakest_first = chosen[np.argsort(t[chosen], kind="stable")]
        if not all(selection.refit.stopped_early for selection in current.fits):
            # the set's networks stopped at their budget, not on their validation loss: a warm refit
            # of fewer columns would get that much more training than they had, and look better for
            # it; the set continued as far is the fair yardstick (it joins the reference if better)
            fit(step, current.group_mask, current)
        block = max(int(np.count_nonzero(t[chosen] < WEAK_T)), 1)
        while True:
            kept = current.group_mask.copy()
            kept[weakest_first[:block]] = False
            # one group is refitted warm (see HeldOut.fit); a block fresh: the saved model is a
            # fresh refit, and a warm refit that drops many columns at once keeps more of the
            # larger set's training than a fresh one of the smaller set has (yale32, 165 x 1,024,
            # 15 classes: a warm block of 48 passed, and the fresh refit of the 25 left lost 7 of
            # 27 test rows)
            smaller, smaller_comparison = fit(step, kept, current if block == 1 else None)
            if smaller_comparison.as_good or block == 1:
                break
            block //= 2  # the block together carried something: try its weaker half
        if not smaller_comparison.as_good:
            break
        current, comparison = smaller, smaller_comparison
        drops.extend(int(group) for group in weakest_first[:block])
    against_dense = compare(current.row_losses, dense_rows)
    return Smallest(current, step, comparison, tuple(drops), held.source, best.n_groups, against_dense, dense_groups)


def _denser_as_good(
    path: LambdaPath, scores: StepScores, start: int, fit: Callable[..., tuple[Candidate, Comparison]]
) -> tuple[int, Candidate, Comparison] | None:
    """Bisect the scored steps denser than ``start`` for the sparsest whose refit is as good as all
    columns (more groups, better held-out loss: close enough to monotone for a search); None: none is."""
    steps = scored_supports(path, scores, start)
    found: tuple[int, Candidate, Comparison] | None = None
    low, high = 0, len(steps) - 1
    while low <= high:
        middle = (low + high) // 2
        candidate, comparison = fit(steps[middle], path.steps[steps[middle]].group_norms > 0)
        if comparison.as_good:
            found, high = (steps[middle], candidate, comparison), middle - 1
        else:
            low = middle + 1
    return found


class SmallestAsGood:
    """``--goal auto``: the smallest set of groups whose held-out loss is as good as all columns'."""

    name = "smallest"
    kind = "choose"

    def choose(self, fit: Fit, scores: StepScores | None) -> tuple[Selection, Part]:
        config = fit.config.selection
        scores = scores or validation_scores(fit.path)
        n_folds = confirmation_folds(config.cv, len(fit.problem.val), from_rows=SEARCH_CROSS_FIT_FROM_ROWS)
        found = smallest_as_good(
            fit.problem, fit.path, scores, config, n_folds, on_candidate=lambda k: fit.progress.announce(f"set {k} against all columns")
        )
        fit.progress.announce("refit")
        rule = f"{config.rule}, as good as all columns"
        selection = refit(fit.problem, fit.path, found.step, rule, group_mask=found.candidate.group_mask)
        selection = dataclasses.replace(selection, confirmed_by=found.source)
        names = fit.group_names
        summary = {
            "scored_by": scored_by(fit, scores),
            "as_good_as_all": {
                "noise_se": NOISE_SE,
                "compared_on": found.source,
                "compared_by": "loss" if fit.problem.datafit.compares_by_row_loss else "Brier score",
                "reference_groups": found.reference_groups,
                "against_all": {
                    "groups": found.dense_groups,
                    "loss_difference": found.against_dense.difference,
                    "standard_error": found.against_dense.se,
                },
                **found.comparison.as_dict(),
                "as_good": found.comparison.as_good,
                "dropped": [names[g] for g in found.drops],
            },
        }
        return selection, Part(self.name, summary=summary)


__all__: Sequence[str] = ["NOISE_SE", "Comparison", "SmallestAsGood", "compare", "smallest_as_good"]
