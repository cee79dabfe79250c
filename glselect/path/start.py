"""The start of a path: the dense fit, the sample the pair screen reads, and the lambda-max probe.

Before the walk, the network is screened for interacting column pairs (on a sample of the training
rows) and given units for them, trained without penalty, and probed at a zero first layer: the
lambda at which each group's zero meets its KKT condition places the first lambda about where the
first groups leave. Each of these reads the rows through ``problem.solving``, so it is written once
for rows in memory and streams alike.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from glselect.model.mlp import GroupLassoMLP
from glselect.path.interactions import (
    MAX_SCREEN_BATCHES,
    MIN_SCREEN_ROWS,
    PairScreen,
    max_pairs_for,
    screen_pairs,
    screen_rows,
)
from glselect.path.problem import Problem
from glselect.solve.keys import DENSE_KEY, PROBE_KEY, SCREEN_KEY
from glselect.solve.train import TrainResult


def fit_dense(problem: Problem, model: GroupLassoMLP) -> TrainResult:
    """Train ``model`` without penalty, early-stopped on the validation rows (the path's first step)."""
    return problem.train(model, "train", key=DENSE_KEY)


def screen_sample(problem: Problem, wanted: int) -> tuple[torch.Tensor, torch.Tensor]:
    """About ``wanted`` training rows (encoded X, target y) for a screen, this rank's share.

    In memory evenly spaced rows of the full batch; streamed the first mini-batches of the screen's
    own shuffle (at most ``MAX_SCREEN_BATCHES``), each rank ``wanted / world_size`` of them.
    """
    return problem.solving.sample(wanted, SCREEN_KEY, MAX_SCREEN_BATCHES)


def interacting_pairs(problem: Problem, model: GroupLassoMLP) -> PairScreen:
    """The pairs of ``problem``'s columns that ``interactions.give_units`` should seed in ``model``,
    and the near-duplicate columns the screen passed over.

    Screened on ``screen_sample`` of the training rows. No pairs for the linear model, a datafit the
    screen cannot read (survival), ``--no-screen-pairs``, or so many columns that the screen's budget
    leaves too few rows (the same on every rank: it depends on the columns alone).
    """
    max_pairs = max_pairs_for(model)
    wanted = screen_rows(problem.n_features, problem.datafit.outputs)
    if not problem.settings.model.screen_pairs or max_pairs == 0 or not problem.datafit.pair_screen or wanted < MIN_SCREEN_ROWS:
        return PairScreen()
    X, y = screen_sample(problem, wanted)
    return screen_pairs((X, y), problem.group_ids, problem.datafit, max_pairs, problem.data.context, categorical_ids(problem))


def categorical_ids(problem: Problem) -> np.ndarray:
    """int64 (n_features,): for each column ``problem`` reads, the index of the categorical column it
    is a one-hot level of, -1 for any other column (knockoff copies appended beyond the encoding too)."""
    encoding = [
        index if column.kind == "categorical" else -1
        for index, column in enumerate(problem.data.encoder.columns)
        for _ in column.output_names
    ]
    columns = np.arange(problem.n_features) if problem.column_index is None else problem.column_index.cpu().numpy()
    ids = np.asarray([*encoding, -1], dtype=np.int64)
    return ids[np.minimum(columns, len(encoding))]


def zero_kkt_lambdas(problem: Problem, model: GroupLassoMLP) -> np.ndarray:
    """For each group, the smallest lambda at which an all-zero first layer meets its KKT condition.

    ``penalty.zero_lambdas`` of the loss gradient at ``W = 0`` with the other layers as in ``model``
    (group lasso: ``||grad_g|| / sqrt(d_g)``): the largest is about where the last group leaves, the
    small ones are about where noise groups leave. A stream averages the gradient over up to
    ``MAX_PROBE_BATCHES`` mini-batches and all ranks.
    """
    probe = copy.deepcopy(model)
    with torch.no_grad():
        probe.first_weight.zero_()
    penalty = problem.penalty(model.first_weight.shape[0])
    gradient = problem.solving.mean_first_layer_gradient(probe, problem.datafit.loss, PROBE_KEY)
    return penalty.zero_lambdas(gradient).double().cpu().numpy()


def first_lambda(problem: Problem, model: GroupLassoMLP) -> tuple[float, float]:
    """``(lambda_max_estimate, first lambda)`` for the dense ``model``: the largest zero-point KKT lambda,
    and where the walk starts (``--lambda-start`` when given)."""
    kkt_lambdas = zero_kkt_lambdas(problem, model)
    positive = kkt_lambdas[kkt_lambdas > 0]
    lambda_max_estimate = float(positive.max()) if positive.size else 1.0
    # Start about where the first groups leave. A noise group's zero-point KKT lambda is the size
    # of its chance gradient, so the lower quartile of all groups' values sits just below the first
    # departures. Too low costs idle steps, too high is undone by halving.
    start = float(np.quantile(positive, 0.25)) if positive.size else 1.0
    return lambda_max_estimate, problem.settings.path.lambda_start or max(start, 1e-4 * lambda_max_estimate)


__all__ = ["first_lambda", "fit_dense", "interacting_pairs", "screen_sample", "zero_kkt_lambdas"]
