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

Why rounds of the path and not a shuffling test of each group on the dense network (lambda = 0):
the dense network spreads too little weight on redundant columns for them to stand out from
noise there (docs/method.md).

Every round is a full path fit on fewer columns, from the same seed, on the same rows as the fit
(in memory, streamed, on every torchrun rank alike), so the set is reproducible; it costs a path
fit per round (make_classification: two or three rounds after the fit, 2.5 to 3.5x the minimal fit's time).

The rounds stand beside the stand-ins (``select/standins.py``): a round run without a selected
group also finds the columns that only echo it (a proxy carries some of the original's signal
once the original is gone), so ``AllRelevant`` leaves out every group the stand-ins name a proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from glselect.config import SelectionConfig
from glselect.path.problem import Problem
from glselect.path.walk import fit_path
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection, choose_step
from glselect.select.confirm import confirm, confirmation_folds
from glselect.select.knockoffs import sparsest_step_with
from glselect.select.refit import refit
from glselect.select.standins import OWN_SIGNAL, PROXY, SUBSTITUTE, find_stand_ins

MAX_ROUNDS = 10  # rounds after the minimal selection; each finds at least one new group or ends the search
ROUND_CONFIRM = 3.0  # the confirmation threshold of a round when --confirm is 0: without one a round keeps a noise step


def all_relevant(
    problem: Problem,
    minimal: np.ndarray,
    config: SelectionConfig,
    on_round: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ``minimal`` set (bool (n_groups,), already chosen and confirmed) and every group later
    rounds of minimal selection find without it (see the module docstring).

    Returns the union and, per round, the groups it added (bool (n_groups,)); a round that found
    nothing is not listed. ``on_round(k)`` is called as round k
    (1-based) starts.
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
        rest = problem.restrict(left)
        if on_round is not None:
            on_round(round_number)
        path = fit_path(rest)
        step_index, rule = choose_step(path, config)
        selection = confirm(rest, path, refit(rest, path, step_index, rule), min_t, n_folds)
        new = selection.group_mask & ~found
        if not new.any():
            break
        added.append(new)
        found |= new
    return found, added


def found_in_round(rounds: list[np.ndarray], n_groups: int) -> np.ndarray:
    """Per group: 0 for the minimal selection (and for unselected groups, which the ranking puts
    after every selected one anyway), k for a group the k-th round added."""
    found = np.zeros(n_groups, dtype=np.int64)
    for round_number, added in enumerate(rounds, start=1):
        found[added] = round_number
    return found


class AllRelevant:
    """``--goal all-relevant``: the smallest set as good as all columns, its substitutes, the groups
    with signal of their own (``select/standins.py``), and what later rounds find without it, less
    the proxies: a group that only echoes a selected one is never selected, though a round run
    without the original finds it.

    The core set and the stand-ins it names rank first (round 0), then each round's additions, so
    that the top ranks stay a set that is enough and a copy a round found follows what it copies.
    """

    name = "all-relevant"
    kind = "refine"

    def refine(self, fit: Fit, selection: Selection) -> tuple[Selection, Part]:
        config, problem, path = fit.config.selection, fit.problem, fit.path
        confirmed_by = selection.confirmed_by  # later rounds confirm the same way
        core = selection.group_mask
        stand_ins = find_stand_ins(problem, selection)  # the stand-ins stage's roles, for the same set
        echoes = _mask(stand_ins.of_role(PROXY), problem.n_groups)
        standing_in = _mask(stand_ins.of_role(SUBSTITUTE) + stand_ins.of_role(OWN_SIGNAL), problem.n_groups)
        found, rounds = all_relevant(problem, core, config, on_round=lambda k: fit.progress.announce(f"all-relevant round {k}"))
        rounds = [added & ~echoes & ~standing_in for added in rounds]
        rounds = [added for added in rounds if added.any()]
        relevant = (found & ~echoes) | standing_in | core
        if not np.array_equal(relevant, core):  # else the core set stands as it is, refit
            left_out = selection.unconfirmed & ~relevant
            selection = refit(problem, path, sparsest_step_with(path, relevant), selection.rule, group_mask=relevant)
            selection = dataclasses.replace(selection, unconfirmed=left_out, confirmed_by=confirmed_by)
        selection = dataclasses.replace(selection, rule=f"{selection.rule}, all-relevant")
        # round 0: the core set and the stand-ins it names; then each round's additions
        rank_key = found_in_round(rounds, problem.n_groups)
        names = fit.group_names
        return selection, Part(
            self.name,
            summary={"all_relevant_rounds": [[names[g] for g in np.flatnonzero(added)] for added in rounds]},
            rank_key=rank_key,
        )


def _mask(groups: list[int], n_groups: int) -> np.ndarray:
    mask = np.zeros(n_groups, dtype=bool)
    mask[groups] = True
    return mask
