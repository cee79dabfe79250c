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

``--goal auto`` (the default) asks the rounds only where they can find something a first-order
test can see: before each round every column left out gets a t statistic of its association with
the target (``marginal_t``, read once), and the rounds stop when no column left out passes a Bonferroni
bound. A redundant copy of a selected column carries the original's first-order signal, so it
passes; pure noise does not, so a table whose minimal set leaves only noise out (Friedman,
XOR among noise) pays for one screen of the rows instead of a path fit. What the gate cannot see
is a left-out group with no first-order signal at all (a copy of one column of an interacting
pair): ``--goal all-relevant`` walks the rounds without the gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from glselect import distributed
from glselect.config import SelectionConfig
from glselect.path.moments import MAX_SAMPLE_ROWS, MIN_SAMPLE_ROWS, bonferroni_bound, column_chunks, sample_means, squared_t
from glselect.path.problem import Problem
from glselect.path.start import screen_sample
from glselect.path.walk import fit_path
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection, choose_step
from glselect.select.confirm import confirm, confirmation_folds
from glselect.select.knockoffs import sparsest_step_with
from glselect.select.refit import refit

MAX_ROUNDS = 10  # rounds after the minimal selection; each finds at least one new group or ends the search
ROUND_CONFIRM = 3.0  # the confirmation threshold of a round when --confirm is 0: without one a round keeps a noise step
SAMPLE_FLOATS = 1 << 24  # the gate's sample of training rows holds at most this many encoded cells (64 MB)
# fewer sampled rows than MIN_SAMPLE_ROWS (above some 168,000 columns): no gate, the rounds run
BLOCK_CELLS = 1 << 22  # the statistic centres this many cells at a time in float64 (32 MB)


def all_relevant(
    problem: Problem,
    minimal: np.ndarray,
    config: SelectionConfig,
    on_round: Callable[[int], None] | None = None,
    gated: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ``minimal`` set (bool (n_groups,), already chosen and confirmed) and every group later
    rounds of minimal selection find without it (see the module docstring).

    ``gated`` (``--goal auto``): a round runs only while some column left out has first-order
    signal (``has_marginal_signal``). Returns the union and, per round, the groups it added (bool
    (n_groups,)); a round that found nothing is not listed. ``on_round(k)`` is called as round k
    (1-based) starts.
    """
    found = minimal.copy()
    added: list[np.ndarray] = []
    min_t = config.confirm if config.confirm > 0 else ROUND_CONFIRM
    n_folds = confirmation_folds(config.cv, len(problem.val))  # cross-fitted as the fit's own confirmation
    if not found.any():
        return found, added  # the first round would repeat the fit that found nothing
    # per encoded column of ``problem``: its statistic, read once on the columns the first round
    # leaves (a column's statistic does not depend on the others; later rounds leave fewer)
    column_t: np.ndarray | None = None
    for round_number in range(1, MAX_ROUNDS + 1):
        left = ~found[problem.group_ids]
        if not left.any():
            break
        rest = problem.restrict(left)
        if gated:
            if round_number == 1:
                column_t = _scattered(marginal_t(rest), left)
            if not has_marginal_signal(column_t, left):
                break
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


def marginal_t(problem: Problem) -> np.ndarray | None:
    """``first_order_t`` of ``problem``'s columns against its target's outputs, on a sample of the
    training rows (``path.start.screen_sample``; every rank sums its share); None when the table is
    too wide for the sample to hold ``MIN_SAMPLE_ROWS`` rows (the same on every rank)."""
    wanted = min(MAX_SAMPLE_ROWS, SAMPLE_FLOATS // max(problem.n_features, 1))
    if wanted < MIN_SAMPLE_ROWS:
        return None
    X, y = screen_sample(problem, wanted)
    return first_order_t(X, problem.datafit.target_outputs(y), problem.data.context)


def _scattered(t: np.ndarray | None, columns: np.ndarray) -> np.ndarray | None:
    """``t`` (rows: the columns where ``columns`` is true) placed among all of ``columns``' rows."""
    if t is None:
        return None
    full = np.zeros((columns.size, t.shape[1]))
    full[columns] = t
    return full


def has_marginal_signal(column_t: np.ndarray | None, left: np.ndarray) -> bool:
    """Whether a column where ``left`` is true has first-order association with the target beyond
    chance: its statistic (``marginal_t``, per column and output) against a Bonferroni bound at
    family-wise ``moments.FAMILY_ALPHA`` over the columns left and the outputs. No statistic (a table too
    wide to sample): every round runs."""
    if column_t is None:
        return True
    t = column_t[left]
    bound = bonferroni_bound(max(t.size, 1))
    return bool((t > bound).any())


def first_order_t(X: torch.Tensor, R: torch.Tensor, context: distributed.Context) -> np.ndarray:
    """|t| of ``mean(r * x)`` (both centred) per column of ``X`` (rows) and column of ``R``:
    float64 (columns, outputs), summed over every rank's rows. A product with no spread (a
    constant column) counts as 0."""
    chunks = column_chunks(X.shape[1], len(X), BLOCK_CELLS)
    n_rows, means, output_means = sample_means(X, R, chunks, context)
    if n_rows < 2:
        return np.zeros((X.shape[1], R.shape[1]))
    R = R - output_means
    sum_blocks, square_sum_blocks = [], []
    for chunk in chunks:
        block = X[:, chunk].double() - means[chunk]
        sum_blocks.append(block.T @ R)
        square_sum_blocks.append((block * block).T @ (R * R))
    both = distributed.all_reduce_sum(torch.cat([torch.cat(sum_blocks), torch.cat(square_sum_blocks)]).cpu(), context)
    sums, square_sums = both[: X.shape[1]], both[X.shape[1] :]
    return squared_t(sums, square_sums, n_rows).sqrt().numpy()


def found_in_round(rounds: list[np.ndarray], n_groups: int) -> np.ndarray:
    """Per group: 0 for the minimal selection (and for unselected groups, which the ranking puts
    after every selected one anyway), k for a group the k-th round added."""
    found = np.zeros(n_groups, dtype=np.int64)
    for round_number, added in enumerate(rounds, start=1):
        found[added] = round_number
    return found


class AllRelevant:
    """``--goal all-relevant`` (and ``auto``, gated): the minimal selection and what later rounds find without it.

    The groups a round added rank after the minimal selection, round by round, so that the top
    ranks stay a set that is enough and a copy found later follows what it copies.
    """

    name = "all-relevant"
    kind = "refine"

    def refine(self, fit: Fit, selection: Selection) -> tuple[Selection, Part]:
        config, problem, path = fit.config.selection, fit.problem, fit.path
        confirmed_by = selection.confirmed_by  # later rounds confirm the same way
        relevant, rounds = all_relevant(
            problem,
            selection.group_mask,
            config,
            on_round=lambda k: fit.progress.announce(f"all-relevant round {k}"),
            gated=config.goal == "auto",
        )
        if rounds:  # else the minimal selection stands as it is, refit and confirmed
            left_out = selection.unconfirmed & ~relevant  # confirmation's drops no round took back
            selection = refit(problem, path, sparsest_step_with(path, relevant), selection.rule, group_mask=relevant)
            selection = dataclasses.replace(selection, unconfirmed=left_out, confirmed_by=confirmed_by)
        if rounds or config.goal == "all-relevant":
            selection = dataclasses.replace(selection, rule=f"{selection.rule}, all-relevant")
        names = fit.group_names
        return selection, Part(
            self.name,
            summary={"all_relevant_rounds": [[names[g] for g in np.flatnonzero(added)] for added in rounds]},
            rank_key=found_in_round(rounds, problem.n_groups),
        )
