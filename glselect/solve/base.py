"""What every solver shares: the protocol, the result of a run, the iteration budgets, the settings.

Two solvers minimise one lambda's objective: full-batch FISTA (``fista.ProximalGradient``, rows
in memory) and mini-batch proximal SGD (``sgd.ProximalSGD``, streamed rows). Which one runs is
decided by the kind of training rows alone (``make.make_solving``); nothing above asks whether
the data is streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from glselect.config import (
    DataConfig,
    ModelConfig,
    PathConfig,
    StreamConfig,
    TrainConfig,
)

ObjectiveStop = Callable[[torch.Tensor], torch.Tensor]  # first-layer weight -> 0-d bool tensor


@dataclass(frozen=True)
class Settings:
    """The training settings a problem carries (from ``RunConfig``)."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    path: PathConfig = PathConfig()
    stream: StreamConfig = StreamConfig()
    val_fraction: float = DataConfig().val_fraction  # share of a resampled set of rows that early-stops its fit


@dataclass(frozen=True)
class SolveResult:
    """What one solver run did; both solvers return it."""

    n_iters: int
    converged: bool
    objective: float
    stopped: bool  # ended early because the caller's stop condition held
    loss: float
    # a penalised full-batch run: the smallest optimality measure (gradient mapping relative to
    # lambda) of its accepted steps, at most tol when converged; NaN where not measured
    optimality: float = float("nan")


@dataclass(frozen=True)
class LambdaSolve:
    """What the path asks of one lambda's solve.

    ``working``: bool (n_groups,), the groups that may be non-zero at the start (the last accepted
    lambda's support). ``max_departures``: stop early (``SolveResult.stopped``) once more than this
    many of them are zero, since the path will undo such a lambda anyway (None: never).
    """

    lam: float
    working: np.ndarray
    max_departures: int | None = None
    # solve to --tol: a larger budget (``TO_TOLERANCE_BUDGET`` times the lambda's) and no stall stop
    to_tolerance: bool = False
    # the path's first lambda, started from the dense fit: a solve to --tol gets FROM_DENSE_BUDGET times more
    from_dense: bool = False


# How many times --max-iters-per-lambda a solve to tolerance may take. On the sample (Friedman #1
# 3,000 x 30, 9 groups) every step then converged in 3 to 666 iterations, most in 100 to 220.
TO_TOLERANCE_BUDGET = 20
# The first lambda's solve starts from the dense fit, every later one from its neighbour's solution:
# it has the furthest to go. On sample_data/stand_ins.csv it converged in 1,077 iterations, past
# the 1,000 of a later step, which converged in 7 to 301.
FROM_DENSE_BUDGET = 2


def lambda_budget(max_iters_per_lambda: int, solve: LambdaSolve) -> int:
    """Iterations one lambda's solve may take: --max-iters-per-lambda, more for a solve to --tol."""
    if not solve.to_tolerance:
        return max_iters_per_lambda
    return max_iters_per_lambda * TO_TOLERANCE_BUDGET * (FROM_DENSE_BUDGET if solve.from_dense else 1)


@dataclass(frozen=True)
class Budget:
    """Solver iterations a training run may take, and how often it looks at the validation rows."""

    max_iters: int
    check_every: int
    patience: int  # checks without improvement before stopping
    min_gain: float = 0.0  # an improvement of the validation loss counts only beyond this much


class Solver(Protocol):
    """Minimises one lambda's objective over a model's parameters, in place; ``run`` may be called again to continue."""

    exact: bool  # full-batch: a run that converges has reached a stationary point; mini-batch: never settles

    def set_lambda(self, lam: float) -> None: ...

    def run(self, max_iters: int, tol: float, stop: ObjectiveStop | None = None) -> SolveResult: ...


__all__ = [
    "FROM_DENSE_BUDGET",
    "TO_TOLERANCE_BUDGET",
    "Budget",
    "LambdaSolve",
    "ObjectiveStop",
    "Settings",
    "SolveResult",
    "Solver",
    "lambda_budget",
]
