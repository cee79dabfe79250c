"""Complementary-pairs stability selection (Shah & Samworth 2013) over group-lasso paths.

B times, the rows are split at random into two disjoint halves, and a path is fitted on each
half. Each half-path selects the ``q`` groups that survive longest on it. A group's frequency is
the share of the 2B half-paths that selected it; the groups whose frequency reaches the threshold
``pi`` are the stable set. Meinshausen & Bühlmann's bound on the expected number of falsely
selected groups, ``E[V] <= q^2 / ((2 pi - 1) p)`` for p groups, holds for complementary pairs
as well (Shah & Samworth, Theorem 1), under the same assumptions: the noise groups are
exchangeable and each half-path selects them no better than at random.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glselect.data.split import stability_half
from glselect.path.problem import Problem
from glselect.path.walk import fit_path
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection
from glselect.select.importance import survival, survival_order


@dataclass(frozen=True)
class Stability:
    n_pairs: int
    q: int  # groups each half-path selects: the q that survive longest on it
    threshold: float  # pi: the frequency a group needs to be stable
    frequency: np.ndarray  # (n_groups,): share of the 2B half-paths that selected the group

    @property
    def stable(self) -> np.ndarray:
        return self.frequency >= self.threshold

    @property
    def expected_false_bound(self) -> float:
        """Upper bound on the expected number of noise groups in the stable set."""
        p = self.frequency.size
        return self.q**2 / ((2 * self.threshold - 1) * p) if p else 0.0


def top_surviving(path_lams: np.ndarray, last_norms: np.ndarray, q: int) -> np.ndarray:
    """Bool mask of the ``q`` groups that survive longest (ties: larger norm where last alive).

    Groups that were never non-zero (survival 0) are never selected, so fewer than q may come back.
    """
    order = survival_order(path_lams, last_norms)[:q]
    mask = np.zeros(path_lams.size, dtype=bool)
    mask[order[path_lams[order] > 0]] = True
    return mask


def stability_selection(
    problem: Problem, n_pairs: int, q: int, threshold: float, on_subsample: Callable[[int], None] | None = None
) -> Stability:
    """Selection frequencies of each group over ``2 * n_pairs`` half-sample paths of the model rows.

    The halves (and the share of each half that early-stops its dense fit) are drawn by hashes of
    the row positions (``split.stability_half``): the same in memory and streamed.

    Parameters
    ----------
    q
        Groups each half-path selects; its path stops once q or fewer groups remain, which is
        where most of a path's cost would otherwise go.
    on_subsample
        Called with the half-path's number (0-based) as it starts.
    """
    counts = np.zeros(problem.n_groups)
    for b in range(n_pairs):
        for j in range(2):
            if on_subsample is not None:
                on_subsample(2 * b + j)
            half = problem.on_rows(*stability_half(b, j, problem.settings.val_fraction), seed=problem.seed + 1 + 2 * b + j)
            # no relaxed scores: nothing is chosen by loss
            path = fit_path(half.with_path(min_features=q), score_step=lambda i: False)
            counts += top_surviving(*survival(path), q)
    return Stability(n_pairs=n_pairs, q=q, threshold=threshold, frequency=counts / (2 * n_pairs))


class StabilitySelection:
    """``--stability``: each group's selection frequency over complementary-pairs half-samples."""

    name = "stability"
    kind = "measure"
    columns = ("stability",)

    def measure(self, fit: Fit, selection: Selection) -> Part:
        config = fit.config.importance
        stability = stability_selection(
            fit.problem,
            config.stability_pairs,
            config.stability_q or max(1, int(selection.group_mask.sum())),
            config.stability_threshold,
            on_subsample=fit.progress.counter("stability subsample", 2 * config.stability_pairs),
        )
        document = {
            "pairs": stability.n_pairs,
            "q": stability.q,
            "threshold": stability.threshold,
            "stable_groups": [name for name, keep in zip(fit.group_names, stability.stable) if keep],
            "expected_false_bound": stability.expected_false_bound,
        }
        return Part(self.name, group_columns={"stability": stability.frequency}, summary={"stability": document}, result=stability)
