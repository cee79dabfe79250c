"""The regularisation path: a dense start, then lambdas growing geometrically until every group is zero.

Consecutive lambdas are warm-started. The step between them adapts so that groups leave one at
a time where possible: if several leave at once the step is undone and halved; while none leave
it grows. The order in which groups leave is the ranking, so ties are worth avoiding; while
many groups remain, a few (``departure_fraction`` of them) may leave together, since resolving
the order within a long tail of noise one group at a time would cost a lambda per group.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP, restrict_inputs, widen_inputs
from glselect.model.penalties import Support
from glselect.path.interactions import DuplicatePair, InteractingPair, give_units
from glselect.path.problem import Problem
from glselect.path.start import first_lambda, fit_dense, interacting_pairs
from glselect.solve.base import LambdaSolve
from glselect.solve.keys import REFIT_KEY, RELAXED_KEY, lambda_key, relaxed_key
from glselect.solve.train import TrainResult, mean_and_se, mean_loss

MAX_LOG_RATIO = math.log(2.0)  # never more than double lambda in one step
MIN_RATIO_FRACTION = 1 / 64  # the smallest step is the base step / 64; below that, ties are accepted
# A stochastic solver's departures are partly mini-batch noise: two solves at nearly the same
# lambda disagree by chance, so undoing a lambda to separate them chases noise (measured on a
# 100,000-row stream: 53 of 113 solves undone, path unfinished after 60 lambdas). A stream never
# undoes a lambda past the first; its step grows while nothing leaves and falls back to the base
# step as soon as something does, and ties are broken by the norms, as for an exact solver.
FIRST_STEP_RETRIES = 6  # halvings of the starting lambda when many groups leave at the first step
# Relaxed refits score every support of at most this many groups, and larger supports only on a
# ladder (each a fifth smaller than the last scored): large supports, padded with noise, are
# almost never chosen, and scoring each of them would cost as much as the path itself.
RELAX_EVERY_SUPPORT_UP_TO = 16
RELAX_LADDER = 0.8
# While at most this many groups are non-zero, each lambda is solved to --tol (a budget of
# TO_TOLERANCE_BUDGET times --max-iters-per-lambda, no stall stop), so the order in which the top
# groups leave (the answer's ranking and the steps it is chosen from) is exact. Above it, where
# hundreds of noise groups shrink together, a solve to --tol costs several times the path
# (Friedman #1 1,500 x 100 with 300 iterations per lambda: 3.1x the time, 11 of 81 steps still
# short): those steps keep the budget and the stall stop, and path.csv records how far each got.
EXACT_UP_TO = 16


@dataclass(frozen=True)
class PathStep:
    """One lambda on the path; ``group_norms`` has shape (n_groups,) and is exactly 0 for dropped groups."""

    lam: float
    n_selected: int
    group_norms: np.ndarray
    train_loss: float
    val_loss: float
    objective: float
    n_iters: int
    converged: bool
    relaxed_val_loss: float  # validation loss after refitting this step's support without penalty (NaN: not scored)
    relaxed_val_se: float  # its standard error over validation rows
    # sparse group lasso: np.packbits of the non-zero encoded columns (a column can be zero inside a
    # non-zero group); None: the group lasso, where every column of a non-zero group is in
    column_support: np.ndarray | None = None
    # float32 (n validation rows,): each validation row's relaxed loss, so that two steps can be
    # compared row by row (the paired 1se rule); None: not scored
    relaxed_val_rows: np.ndarray | None = None
    # the solve's optimality measure, its gradient mapping relative to lambda (``ProximalGradient.run``):
    # at most --tol when converged; NaN at lambda 0 and for a stream's solves
    optimality: float = math.nan

    def column_mask(self, group_ids: np.ndarray) -> np.ndarray:
        """Bool (n_features,): the encoded columns with non-zero first-layer weights at this step."""
        in_group = self.group_norms[group_ids] > 0
        if self.column_support is None:
            return in_group
        return np.unpackbits(self.column_support, count=group_ids.size).astype(bool) & in_group


@dataclass
class PathState:
    """Everything the walk needs to go on from the last accepted lambda: what a checkpoint holds."""

    steps: list[PathStep]
    lam: float  # the next lambda to try
    log_ratio: float  # log of the current step between lambdas
    previous_lam: float
    active: np.ndarray  # bool (n_groups,): non-zero groups at the last accepted lambda
    n_rejected: int
    first_step_retries: int
    last_relaxed_size: int
    relaxed_by_support: dict[bytes, Scored]  # packed support mask -> relaxed (loss, se, per-row losses)
    lambda_max_estimate: float
    solver_step: float
    model_state: dict[str, torch.Tensor]
    dense_state: dict[str, torch.Tensor]
    dense_training: TrainResult
    # the last relaxed refit, full width (zero first-layer weights outside its columns), and the
    # columns it reads: the next, smaller support's relaxed run starts from it (``_relaxed_score``)
    relaxed_state: dict[str, torch.Tensor] | None = None
    relaxed_columns: np.ndarray | None = None


@dataclass(frozen=True)
class LambdaPath:
    """``steps[0]`` is the dense model (lambda = 0); the last step has every group at zero (or the floor)."""

    steps: tuple[PathStep, ...]
    dense_model: GroupLassoMLP
    dense_training: TrainResult
    lambda_max_estimate: float
    n_rejected: int  # trial lambdas undone because several groups left at once
    complete: bool  # reached all-zero (or the min_features floor) within max_steps
    final_model: GroupLassoMLP | None = None  # the walk's last (emptiest) model
    # pairs of the problem's encoded columns given units of the dense network before it trained
    pairs: tuple[InteractingPair, ...] = ()
    # pairs of near-copies the screen passed over (|corr| > 0.95): named, given no units
    duplicates: tuple[DuplicatePair, ...] = ()


# a validation score: mean loss, its standard error, and the per-row losses (None: not scored)
Scored = tuple[float, float, np.ndarray | None]

# REFIT_KEY: solve.keys's, for the refit
__all__ = ["EXACT_UP_TO", "REFIT_KEY", "LambdaPath", "PathState", "PathStep", "fit_path", "relaxed_val_loss"]


def relaxed_val_loss(problem: Problem, model: GroupLassoMLP, keep: np.ndarray, key: int = RELAXED_KEY) -> Scored:
    """Validation loss (its standard error over rows, and each row's loss) of a support once the penalty's shrinkage is undone.

    The penalised model's own validation loss mixes two things: which columns it uses and how
    much the penalty shrinks them. Refitting the support without penalty (warm-started, until the
    validation loss stops improving) leaves only the first, which is what choosing a subset should
    look at. The refit must not be cut short: the sparse supports start from the most-shrunk
    weights, and a fixed short budget leaves them furthest from their unpenalised fit, which
    favours the larger, less-shrunk supports.
    """
    return _relaxed(problem, model, keep, key)[0]


def _relaxed(problem: Problem, model: GroupLassoMLP, keep: np.ndarray, key: int) -> tuple[Scored, GroupLassoMLP]:
    """``relaxed_val_loss`` and the relaxed network (reading only ``keep``'s columns)."""
    small = restrict_inputs(model, keep)
    narrow = problem.restrict(keep)
    narrow.train(small, "relax", key=key)
    return mean_and_se(small, narrow.val, problem.datafit.row_loss), small


@dataclass(frozen=True)
class Trained:
    """How the training at one step went: its mean training loss, iterations, and whether it converged."""

    train_loss: float
    n_iters: int
    converged: bool
    optimality: float = math.nan


def _record(problem: Problem, model: GroupLassoMLP, lam: float, trained: Trained, relaxed: Scored, support: Support) -> PathStep:
    """The step at ``lam`` of ``model``, whose first layer's ``support`` (with its norms) is already read."""
    penalty = problem.penalty(model.first_weight.shape[0])
    val_loss = mean_loss(model, problem.val, problem.datafit.loss)
    return PathStep(
        lam=lam,
        n_selected=int(np.count_nonzero(support.group_norms)),
        group_norms=support.group_norms,
        train_loss=trained.train_loss,
        val_loss=val_loss,
        objective=trained.train_loss + lam * penalty.value_of(support),
        n_iters=trained.n_iters,
        converged=trained.converged,
        optimality=trained.optimality,
        relaxed_val_loss=relaxed[0],
        relaxed_val_se=relaxed[1],
        column_support=support.packed_columns,
        relaxed_val_rows=relaxed[2],
    )


def fit_path(
    problem: Problem,
    on_step: Callable[[PathStep], None] | None = None,
    resume: PathState | None = None,
    on_checkpoint: Callable[[PathState], None] | None = None,
    *,
    grid: Sequence[float] | None = None,
    score_step: Callable[[int], bool] | None = None,
) -> LambdaPath:
    """Train the dense model, then walk lambda upwards until every group is zero.

    Parameters
    ----------
    problem
        Rows, groups, loss and settings; the walk trains ``problem.new_model()``.
    on_step
        Called with each accepted ``PathStep`` (the dense step included); otherwise silent.
    resume
        A state saved by ``on_checkpoint`` in an earlier, interrupted run with the same data and
        settings: the walk continues from it and ends exactly as an uninterrupted run would.
    on_checkpoint
        Called with the current ``PathState`` after the dense fit and after each accepted lambda.
    grid
        Walk exactly these lambdas (increasing) instead of adapting the step, and do not stop
        when every group is zero: cross-validation folds share the full data's grid this way.
    score_step
        Whether step ``i`` (0 is the dense step) gets a relaxed validation score; None: every
        support of at most ``RELAX_EVERY_SUPPORT_UP_TO`` groups and a ladder above that.

    Returns
    -------
    LambdaPath
        One step per accepted lambda, the dense model, and path statistics.

    Raises
    ------
    GlselectError
        Training diverged (a non-finite loss).
    """
    path_config = problem.settings.path
    model = problem.new_model()
    penalty = problem.penalty(model.first_weight.shape[0])
    # screened again on a resumed walk (the same rows give the same pairs) to be reported
    screen = interacting_pairs(problem, model)
    if resume is None:
        give_units(model, screen.pairs)
        state = _start(problem, model)
        if grid is not None:
            state.lam = float(grid[0]) if len(grid) else math.inf
        if on_step is not None:
            on_step(state.steps[0])
        if on_checkpoint is not None:
            on_checkpoint(state)
    else:
        state = resume
        model.load_state_dict(state.model_state)
        if on_step is not None:
            for step in state.steps:
                on_step(step)
    dense_model = copy.deepcopy(model)
    dense_model.load_state_dict(state.dense_state)
    base_log_ratio = math.log(path_config.lambda_step)
    exact = problem.solving.exact

    def walking() -> bool:
        if grid is not None:
            return len(state.steps) <= len(grid)
        return len(state.steps) <= path_config.max_steps and state.active.sum() > path_config.min_features

    while walking():
        lam = state.lam
        max_departures = max(1, int(path_config.departure_fraction * np.count_nonzero(state.active)))
        is_first = state.previous_lam == 0.0
        can_refine = grid is None and (
            state.first_step_retries < FIRST_STEP_RETRIES if is_first else exact and state.log_ratio > base_log_ratio * MIN_RATIO_FRACTION
        )
        # a copy to undo the lambda with; a lambda that cannot be undone needs none
        saved_state = copy.deepcopy(model.state_dict()) if can_refine else None
        # a stream's run reads the shuffles its key names: the same on a resumed walk
        key = lambda_key(len(state.steps), state.n_rejected)
        # a lambda that will be undone anyway need not be solved to the end; groups can pass
        # through zero and come back within a solve, so only a clear excess stops it early
        to_tolerance = int(np.count_nonzero(state.active)) <= EXACT_UP_TO
        solve = LambdaSolve(
            lam, state.active, max_departures=2 * max_departures + 1 if can_refine else None, to_tolerance=to_tolerance, from_dense=is_first
        )
        result, solver_step = problem.solve_lambda(model, solve, state.solver_step, key=key)
        if not math.isfinite(result.objective):
            raise GlselectError(
                f"training diverged at lambda={lam:.3g}: the objective is not finite",
                hint="check the table for extreme values (streaming: lower --learning-rate)",
            )
        support = penalty.support(model.first_weight)
        if exact and not to_tolerance and not result.stopped and not result.converged and np.count_nonzero(support.active) <= EXACT_UP_TO:
            # a budgeted solve crossed into the ranks the path solves exactly: the order of the groups
            # that left here is one of them, so finish this lambda to --tol from where the budget ended
            result, solver_step = problem.solve_lambda(model, dataclasses.replace(solve, to_tolerance=True), solver_step, key=key)
            support = penalty.support(model.first_weight)
        now_active = support.active
        n_left = int(np.count_nonzero(state.active & ~now_active))
        # at the first lambda, losing every group at once says the start was too high, not a tie
        too_many = result.stopped or n_left > max_departures or (is_first and n_left > 0 and not now_active.any())
        if too_many and saved_state is not None:  # saved exactly when the lambda can be refined
            # several groups left at once: undo, and try a lambda closer to the last one
            model.load_state_dict(saved_state)
            state.n_rejected += 1
            if is_first:
                state.first_step_retries += 1
                state.lam /= 2.0
            else:
                state.log_ratio /= 2.0
                state.lam = state.previous_lam * math.exp(state.log_ratio)
            continue
        wanted = None if score_step is None else score_step(len(state.steps))
        relaxed = _relaxed_score(problem, state, model, support, wanted, key)
        train_loss = problem.training_loss(model) if exact else result.loss  # a stream: its run's mean
        step = _record(problem, model, lam, Trained(train_loss, result.n_iters, result.converged, result.optimality), relaxed, support)
        state.steps.append(step)
        if n_left == 0:
            state.log_ratio = min(state.log_ratio * 2.0, MAX_LOG_RATIO)  # nothing is happening: move faster
        elif not exact:
            state.log_ratio = base_log_ratio  # groups are leaving: back to the base step (see above)
        state.active = now_active
        state.previous_lam = lam
        if grid is None:
            state.lam = lam * math.exp(state.log_ratio)
        elif len(state.steps) <= len(grid):
            state.lam = float(grid[len(state.steps) - 1])
        state.model_state = model.state_dict()
        state.solver_step = solver_step
        if on_step is not None:
            on_step(step)
        if on_checkpoint is not None:
            on_checkpoint(state)

    return LambdaPath(
        steps=tuple(state.steps),
        dense_model=dense_model,
        dense_training=state.dense_training,
        lambda_max_estimate=state.lambda_max_estimate,
        n_rejected=state.n_rejected,
        complete=bool(state.active.sum() <= path_config.min_features),
        final_model=model,
        pairs=screen.pairs,
        duplicates=screen.duplicates,
    )


def _start(problem: Problem, model: GroupLassoMLP) -> PathState:
    """Train the dense model and place the first lambda."""
    dense_training = fit_dense(problem, model)
    dense_val = mean_and_se(model, problem.val, problem.datafit.row_loss)
    support = problem.penalty(model.first_weight.shape[0]).support(model.first_weight)
    trained = Trained(problem.training_loss(model), dense_training.n_iters, dense_training.stopped_early)
    first = _record(problem, model, 0.0, trained, dense_val, support)
    if not math.isfinite(first.train_loss) and problem.solving.exact:
        raise GlselectError(
            "training diverged: the loss of the dense model is not finite",
            hint="check the table for extreme values",
        )
    lambda_max_estimate, lam = first_lambda(problem, model)
    state = model.state_dict()
    return PathState(
        steps=[first],
        lam=lam,
        log_ratio=math.log(problem.settings.path.lambda_step),
        previous_lam=0.0,
        active=first.group_norms > 0,
        n_rejected=0,
        first_step_retries=0,
        last_relaxed_size=first.n_selected,
        relaxed_by_support={},
        lambda_max_estimate=lambda_max_estimate,
        solver_step=1.0,  # the line search finds the scale of the penalised problem from here
        model_state=copy.deepcopy(state),
        dense_state=copy.deepcopy(state),
        dense_training=dense_training,
    )


def _relaxed_score(problem: Problem, state: PathState, model: GroupLassoMLP, support: Support, wanted: bool | None, key: int) -> Scored:
    """The relaxed validation score of this support, computed once per support (NaN when not scored).

    The support scored is the columns the refit would read (a column can be zero inside a kept
    group under the sparse group lasso). ``wanted`` None: scored by the size rule (every small
    support, a ladder of large ones).
    """
    keep = support.column_mask(problem.group_ids)
    support_key = support.key(problem.group_ids)
    n_active = int(np.count_nonzero(support.active))
    if wanted is None:
        wanted = n_active <= RELAX_EVERY_SUPPORT_UP_TO or n_active <= RELAX_LADDER * state.last_relaxed_size
    if wanted and support_key not in state.relaxed_by_support:
        if keep.any():
            start = _relaxed_start(model, state, keep)
            scored, relaxed = _relaxed(problem, start, keep, relaxed_key(key))
            state.relaxed_state, state.relaxed_columns = _widened(relaxed, model, keep), keep
        else:
            scored = mean_and_se(model, problem.val, problem.datafit.row_loss)
        state.relaxed_by_support[support_key] = scored
        state.last_relaxed_size = n_active
    return state.relaxed_by_support.get(support_key, (math.nan, math.nan, None))


def _relaxed_start(model: GroupLassoMLP, state: PathState, keep: np.ndarray) -> GroupLassoMLP:
    """Where a relaxed run for the columns ``keep`` starts: the last relaxed refit, when it read
    every one of them (the path is walking to sparser supports), else the penalised network.

    The last relaxed refit is already free of shrinkage and fitted to a support holding this one:
    its run stops as soon as the columns dropped since are made up for, where a run from the
    penalised network must first undo the shrinkage (on Friedman #1 20,000 x 500 the relaxed runs
    were 26 of the path's 59 s, the small supports' about a second each)."""
    if state.relaxed_state is None or state.relaxed_columns is None or (keep & ~state.relaxed_columns).any():
        return model
    start = copy.deepcopy(model)
    start.load_state_dict(state.relaxed_state)
    return start


def _widened(relaxed: GroupLassoMLP, like: GroupLassoMLP, keep: np.ndarray) -> dict[str, torch.Tensor]:
    """``relaxed``'s weights (reading the columns ``keep``) as a state of ``like``'s full width: zero
    first-layer weights in the other columns."""
    full = copy.deepcopy(like)
    widen_inputs(full, relaxed, torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64, device=like.first_weight.device))
    return full.state_dict()
