"""``Problem``: what a fit is about, as a plain value that every stage takes.

It holds the training rows (a full batch in memory or mini-batches of a stream) and the held-out
rows, the groups, the datafit (task and class weights), the training settings and the seed.
``restrict`` narrows it to some encoded columns (a refit, a relaxed score), ``on_rows`` to other
rows of the same table (a CV fold, a stability half), ``with_path`` changes path settings, and
``new_model`` makes a seeded network. How the rows are solved is picked once from their kind
(``solving``, ``glselect.solve.make``); the start of a path (dense fit, pair screen, lambda-max
probe) lives in ``glselect.path.start``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glselect.data.encoder import ColumnEncoding, Encoder
from glselect.data.groups import GroupIndex
from glselect.data.source import Dataset, InMemoryData, Rows, TrainingRows
from glselect.data.split import TRAIN, TRAINING_ROWS, VAL, VALIDATION_ROWS, RowSet
from glselect.data.target import TargetEncoding
from glselect.model.datafits import DATAFITS, Datafit, make_datafit
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.model.penalties import Penalty, penalty_for
from glselect.solve.base import LambdaSolve, Settings, SolveResult
from glselect.solve.make import Solving, make_solving
from glselect.solve.train import TrainResult, mean_and_se, train_early_stopped

DEFAULT_SETTINGS = Settings()
# A relaxed score's unpenalised run stops once a patience's worth of checks gains less than this
# share of its validation loss's standard error (see ``Problem.train``).
RELAX_MIN_GAIN = 0.1


@dataclass(frozen=True)
class Problem:
    """One fitting problem: rows, held-out rows, groups, datafit, settings and seed (see the module docstring).

    Parameters
    ----------
    data
        The table the rows come from (CV folds and stability halves resample it).
    rows
        The rows a solver trains on.
    val
        Held-out rows for early stopping and scores (the same on every rank).
    group_ids
        int64 (n_features,): the group of each column this problem reads.
    n_encoded
        int64 (n_groups,): encoded columns per group.
    datafit
        The loss and metrics of the target (``glselect.model.datafits.make_datafit``).
    settings, seed
        Training settings and the seed of the models it makes.
    column_index
        The encoded columns read, when restricted (None: all).
    """

    data: Dataset
    rows: TrainingRows
    val: Rows
    group_ids: np.ndarray
    n_encoded: np.ndarray
    datafit: Datafit
    settings: Settings = DEFAULT_SETTINGS
    seed: int = 0
    column_index: torch.Tensor | None = None

    @classmethod
    def from_arrays(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        group_ids: np.ndarray,
        n_encoded: np.ndarray,
        task: str,
        settings: Settings | None = None,
        seed: int = 0,
    ) -> Problem:
        """A problem on encoded rows already in memory (``(X, y)`` pairs), for Python users and tests.

        The training rows come first and the validation rows after them; CV folds and stability
        halves resample both, as they do in a fit. The columns are named ``x0, x1, ...`` and the
        groups ``g0, g1, ...`` by their number.
        """
        X = torch.cat([train[0], val[0]]).cpu().numpy()
        y = torch.cat([train[1], val[1]]).cpu().numpy()
        parts = np.concatenate([np.full(len(train[1]), TRAIN), np.full(len(val[1]), VAL)]).astype(np.int8)
        group_ids, n_encoded = np.asarray(group_ids), np.asarray(n_encoded)
        datafit = make_datafit(task, DATAFITS[task].outputs_for(y))
        encoder, group_index = _encoded_as_given(X.shape[1], datafit, group_ids, n_encoded)
        data = InMemoryData(
            encoder=encoder,
            group_index=group_index,
            X=X,
            y=y,
            positions=np.arange(len(y)),
            parts=parts,
            seed=seed,
            device=train[0].device,
            n_missing_target=0,
        )
        return cls(
            data=data,
            rows=data.training(TRAINING_ROWS),
            val=data.holdout(VALIDATION_ROWS),
            group_ids=group_ids,
            n_encoded=n_encoded,
            datafit=datafit,
            settings=settings or Settings(),
            seed=seed,
        )

    # ----- what the fit is about --------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.rows.n_features

    @property
    def solving(self) -> Solving:
        """How the training rows are solved (full-batch FISTA in memory, proximal SGD for a stream)."""
        return make_solving(self.rows, self.settings)

    @property
    def n_groups(self) -> int:
        return int(self.n_encoded.size)

    @property
    def device(self) -> torch.device:
        return self.val.X.device

    def penalty(self, fan_out: int) -> Penalty:
        """The first-layer penalty of a network with ``fan_out`` first-layer units (``penalties.penalty_for``)."""
        return penalty_for(self.settings.model, self.group_ids, self.n_encoded, fan_out, self.val.X.dtype, self.device)

    def new_model(self, seed: int | None = None) -> GroupLassoMLP:
        """A freshly initialised network on this problem's columns, seeded (default: the problem's seed)."""
        torch.manual_seed(self.seed if seed is None else seed)
        return GroupLassoMLP(self.n_features, self.settings.model.hidden, self.datafit.outputs).to(
            device=self.device, dtype=self.val.X.dtype
        )

    # ----- narrower problems ------------------------------------------------------------------
    def restrict(self, feature_mask: np.ndarray) -> Problem:
        """The same rows reading only the encoded columns where ``feature_mask`` (bool, (n_features,)) is true."""
        columns = torch.as_tensor(np.flatnonzero(feature_mask), dtype=torch.int64, device=self.device)
        composed = columns if self.column_index is None else self.column_index[columns]
        return dataclasses.replace(
            self,
            rows=self.rows.columns(columns),
            val=self.val.columns(columns),
            group_ids=self.group_ids[feature_mask],
            column_index=composed,
        )

    def on_rows(self, fit: RowSet, held_out: RowSet, seed: int) -> Problem:
        """The same problem (reading the same columns) on other rows of the table (a CV fold, a
        stability half, a confirmation fold), with its own seed."""
        return dataclasses.replace(self, rows=self.data.training(fit).columns(self.column_index), val=self.held_out(held_out), seed=seed)

    def held_out(self, rows: RowSet) -> Rows:
        """Other held-out rows of the table (a confirmation fold's tested rows), reading this problem's columns."""
        return self.data.holdout(rows).columns(self.column_index)

    def with_path(self, **changes: Any) -> Problem:
        """The same problem with some path settings changed (e.g. a floor of ``min_features``)."""
        path = dataclasses.replace(self.settings.path, **changes)
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, path=path))

    # ----- training ---------------------------------------------------------------------------
    def train(self, model: GroupLassoMLP, kind: str = "train", key: int = 0, neuron_penalty: float = 0.0) -> TrainResult:
        """Train ``model`` (on this problem's columns) without group penalty, early-stopped on ``val``.

        A relaxed score's run ("relax") stops once its validation loss stops gaining more than
        ``RELAX_MIN_GAIN`` of that loss's standard error over the validation rows: the scores are
        compared with each other within such errors, so smaller gains cannot change the choice.
        """
        objective = Objective(self.datafit.loss, None, self.settings.model.max_norm, neuron_penalty)
        solving = self.solving
        solver = solving.solver(model, objective, key)
        budget = solving.budget(kind)
        if kind == "relax":
            se = mean_and_se(model, self.val, self.datafit.row_loss)[1]
            budget = dataclasses.replace(budget, min_gain=RELAX_MIN_GAIN * (se if math.isfinite(se) else 0.0))
        return train_early_stopped(solver, model, self.val, self.datafit.loss, budget)

    def solve_lambda(self, model: GroupLassoMLP, solve: LambdaSolve, step: float, key: int) -> tuple[SolveResult, float]:
        """One lambda of the path, warm-started in place (``solving.solve_lambda``: in memory screened
        FISTA from the ``solve.working`` groups, streamed one budget of SGD steps); stops once more
        than ``solve.max_departures`` groups leave. Returns the result and the line-search step to carry on."""
        objective = Objective(self.datafit.loss, self.penalty(model.first_weight.shape[0]), self.settings.model.max_norm)
        return self.solving.solve_lambda(model, objective, solve, step, key)

    def training_loss(self, model: GroupLassoMLP) -> float:
        """Mean training loss: exact in memory; NaN for a stream (a step's record carries its run's mean)."""
        return self.solving.training_loss(model, self.datafit.loss)


def _encoded_as_given(n_features: int, datafit: Datafit, group_ids: np.ndarray, n_encoded: np.ndarray) -> tuple[Encoder, GroupIndex]:
    """The encoding of columns already encoded: each column ``x{j}`` as it is, in group ``g{group_ids[j]}``."""
    names = [f"x{j}" for j in range(n_features)]
    classes: tuple[int, ...] = tuple(range(max(datafit.outputs, 2))) if datafit.has_classes else ()
    encoder = Encoder(tuple(ColumnEncoding(name, "numeric") for name in names), TargetEncoding("y", datafit.name, classes))
    group_names = tuple(f"g{g}" for g in range(len(n_encoded)))
    members: list[list[str]] = [[] for _ in group_names]
    for name, group in zip(names, group_ids):
        members[group].append(name)
    group_by_column = {name: group_names[group] for name, group in zip(names, group_ids)}
    return encoder, GroupIndex(group_names, group_ids, tuple(map(tuple, members)), n_encoded, group_by_column)


__all__ = ["Problem", "Settings"]
