"""Mini-batch training on streamed rows: the shuffled batch stream, the proximal SGD step, and
scoring on the bounded in-memory sample of held-out rows.

Every function works the same in one process and in each rank of a torchrun job: the model is
wrapped in DistributedDataParallel when there are several ranks, and every number a decision is
taken from (losses, counts) is all-reduced, so the ranks take the same decisions.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import torch

from glselect import distributed
from glselect.config import RunConfig
from glselect.data.encoder import Encoder, encode
from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.model.prox import group_soft_threshold
from glselect.data.parquet import TEST, TRAIN, VAL, RowGroup, iter_batches, row_hash, split_of
from glselect.solve.train import TrainResult

PATIENCE = 4  # validation checks without improvement before the dense fit or the refit stops
CHECKS_PER_EPOCH = 4
EVAL_ROWS = 65_536  # holdout rows scored at once
# row groups read side by side and shuffled together in the training stream: up to 4, as many as
# fit in MIX_BYTES of uncompressed data (each costs about twice its size while it is read:
# measured 720 MB peak with one 80 MB row group at a time, 870 MB with two, 1,230 MB with four)
MAX_MIX_ROW_GROUPS = 4
MIX_BYTES = 384 << 20


@dataclass(frozen=True)
class Holdout:
    """Encoded held-out rows kept in memory: X (n, n_features), y (n,), on the training device."""

    X: torch.Tensor
    y: torch.Tensor
    n_rows: int  # all rows of this part, over every rank (the sample holds at most max_holdout_rows)


class HoldoutSampler:
    """Keeps the raw rows of a hashed sample of validation and test rows during the statistics pass."""

    def __init__(self, config: RunConfig, n_rows: int) -> None:
        self.val_f, self.test_f = config.data.val_fraction, config.data.test_fraction
        cap = config.stream.max_holdout_rows
        self.val_keep = self.val_f * min(1.0, cap / max(n_rows * self.val_f, 1.0))
        self.test_keep = self.test_f * min(1.0, cap / max(n_rows * self.test_f, 1.0))
        self.seed = config.seed
        self.kept: dict[int, list[pa.RecordBatch]] = {VAL: [], TEST: []}

    def __call__(self, batch: pa.RecordBatch, positions: np.ndarray, parts: np.ndarray) -> None:
        u = row_hash(positions, self.seed)
        # the lowest slice of each part's hash interval: an unbiased sample of a fixed expected size
        keep = {TEST: u < self.test_keep, VAL: (parts == VAL) & (u < self.test_f + self.val_keep)}
        for part, mask in keep.items():
            if mask.any():
                self.kept[part].append(batch.filter(pa.array(mask)))

    def encoded(self, part: int, encoder: Encoder, schema: pa.Schema, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        table = pa.Table.from_batches(self.kept[part]) if self.kept[part] else schema.empty_table()
        self.kept[part] = []
        design = encode(encoder, table.to_pandas(date_as_object=False))
        return torch.from_numpy(design.X).to(device), torch.from_numpy(design.y).to(device)


def local_batch_size(config: RunConfig, world_size: int) -> int:
    """Each rank's share of a mini-batch: DDP averages the ranks' gradients, so the global batch
    (and the statistics of each step) is ``--batch-size`` whatever the number of processes."""
    return max(1, math.ceil(config.stream.batch_size / world_size))


class TrainingStream:
    """Endless shuffled mini-batches of encoded training rows from this rank's row groups.

    Each epoch visits the row groups in a seeded order, a few side by side, and shuffles their
    rows together; it yields exactly ``steps_per_epoch`` mini-batches (the same count on every
    rank, so DDP's collective calls line up). Only a few record batches are held at a time.
    """

    def __init__(
        self, row_groups: tuple[RowGroup, ...], columns: list[str], encoder: Encoder, config: RunConfig,
        steps_per_epoch: int, device: torch.device, world_size: int = 1,
    ) -> None:
        self.row_groups, self.columns, self.encoder = row_groups, columns, encoder
        self.seed, self.val_f, self.test_f = config.seed, config.data.val_fraction, config.data.test_fraction
        self.batch_size = local_batch_size(config, world_size)
        self.steps_per_epoch = steps_per_epoch
        self.device = device
        self.n_mixed = max(1, min(MAX_MIX_ROW_GROUPS, MIX_BYTES // max(max(group.n_bytes for group in row_groups), 1)))
        self.epoch = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self._epoch()
            self.epoch += 1

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.row_groups))
        n_yielded = 0
        carry: tuple[torch.Tensor, torch.Tensor] | None = None
        for X, y in self._mixed_chunks(order, rng):
            if carry is not None:
                X, y = torch.cat([carry[0], X]), torch.cat([carry[1], y])
                carry = None
            start = 0
            while start + self.batch_size <= len(y):
                yield X[start : start + self.batch_size], y[start : start + self.batch_size]
                n_yielded += 1
                if n_yielded == self.steps_per_epoch:
                    return
                start += self.batch_size
            if start < len(y):
                carry = (X[start:], y[start:])
        if carry is not None and n_yielded < self.steps_per_epoch:
            yield carry
            n_yielded += 1
        if n_yielded < self.steps_per_epoch:  # cannot happen: steps_per_epoch is the smallest rank's count
            raise RuntimeError(f"training stream yielded {n_yielded} of {self.steps_per_epoch} mini-batches")

    def _mixed_chunks(self, order: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Encoded training rows, shuffled across ``n_mixed`` row groups read side by side.

        Files are often sorted (by time, by customer): rows of one row group are alike, and
        mini-batches drawn from one at a time would pull the weights back and forth. Reading a
        few row groups in turn and shuffling their record batches together breaks that up, for
        the memory of ``n_mixed`` row groups.
        """
        for first in range(0, len(order), self.n_mixed):
            readers = [iter_batches((self.row_groups[i],), self.columns) for i in order[first : first + self.n_mixed]]
            while readers:
                pieces = []
                for reader in list(readers):
                    piece = next(reader, None)
                    if piece is None:
                        readers.remove(reader)
                    else:
                        pieces.append(self._encoded_training_rows(*piece))
                pieces = [piece for piece in pieces if len(piece[1])]
                if not pieces:
                    continue
                X_host = np.concatenate([piece[0] for piece in pieces])
                y_host = np.concatenate([piece[1] for piece in pieces])
                # one host-to-device copy per chunk; mini-batches are slices on the device
                X = torch.from_numpy(X_host).to(self.device, non_blocking=True)
                y = torch.from_numpy(y_host).to(self.device, non_blocking=True)
                permutation = torch.from_numpy(rng.permutation(len(y_host))).to(self.device)
                yield X[permutation], y[permutation]

    def _encoded_training_rows(self, batch: pa.RecordBatch, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        is_train = split_of(positions, self.seed, self.val_f, self.test_f) == TRAIN
        has_target = ~batch.column(batch.num_columns - 1).is_null().to_numpy(zero_copy_only=False)
        design = encode(self.encoder, batch.filter(pa.array(is_train & has_target)).to_pandas(date_as_object=False))
        return design.X, design.y


@dataclass
class Phase:
    """Running sums of one training phase, kept on the device (read once at the end, not per step)."""

    loss_sum: torch.Tensor
    late_loss_sum: torch.Tensor
    n_steps: int = 0


class Trainer:
    """SGD with momentum on ``model`` (through DDP when distributed), followed by the proximal steps."""

    def __init__(self, model: GroupLassoMLP, config: RunConfig, context: distributed.Context, columns: torch.Tensor | None = None) -> None:
        self.model = model
        self.module = distributed.wrap(model, context)
        self.columns = columns  # encoded columns this model reads (None: all)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=config.stream.learning_rate, momentum=config.stream.momentum)
        # with momentum beta a steady gradient moves the weights by lr / (1 - beta) per step: the prox
        # threshold uses that effective step, so fixed points meet the KKT conditions at lam itself
        self.effective_step = config.stream.learning_rate / (1.0 - config.stream.momentum)
        self.max_norm = config.model.max_norm
        self.thresholds: torch.Tensor | None = None
        self.group_ids: torch.Tensor | None = None

    def set_penalty(self, group_ids: torch.Tensor, weights: torch.Tensor, lam: float) -> None:
        self.group_ids, self.thresholds = group_ids, self.effective_step * lam * weights

    def run(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], n_steps: int, loss_fn: Callable) -> Phase:
        device = self.model.first_weight.device
        phase = Phase(torch.zeros((), dtype=torch.float64, device=device), torch.zeros((), dtype=torch.float64, device=device))
        for step in range(n_steps):
            X, y = next(batches)
            if self.columns is not None:
                X = X.index_select(1, self.columns)
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(self.module(X), y)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                if self.thresholds is not None:
                    self.model.first_weight.copy_(group_soft_threshold(self.model.first_weight, self.group_ids, self.thresholds))
                self.model.bound_later_layers_(self.max_norm)
                phase.loss_sum += loss.detach()
                if 2 * step >= n_steps:
                    phase.late_loss_sum += loss.detach()
        phase.n_steps = n_steps
        return phase


@torch.no_grad()
def holdout_loss(
    model: GroupLassoMLP, holdout: Holdout, row_loss_fn: Callable, context: distributed.Context, columns: torch.Tensor | None = None
) -> tuple[float, float]:
    """Mean loss over every rank's holdout rows and its standard error (all-reduced: the same on every rank)."""
    sums = torch.zeros(3, dtype=torch.float64, device=holdout.X.device)
    for start in range(0, len(holdout.y), EVAL_ROWS):
        X = holdout.X[start : start + EVAL_ROWS]
        if columns is not None:
            X = X.index_select(1, columns)
        losses = row_loss_fn(model(X), holdout.y[start : start + EVAL_ROWS]).double()
        sums += torch.stack([losses.sum(), (losses * losses).sum(), torch.tensor(float(losses.numel()), dtype=torch.float64, device=sums.device)])
    total, squares, n = distributed.all_reduce_sum(sums, context).tolist()
    if n == 0:
        return math.nan, math.nan
    mean = total / n
    variance = max(squares / n - mean * mean, 0.0)
    return mean, math.sqrt(variance * n / max(n - 1, 1)) / math.sqrt(n)


def phase_losses(phase: Phase, context: distributed.Context) -> tuple[float, float, float]:
    """Mean training loss of the phase, of its first half and of its second half (over ranks)."""
    sums = distributed.all_reduce_sum(torch.stack([phase.loss_sum, phase.late_loss_sum]).cpu(), context) / context.world_size
    total, late = sums.tolist()
    n_late = phase.n_steps - (phase.n_steps + 1) // 2
    n_early = phase.n_steps - n_late
    mean = total / max(phase.n_steps, 1)
    return mean, (total - late) / max(n_early, 1), late / max(n_late, 1)


def train_early_stopped(
    trainer: Trainer, batches: Iterator, holdout: Holdout, loss_fn: Callable, row_loss_fn: Callable,
    steps_per_epoch: int, max_epochs: float, context: distributed.Context,
) -> TrainResult:
    """Unpenalised training checked on the validation sample a few times an epoch; keeps the best weights."""
    check_steps = max(1, steps_per_epoch // CHECKS_PER_EPOCH)
    max_steps = max(1, round(max_epochs * steps_per_epoch))
    best, _ = holdout_loss(trainer.model, holdout, row_loss_fn, context, trainer.columns)
    best_state = copy.deepcopy(trainer.model.state_dict())
    n_steps, without_gain, stopped = 0, 0, False
    while n_steps < max_steps:
        phase = trainer.run(batches, min(check_steps, max_steps - n_steps), loss_fn)
        n_steps += phase.n_steps
        if not math.isfinite(phase_losses(phase, context)[0]):
            raise GlselectError("training diverged: the loss is not finite", hint="lower --learning-rate or check the table for extreme values")
        val_loss, _ = holdout_loss(trainer.model, holdout, row_loss_fn, context, trainer.columns)
        if val_loss < best - 1e-6 * abs(best):
            best, best_state, without_gain = val_loss, copy.deepcopy(trainer.model.state_dict()), 0
        else:
            without_gain += 1
            if without_gain >= PATIENCE:
                stopped = True
                break
    trainer.model.load_state_dict(best_state)
    return TrainResult(n_iters=n_steps, best_val_loss=best, stopped_early=stopped)
