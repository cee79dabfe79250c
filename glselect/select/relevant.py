"""``--goal all-relevant``: every group that carries signal, redundant copies included (Boruta's question).

The penalised path, the rule and confirmation answer the minimal question: of two columns that
carry the same information they keep one, because the second adds nothing once the first is in.
All-relevant asks the minimal question again without what it has found: the groups found so far
are taken out of the table, the path is walked on the groups left, its step is chosen by the same
rule on the validation rows and confirmed by the same permutation test, and the groups that pass
are added. Rounds go on until one finds nothing (at most ``MAX_ROUNDS``). A copy of a found
column (make_classification's redundant columns are linear combinations of its informative
ones) carries the signal once the original is gone, so a later round finds it; a noise column
never predicts, so it must pass the confirmation test by chance in some round to get in.

An earlier version tested each group's shuffling on the dense network (lambda = 0). It added
nothing on make_classification: the dense network spread too little weight on the redundant
columns for them to stand out from noise (their t statistics 2.6 to 3.2 against a noise
column's 3.4, with 3.5 to clear; docs/method.md).

Every round is a full path fit on fewer columns, from the same seed, on the same rows as the fit
(in memory, streamed, on every torchrun rank alike), so the set is reproducible; it costs a path
fit per round (make_classification: two or three rounds after the fit, 2.5 to 3.5x the minimal fit's time).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.path.problem import Problem
from glselect.path.walk import fit_path
from glselect.select.choose import choose_step
from glselect.select.confirm import confirm, confirmation_folds
from glselect.select.refit import refit

MAX_ROUNDS = 10  # rounds after the minimal selection; each finds at least one new group or ends the search
ROUND_CONFIRM = 3.0  # the confirmation threshold of a round when --confirm is 0: without one a round keeps a noise step


def all_relevant(
    problem: Problem, minimal: np.ndarray, config: SelectionConfig, on_round: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ``minimal`` set (bool (n_groups,), already chosen and confirmed) and every group later
    rounds of minimal selection find without it (see the module docstring).

    Returns the union and, per round, the groups it added (bool (n_groups,)); the last round, which
    found nothing, is not listed. ``on_round(k)`` is called as round k (1-based) starts.
    """
    found = minimal.copy()
    added: list[np.ndarray] = []
    min_t = config.confirm if config.confirm > 0 else ROUND_CONFIRM
    n_folds = confirmation_folds(config.cv, len(problem.val))  # cross-fitted as the fit's own confirmation
    if not found.any():
        return found, added  # the first round would repeat the fit that found nothing
    for round_number in range(1, MAX_ROUNDS + 1):
        left = ~found[problem.group_ids]
        if not left.any():
            break
        if on_round is not None:
            on_round(round_number)
        rest = problem.restrict(left)
        path = fit_path(rest)
        step_index, rule = choose_step(path, config)
        selection = confirm(rest, path, refit(rest, path, step_index, rule), min_t, n_folds)
        new = selection.group_mask & ~found
        if not new.any():
            break
        added.append(new)
        found |= new
    return found, added


def check_goal_options(config: SelectionConfig) -> None:
    """``--goal all-relevant`` answers another question than the options that pick a set of their own.

    Checked when a fit starts, as ``check_fdr_options`` is, so each option alone still makes a config.
    """
    if config.goal != "all-relevant":
        return
    if config.fdr is not None:
        raise GlselectError(
            "--goal all-relevant and --fdr ask different questions: knockoffs test each group given all the others, "
            "so a redundant copy is never selected; give one of them"
        )
    if config.max_features is not None:
        raise GlselectError("--goal all-relevant and --max-features both choose the selected set: give one of them")
