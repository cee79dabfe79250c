"""``Problem``: what a fit is about, in one object that every stage takes.

It holds the training rows (a full batch in memory or mini-batches of a stream) and the
held-out rows, the groups, the loss (task and class weights), how to build a fresh seeded
model, and the training settings. ``restrict`` narrows it to some encoded columns (a refit, a
relaxed score), ``on_rows`` to other rows of the same table (a CV fold, a stability half), and
``new_model`` makes a seeded network. The choice between the two solvers is made here, once,
from the kind of training rows: no stage above asks whether the data is streamed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from glselect import distributed
from glselect.config import DataConfig, ModelConfig, PathConfig, StreamConfig, TrainConfig
from glselect.data.source import Dataset, FullBatch, InMemoryData, Rows, TrainingRows
from glselect.data.split import TRAIN, TRAINING_ROWS, VAL, VALIDATION_ROWS, RowSet
from glselect.model.metrics import LossFunction, loss_function, row_loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import GroupPenalty, Objective, make_penalty
from glselect.path.interactions import (
    MAX_SCREEN_BATCHES, MIN_SCREEN_ROWS, SCREEN_KEY, InteractingPair, max_pairs_for, screen_pairs, screen_rows,
)
from glselect.solve.fista import ProximalGradient, SolveResult
from glselect.solve.screening import first_layer_gradient, solve_screened, too_many_departures
from glselect.solve.sgd import ProximalSGD
from glselect.solve.train import Budget, Solver, TrainResult, train_early_stopped

MAX_PROBE_BATCHES = 64  # mini-batches averaged for the gradient at a zero first layer (lambda_max estimate)
MIN_RELAX_STEPS = 100  # mini-batch steps that score a support, on tables with few steps per lambda
PROBE_KEY = 1  # the stream the lambda_max probe reads (keys fix which shuffles a solver run sees)


@dataclass(frozen=True)
class Settings:
    """The training settings a problem carries (from ``RunConfig``)."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    path: PathConfig = PathConfig()
    stream: StreamConfig = StreamConfig()
    val_fraction: float = DataConfig().val_fraction  # share of a resampled set of rows that early-stops its fit


@dataclass(frozen=True)
class Problem:
    """One fitting problem: rows, groups, loss, model factory and settings (see the module docstring)."""

    data: Dataset
    rows: TrainingRows  # the rows a solver trains on
    val: Rows  # held-out rows for early stopping and scores (the same on every rank)
    group_ids: np.ndarray  # int64 (n_features,) of the columns this problem reads
    n_encoded: np.ndarray  # int64 (n_groups,): encoded columns per group
    task: str
    n_outputs: int
    class_weights: np.ndarray | None
    settings: Settings
    seed: int
    column_index: torch.Tensor | None = None  # the encoded columns read, when restricted (None: all)

    @classmethod
    def from_arrays(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        group_ids: np.ndarray,
        n_encoded: np.ndarray,
        task: str,
        settings: Settings | None = None,
        class_weights: np.ndarray | None = None,
        seed: int = 0,
    ) -> Problem:
        """A problem on encoded rows already in memory (``(X, y)`` pairs), for Python users and tests.

        The training rows come first and the validation rows after them; CV folds and stability
        halves resample both, as they do in a fit.
        """
        X = torch.cat([train[0], val[0]]).cpu().numpy()
        y = torch.cat([train[1], val[1]]).cpu().numpy()
        parts = np.concatenate([np.full(len(train[1]), TRAIN), np.full(len(val[1]), VAL)]).astype(np.int8)
        data = InMemoryData(
            encoder=None, group_index=None, X=X, y=y, positions=np.arange(len(y)), parts=parts, seed=seed,
            device=train[0].device, n_missing_target=0,
        )
        n_outputs = int(y.max()) + 1 if task == "multiclass" else 1
        settings = settings or Settings()
        return cls(
            data=data, rows=data.training(TRAINING_ROWS), val=data.holdout(VALIDATION_ROWS), group_ids=np.asarray(group_ids),
            n_encoded=np.asarray(n_encoded), task=task, n_outputs=n_outputs, class_weights=class_weights,
            settings=settings, seed=seed,
        )

    # ----- what the fit is about --------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.rows.n_features

    @property
    def exact(self) -> bool:
        """Full-batch rows: each solve is exact. Mini-batches: each solve carries mini-batch noise."""
        return isinstance(self.rows, FullBatch)

    @property
    def val_fraction(self) -> float:
        return self.settings.val_fraction

    @property
    def n_groups(self) -> int:
        return int(self.n_encoded.size)

    @property
    def device(self) -> torch.device:
        return self.val.X.device

    @property
    def context(self) -> distributed.Context:
        return self.data.context

    @property
    def loss_fn(self) -> LossFunction:
        return loss_function(self.task, self.class_weights)

    @property
    def row_loss_fn(self) -> LossFunction:
        return row_loss_function(self.task, self.class_weights)

    def penalty(self, fan_out: int) -> GroupPenalty:
        return make_penalty(
            self.group_ids, self.n_encoded, fan_out, self.val.X.dtype, self.device, self.settings.model.l1_ratio
        )

    def new_model(self, seed: int | None = None) -> GroupLassoMLP:
        """A freshly initialised network on this problem's columns, seeded (default: the problem's seed)."""
        torch.manual_seed(self.seed if seed is None else seed)
        return GroupLassoMLP(self.n_features, self.settings.model.hidden, self.n_outputs).to(device=self.device, dtype=self.val.X.dtype)

    # ----- narrower problems ------------------------------------------------------------------
    def restrict(self, feature_mask: np.ndarray) -> Problem:
        """The same rows reading only the encoded columns where ``feature_mask`` (bool, (n_features,)) is true."""
        columns = torch.as_tensor(np.flatnonzero(feature_mask), dtype=torch.int64, device=self.device)
        composed = columns if self.column_index is None else self.column_index[columns]
        return dataclasses.replace(
            self, rows=self.rows.columns(columns), val=self.val.columns(columns),
            group_ids=self.group_ids[feature_mask], column_index=composed,
        )

    def on_rows(self, fit: RowSet, held_out: RowSet, seed: int) -> Problem:
        """The same problem (reading the same columns) on other rows of the table (a CV fold, a
        stability half, a confirmation fold), with its own seed."""
        return dataclasses.replace(
            self, rows=self.data.training(fit).columns(self.column_index), val=self.held_out(held_out), seed=seed
        )

    def held_out(self, rows: RowSet) -> Rows:
        """Other held-out rows of the table (a confirmation fold's tested rows), reading this problem's columns."""
        return self.data.holdout(rows).columns(self.column_index)

    def with_path(self, **changes: object) -> Problem:
        """The same problem with some path settings changed (e.g. a floor of ``min_features``)."""
        path = dataclasses.replace(self.settings.path, **changes)
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, path=path))

    # ----- solvers: the one place that looks at the kind of rows ------------------------------
    def solver(self, model: GroupLassoMLP, objective: Objective, key: int = 0, step: float = 1.0) -> Solver:
        """Full-batch FISTA for rows in memory, proximal SGD for a stream."""
        if self.exact:
            rows = self.rows.rows
            return ProximalGradient(
                model, rows.X, rows.y, objective.loss_fn, objective.penalty, objective.max_norm, step=step,
                neuron_penalty=objective.neuron_penalty,
            )
        return ProximalSGD(model, self.rows, objective, self.settings.stream, key)

    def budget(self, kind: str) -> Budget:
        """Iterations for ``kind``: "train" (dense fit, refit), "lambda" (one path step) or "relax" (a relaxed score)."""
        train, path = self.settings.train, self.settings.path
        if self.exact:
            max_iters = {"train": train.max_iters, "lambda": path.max_iters_per_lambda, "relax": path.relax_iters}[kind]
            return Budget(max_iters, train.check_every, train.patience)
        per_epoch = self.rows.steps_per_epoch
        per_lambda = max(1, round(self.settings.stream.epochs_per_lambda * per_epoch))
        max_iters = {
            "train": max(1, round(self.settings.stream.max_epochs * per_epoch)),
            "lambda": per_lambda,
            # the fine-tune that scores a support must undo the penalty's shrinkage: a quarter of a
            # lambda's steps on large tables, at least a few epochs (up to MIN_RELAX_STEPS) on small ones
            "relax": max(per_lambda // 4, min(MIN_RELAX_STEPS, 3 * per_epoch), 1),
        }[kind]
        return Budget(max_iters, max(1, per_epoch // 4), train.patience)

    def train(self, model: GroupLassoMLP, kind: str = "train", key: int = 0, neuron_penalty: float = 0.0) -> TrainResult:
        """Train ``model`` (on this problem's columns) without group penalty, early-stopped on ``val``."""
        objective = Objective(self.loss_fn, None, self.settings.model.max_norm, neuron_penalty)
        solver = self.solver(model, objective, key)
        return train_early_stopped(solver, model, self.val, self.loss_fn, self.budget(kind))

    def solve_lambda(
        self, model: GroupLassoMLP, lam: float, working: np.ndarray, step: float, max_departures: int | None, key: int
    ) -> tuple[SolveResult, float]:
        """One lambda of the path, warm-started in place. In memory: screened FISTA from the
        ``working`` groups (stopping once more than ``max_departures`` leave); streamed: one
        budget of SGD steps. Returns the result and the line-search step to carry on."""
        penalty = self.penalty(model.first_weight.shape[0])
        if self.exact:
            rows = self.rows.rows
            limits = (self.settings.path.max_iters_per_lambda, self.settings.path.tol)
            objective = Objective(self.loss_fn, penalty, self.settings.model.max_norm)
            return solve_screened(model, (rows.X, rows.y), objective, working, lam, step, limits, max_departures)
        solver = self.solver(model, Objective(self.loss_fn, penalty, self.settings.model.max_norm), key)
        solver.set_lambda(lam)
        stop = too_many_departures(penalty, working, max_departures)
        return solver.run(self.budget("lambda").max_iters, self.settings.path.tol, stop=stop), step

    def training_loss(self, model: GroupLassoMLP) -> float:
        """Mean training loss: exact in memory; NaN for a stream (a step's record carries its run's mean)."""
        if self.exact:
            with torch.no_grad():
                return float(self.loss_fn(model(self.rows.rows.X), self.rows.rows.y))
        return float("nan")

    def screen_sample(self, wanted: int) -> tuple[torch.Tensor, torch.Tensor]:
        """About ``wanted`` training rows (encoded X, target y) for a screen, this rank's share.

        In memory evenly spaced rows of the full batch (a table sorted by anything is still sampled
        across); streamed the first mini-batches of its own shuffle (at most ``MAX_SCREEN_BATCHES``),
        each rank ``wanted / world_size`` of them.
        """
        if self.exact:
            X, y = self.rows.rows.X, self.rows.rows.y
            if len(y) > wanted:
                picked = torch.linspace(0, len(y) - 1, wanted, device=y.device).round().long()
                X, y = X.index_select(0, picked), y.index_select(0, picked)
            return X, y
        per_rank = math.ceil(wanted / self.context.world_size)
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        batches, n_read = self.rows.stream(key=SCREEN_KEY), 0
        for _ in range(min(self.rows.steps_per_epoch, MAX_SCREEN_BATCHES)):
            if n_read >= per_rank:
                break
            parts.append(next(batches))
            n_read += len(parts[-1][1])
        return torch.cat([part[0] for part in parts])[:per_rank], torch.cat([part[1] for part in parts])[:per_rank]

    def interacting_pairs(self, model: GroupLassoMLP) -> tuple[InteractingPair, ...]:
        """The pairs of this problem's columns that ``interactions.give_units`` should seed in ``model``.

        Screened on ``screen_sample`` of the training rows. No pairs for the linear model, a survival target,
        ``--no-screen-pairs``, or so many columns that the screen's budget leaves too few rows
        (the same on every rank: it depends on the columns alone).
        """
        max_pairs = max_pairs_for(model)
        wanted = screen_rows(self.n_features, self.n_outputs)
        if not self.settings.model.screen_pairs or max_pairs == 0 or self.task == "survival" or wanted < MIN_SCREEN_ROWS:
            return ()
        X, y = self.screen_sample(wanted)
        return screen_pairs((X, y), self.group_ids, self.task, self.n_outputs, max_pairs, self.context)

    def zero_kkt_lambdas(self, model: GroupLassoMLP) -> np.ndarray:
        """For each group, the smallest lambda at which an all-zero first layer meets its KKT condition.

        ``||grad_g|| / sqrt(d_g)`` at ``W = 0`` with the other layers as in ``model`` (sparse group
        lasso: ``GroupPenalty.zero_lambdas``): the largest is
        about where the last group leaves, the small ones are about where noise groups leave.
        A stream averages the gradient over up to ``MAX_PROBE_BATCHES`` mini-batches and all ranks.
        """
        probe = copy.deepcopy(model)
        with torch.no_grad():
            probe.first_weight.zero_()
        penalty = self.penalty(model.first_weight.shape[0])
        if self.exact:
            gradient = first_layer_gradient(probe, self.rows.rows.X, self.rows.rows.y, self.loss_fn)
        else:
            n_batches = min(self.rows.steps_per_epoch, MAX_PROBE_BATCHES)
            batches = self.rows.stream(key=PROBE_KEY)
            gradient = torch.zeros_like(probe.first_weight)
            for _ in range(n_batches):
                X, y = next(batches)
                probe.zero_grad(set_to_none=True)
                self.loss_fn(probe(X), y).backward()
                gradient += probe.first_weight.grad
            gradient = distributed.all_reduce_sum(gradient.cpu(), self.context) / (n_batches * self.context.world_size)
            gradient = gradient.to(self.device)
        return penalty.zero_lambdas(gradient).double().cpu().numpy()
