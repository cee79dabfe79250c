"""The streamed batch source: a Parquet dataset (or a table shared across torchrun ranks) read in
record batches, never whole.

``StreamData.open`` makes one statistics pass (merged over ranks, so every rank builds the same
encoder), then serves any ``RowSet`` as

- ``MiniBatches``: endless shuffled mini-batches of this rank's rows, for proximal SGD; each
  solver run asks for its own stream by a key, so a run is reproducible and a resumed path reads
  exactly what an uninterrupted one would;
- ``holdout``: a bounded sample of the rows, encoded in memory and gathered to every rank, so
  every decision taken on held-out rows is the same on every rank.

Memory holds a few record batches, the model and the holdout samples, whatever the row count.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from glselect import distributed
from glselect.config import RunConfig
from glselect.data.encoder import ColumnRules, Encoder, build_encoder, check_named_columns, columns_left_out, encode
from glselect.data.groups import GroupIndex, build_group_index
from glselect.data.io import read_arrow_table, read_group_map
from glselect.data.knockoffs import GaussianKnockoffs, Moments, MomentSums
from glselect.data.names import target_not_found
from glselect.data.parquet import (
    READ_ROWS,
    Piece,
    Source,
    available_memory,
    estimated_bytes,
    is_parquet_dataset,
    open_source,
    row_groups_of_rank,
    slice_table,
)
from glselect.data.prefetch import prefetched
from glselect.data.reading import ReadReport, read_report
from glselect.data.source import Rows, require_rows
from glselect.data.split import TEST, TRAIN, VAL, RowSet, SplitSettings, row_hash, split_of
from glselect.data.stats import StreamStats, collect_stats, column_kinds, read_batches
from glselect.data.survival import check_survival_columns, survival_columns
from glselect.data.target import encode_target, target_column
from glselect.errors import GlselectError

# row groups read side by side and shuffled together in the training stream: up to 4, as many as
# fit in MIX_BYTES of uncompressed data. Each open reader holds its whole decoded row group (see
# RowGroup.batches), so this is the memory mixing costs: reading one epoch (no training) of
# 3,000,000 rows x 51 float32 columns in row groups of 262,144 rows (53 MB decoded, 78 MB by the
# metadata) peaked at 741 MB resident with four side by side and 636 MB with two
MAX_MIX_ROW_GROUPS = 4
MIX_BYTES = 160 << 20
HOLDOUT_SALT = 7  # the sample of a large holdout: the rows with the smallest hash under this salt
# --batch-size not given: DEFAULT_BATCH_SIZE rows a step, fewer on a small table so that a pass over the
# training rows makes MIN_STEPS_PER_EPOCH steps (measured: a 2,000-row table at 1,024 rows a step made 2
# steps an epoch and a model that predicted one class; at 38 rows a step, balanced accuracy 0.81)
DEFAULT_BATCH_SIZE = 1024
MIN_STEPS_PER_EPOCH = 32
MIN_BATCH_SIZE = 32  # below this, a step's gradient is mostly noise
FEW_DENSE_STEPS = 100  # a dense fit of fewer optimiser steps is likely far from converged: say so


def wants_streaming(config: RunConfig) -> bool:
    """Stream when asked (``--stream``), under torchrun, for a directory, or when a Parquet table
    would not fit the memory budget. Under torchrun a CSV streams too: every rank reads it and
    trains on its share.

    Raises
    ------
    GlselectError
        ``--stream`` is asked for but the table is not Parquet.
    """
    table = config.table
    if distributed.launched_by_torchrun():
        return True
    if table.exists() and not is_parquet_dataset(table):
        if config.stream.stream is True:
            raise GlselectError(
                f"--stream needs a Parquet file or a directory of Parquet files, but '{table}' is not one",
                hint="convert the table to Parquet (e.g. pandas: read_csv(...).to_parquet(...)), or drop --stream",
            )
        return False
    if config.stream.stream is True or table.is_dir():
        return True
    if config.stream.stream is False or not table.exists():
        return False
    budget = config.stream.memory_budget or available_memory() // 4
    return estimated_bytes(open_source(table), target_column(config)) > budget


def choose_batch_size(asked: int | None, n_train: int) -> int:
    """``--batch-size`` when given, else up to ``DEFAULT_BATCH_SIZE`` rows, so an epoch makes ``MIN_STEPS_PER_EPOCH`` steps."""
    if asked is not None:
        return asked
    return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, math.ceil(n_train / MIN_STEPS_PER_EPOCH)))


def few_steps_warning(n_train: int, batch_size: int, max_epochs: float) -> str | None:
    """A warning when the dense fit's mini-batch SGD would take fewer than ``FEW_DENSE_STEPS`` steps."""
    steps = max(1, math.ceil(n_train / batch_size)) * max_epochs
    if steps >= FEW_DENSE_STEPS:
        return None
    return (
        f"the streamed fit makes about {steps:.0f} optimiser steps for the dense model ({n_train} training rows, "
        f"{batch_size} a step, --max-epochs {max_epochs:g}): too few to converge; lower --batch-size, raise --max-epochs, "
        "or fit a table this small in memory (without --stream)"
    )


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Each rank's share of a mini-batch: DDP averages the ranks' gradients, so the global batch
    (and the statistics of each step) is ``--batch-size`` whatever the number of processes."""
    return max(1, math.ceil(batch_size / world_size))


@dataclass
class StreamData:
    """A table opened for streaming on this rank (see the module docstring)."""

    encoder: Encoder
    group_index: GroupIndex
    device: torch.device
    context: distributed.Context
    n_rows_by_part: tuple[int, int, int]
    n_missing_target: int
    source: Source
    pieces: tuple[Piece, ...]  # this rank's row groups (or ranges of their rows, or table slices)
    columns: list[str]  # the columns read again after the statistics pass: used features and the target
    seed: int
    val_fraction: float
    test_fraction: float
    batch_size: int  # global rows per optimizer step
    max_holdout_rows: int
    n_mixed: int
    _counts: dict[RowSet, int] = field(default_factory=dict)
    # (sampler, draw): every encoded batch gets its rows' knockoff copies appended (``with_knockoffs``)
    knockoffs: tuple[GaussianKnockoffs, int] | None = None
    reading: ReadReport | None = None  # what the statistics pass found (the same on every rank)
    _epoch_speeds: list[float] = field(default_factory=list)  # rows per second of each whole training epoch

    # ----- opening: one statistics pass -------------------------------------------------------
    @classmethod
    def open(cls, config: RunConfig, device: torch.device, context: distributed.Context) -> StreamData:
        """Read the statistics of ``config.table`` (this rank's share, merged over ranks) and fit the encoder.

        Raises
        ------
        GlselectError
            Bad input (as the in-memory fit), on any rank: every rank raises the same error.
        """
        if is_parquet_dataset(config.table):
            source = open_source(config.table)
        else:  # a CSV under torchrun: every rank reads it and streams its own slices
            table = read_arrow_table(config.table, config.data.sep, config.data.decimal)
            # several slices per rank, so the shuffled epochs mix rows from across the table
            source = slice_table(config.table, table, max(1, min(READ_ROWS, math.ceil(table.num_rows / (8 * context.world_size)))))
        target, table_columns = target_column(config), source.columns
        if config.is_survival:  # the event column is folded into the time column (the target) as batches are read
            time, event = survival_columns(config)
            check_survival_columns(source.columns, time, event, config.data.features, config.data.drop, str(config.table))
            table_columns = [name for name in source.columns if name != event]
        if target not in source.columns:
            raise target_not_found(target, source.columns, str(config.table))
        columns = [name for name in table_columns if name != target]
        left_out = columns_left_out(table_columns, target, config.data.features, config.data.drop, str(config.table))
        check_named_columns(config.data.categorical, table_columns, "--categorical", str(config.table))
        rules = ColumnRules(config.data.max_levels, left_out, frozenset(config.data.categorical))
        pieces = row_groups_of_rank(source, context.rank, context.world_size)
        if not pieces:  # row groups are shared out by rows when too few: only a table of fewer rows than processes
            raise GlselectError(
                f"'{config.table}' has {source.n_rows} rows, fewer than the {context.world_size} processes",
                hint="launch fewer processes",
            )
        kinds = column_kinds(source, columns, rules.excluded, rules.categorical)
        split = SplitSettings(config.seed, config.data.val_fraction, config.data.test_fraction)
        outcome: StreamStats | GlselectError
        try:
            outcome = collect_stats(pieces, target, columns, kinds, split, event=config.event)
        except GlselectError as err:
            outcome = err  # every rank must learn of it, or the others would wait for this one forever
        gathered = distributed.gather_or_raise(outcome, context)
        stats: StreamStats = copy.deepcopy(gathered[0])
        for other in gathered[1:]:
            stats.merge(other)
        require_rows(sum(stats.n_rows_by_part))
        if min(stats.n_rows_by_part) == 0:
            raise GlselectError("too few rows: no training, validation or test rows were drawn", hint="use a larger table")
        encoder = build_encoder(stats, source, target, config.data.task, rules, config.event)
        group_map = read_group_map(config.groups) if config.groups is not None else None
        group_index = build_group_index(
            encoder.sources, group_map, table_columns=table_columns, target=target, map_source=str(config.groups)
        )
        used = [column.name for column in encoder.columns if column.kind != "ignored"]  # ignored columns are never read again
        largest = max(piece.n_bytes for piece in pieces)
        n_train = stats.n_rows_by_part[TRAIN]
        batch_size = choose_batch_size(config.stream.batch_size, n_train)
        reading = read_report(stats, encoder, stats.target.n_missing)
        warning = few_steps_warning(n_train, batch_size, config.stream.max_epochs)
        if warning is not None:
            reading = reading.with_warning(warning)
        return cls(
            encoder=encoder,
            group_index=group_index,
            device=device,
            context=context,
            n_rows_by_part=(stats.n_rows_by_part[TRAIN], stats.n_rows_by_part[VAL], stats.n_rows_by_part[TEST]),
            n_missing_target=stats.target.n_missing,
            source=source,
            pieces=pieces,
            columns=[*used, target],
            seed=config.seed,
            val_fraction=config.data.val_fraction,
            test_fraction=config.data.test_fraction,
            batch_size=batch_size,
            max_holdout_rows=config.stream.max_holdout_rows,
            n_mixed=max(1, min(MAX_MIX_ROW_GROUPS, MIX_BYTES // max(largest, 1))),
            reading=reading,
        )

    # ----- the rows of a RowSet ---------------------------------------------------------------
    def _rows_of(
        self, rows: RowSet, pieces: tuple | None = None, columns: list[str] | None = None, batch_rows: int = READ_ROWS
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """This rank's record batches (of up to ``batch_rows`` rows as read) restricted to ``rows`` (and to rows
        with a target), with positions.

        ``columns``: what to read (default: the used features and the target); the target must be last.
        """
        pieces = self.pieces if pieces is None else pieces
        for batch, positions in read_batches(pieces, columns or self.columns, self.encoder.target.event, batch_rows):
            has_target = ~batch.column(batch.num_columns - 1).is_null().to_numpy(zero_copy_only=False)
            parts = split_of(positions, self.seed, self.val_fraction, self.test_fraction)
            keep = has_target & rows.mask(parts, positions, self.seed)
            if keep.any():
                yield batch.filter(pa.array(keep)), positions[keep]
            del batch  # it pins its decoded row group (parquet.iter_batches): not while the next group is read

    def _encoded(self, batch: pa.RecordBatch, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        design = encode(self.encoder, batch)  # numeric columns straight from the Arrow arrays
        if self.knockoffs is None:
            return design.X, design.y
        # a row's copy is a function of its position alone: the same in every epoch, batch and rank
        sampler, draw = self.knockoffs
        return np.hstack([design.X, sampler.draw(design.X, positions, draw)]), design.y

    @property
    def n_features(self) -> int:
        """Encoded columns served (twice the encoder's with knockoff copies appended)."""
        return len(self.encoder.feature_names) * (1 if self.knockoffs is None else 2)

    def moments(self, rows: RowSet) -> Moments:
        """Mean and covariance of the encoded columns over ``rows``: one pass, summed over ranks."""
        sums = MomentSums.empty(len(self.encoder.feature_names))
        for batch, _positions in self._rows_of(rows):
            sums.add(encode(self.encoder, batch).X)
        n_rows = distributed.all_reduce_sum(torch.tensor([float(sums.n_rows)], dtype=torch.float64), self.context)
        total = distributed.all_reduce_sum(torch.from_numpy(sums.total), self.context)
        cross = distributed.all_reduce_sum(torch.from_numpy(sums.cross), self.context)
        return MomentSums(int(n_rows.item()), total.numpy(), cross.numpy()).moments()

    def with_knockoffs(self, sampler: GaussianKnockoffs, draw: int) -> StreamData:
        """The same stream serving ``[X, X~]``: each batch's knockoff copies (draw ``draw``) appended as columns."""
        return dataclasses.replace(self, knockoffs=(sampler, draw))

    def count(self, rows: RowSet) -> int:
        """Rows of ``rows`` on this rank (one pass over the target column, remembered)."""
        if rows not in self._counts:
            target_only = self.columns[-1:]  # counting needs no feature column
            self._counts[rows] = sum(len(positions) for _, positions in self._rows_of(rows, columns=target_only))
        return self._counts[rows]

    def training(self, rows: RowSet) -> MiniBatches:
        local = local_batch_size(self.batch_size, self.context.world_size)
        # DDP's collective calls line up only if every rank takes the same number of steps
        steps = distributed.all_reduce_min(max(math.ceil(self.count(rows) / local), 0), self.context)
        if steps == 0:
            raise GlselectError(f"a process's share of '{self.source.path}' has no training rows", hint="launch fewer processes")
        return MiniBatches(self, rows, steps_per_epoch=steps)

    def holdout(self, rows: RowSet) -> Rows:
        """Every row of ``rows`` (at most ``max_holdout_rows``: those with the smallest hash), encoded,
        the same on every rank, in position order."""
        cap = self.max_holdout_rows
        # the sample's rows are known from their positions before any feature is read: only they are encoded and
        # kept, so memory holds the sample and one record batch, not the sample and what is read beyond it
        threshold = self._holdout_threshold(rows, cap)
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (positions, X, y)
        for batch, positions in self._rows_of(rows):
            if threshold is not None:
                keep = row_hash(positions, self.seed, HOLDOUT_SALT) <= threshold
                if not keep.any():
                    continue
                batch, positions = batch.filter(pa.array(keep)), positions[keep]
            X, y = self._encoded(batch, positions)
            kept.append((positions, X, y))
            del batch
        local = _smallest_hashes(kept, cap, self.seed) if kept else None  # rows tied at the threshold: back to the cap
        gathered = [part for part in distributed.all_gather_objects(local, self.context) if part is not None]
        if not gathered:
            n_features = self.n_features
            return Rows(torch.zeros((0, n_features), device=self.device), torch.zeros(0, device=self.device))
        positions, X, y = _smallest_hashes(gathered, cap, self.seed)
        order = np.argsort(positions, kind="stable")
        return Rows(torch.from_numpy(X[order]).to(self.device), torch.from_numpy(y[order]).to(self.device))

    def _holdout_threshold(self, rows: RowSet, cap: int) -> float | None:
        """The ``cap``-th smallest holdout hash among this rank's rows of ``rows`` (None: they are ``cap`` or fewer),
        from one pass over the target column; the row count is remembered on the way (``count``)."""
        smallest = np.zeros(0, dtype=np.float64)
        n_rows = 0
        for _, positions in self._rows_of(rows, columns=self.columns[-1:]):
            n_rows += len(positions)
            smallest = np.concatenate([smallest, row_hash(positions, self.seed, HOLDOUT_SALT)])
            if len(smallest) > 2 * cap:  # a buffer of at most 2 x cap hashes, whatever the row count
                smallest = np.partition(smallest, cap - 1)[:cap]
        self._counts[rows] = n_rows
        return None if n_rows <= cap else float(np.partition(smallest, cap - 1)[cap - 1])

    def class_counts(self, rows: RowSet) -> np.ndarray:
        n_classes = len(self.encoder.target.classes)
        counts = np.zeros(n_classes, dtype=np.int64)
        for batch, _ in self._rows_of(rows, columns=self.columns[-1:]):  # the target column alone
            labels = encode_target(self.encoder.target, batch.column(0).to_pandas())
            counts += np.bincount(labels, minlength=n_classes)
        return distributed.all_reduce_sum(torch.from_numpy(counts), self.context).numpy()

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.encoder.to_dict(), sort_keys=True, default=str).encode())
        digest.update(json.dumps([str(self.source.path), self.source.n_rows, list(self.n_rows_by_part)]).encode())
        digest.update(self.group_index.group_ids.tobytes())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "processes": self.context.world_size,
            "device": str(self.device),
            "row_groups": len(self.source.row_groups),
            "row_groups_mixed": self.n_mixed,
            "batch_size": self.batch_size,
            "epochs_timed": len(self._epoch_speeds),
            "rows_per_second_per_epoch": None
            if not self._epoch_speeds
            else {
                "median": round(float(np.median(self._epoch_speeds))),
                "min": round(min(self._epoch_speeds)),
                "max": round(max(self._epoch_speeds)),
            },
        }

    # ----- mini-batches -----------------------------------------------------------------------
    def batches(self, rows: RowSet, steps_per_epoch: int, key: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled mini-batches of ``rows``, exactly ``steps_per_epoch`` an epoch, fixed by ``key``."""
        epoch = 0
        while True:
            started, n_rows = time.perf_counter(), 0
            for X, y in self._epoch(rows, steps_per_epoch, np.random.default_rng([self.seed, key, epoch])):
                n_rows += len(y)
                yield X, y
            # a whole epoch, reading and computing: what a user waits for (epochs left mid-way are not counted)
            self._epoch_speeds.append(n_rows / max(time.perf_counter() - started, 1e-9))
            epoch += 1

    def _epoch(self, rows: RowSet, steps_per_epoch: int, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batch_size = local_batch_size(self.batch_size, self.context.world_size)
        order = rng.permutation(len(self.pieces))
        n_yielded = 0
        carry: tuple[torch.Tensor, torch.Tensor] | None = None
        for X, y in prefetched(self._mixed_chunks(rows, order, rng)):
            if carry is not None:
                X, y = torch.cat([carry[0], X]), torch.cat([carry[1], y])
                carry = None
            start = 0
            while start + batch_size <= len(y):
                yield X[start : start + batch_size], y[start : start + batch_size]
                n_yielded += 1
                if n_yielded == steps_per_epoch:
                    return
                start += batch_size
            if start < len(y):
                carry = (X[start:], y[start:])
        if carry is not None and n_yielded < steps_per_epoch:
            yield carry
            n_yielded += 1
        if n_yielded < steps_per_epoch:  # cannot happen: steps_per_epoch is the smallest rank's count
            raise RuntimeError(f"training stream yielded {n_yielded} of {steps_per_epoch} mini-batches")

    def _mixed_chunks(self, rows: RowSet, order: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Encoded rows, shuffled across ``n_mixed`` row groups read side by side.

        Files are often sorted (by time, by customer): rows of one row group are alike, and
        mini-batches drawn from one at a time would pull the weights back and forth. Reading a
        few row groups in turn and shuffling their record batches together breaks that up, for
        the memory of ``n_mixed`` row groups.
        """
        for first in range(0, len(order), self.n_mixed):
            # each reader reads its share of READ_ROWS at a time: a chunk holds about READ_ROWS rows however
            # many row groups are mixed, so memory does not grow with the number of row groups
            batch_rows = max(1, READ_ROWS // self.n_mixed)
            readers = [self._rows_of(rows, (self.pieces[i],), batch_rows=batch_rows) for i in order[first : first + self.n_mixed]]
            while readers:
                pieces = []
                for reader in list(readers):
                    piece = next(reader, None)
                    if piece is None:
                        readers.remove(reader)
                    else:
                        pieces.append(self._encoded(*piece))
                if not pieces:
                    continue
                X_host = np.concatenate([piece[0] for piece in pieces])
                y_host = np.concatenate([piece[1] for piece in pieces])
                # one host-to-device copy per chunk; mini-batches are slices on the device
                X, y = torch.from_numpy(X_host), torch.from_numpy(y_host)
                if self.device.type == "cuda":  # page-locked, so the copy runs beside the solver's kernels
                    X, y = X.pin_memory(), y.pin_memory()
                X = X.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                permutation = torch.from_numpy(rng.permutation(len(y_host))).to(self.device)
                yield X[permutation], y[permutation]


def _smallest_hashes(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], cap: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``cap`` rows with the smallest hash: a sample that does not depend on reading order or ranks."""
    positions = np.concatenate([part[0] for part in parts])
    X = np.concatenate([part[1] for part in parts])
    y = np.concatenate([part[2] for part in parts])
    if len(positions) > cap:
        keep = np.argsort(row_hash(positions, seed, HOLDOUT_SALT), kind="stable")[:cap]
        positions, X, y = positions[keep], X[keep], y[keep]
    return positions, X, y


@dataclass(frozen=True)
class MiniBatches:
    """Training rows as mini-batches of a stream (for proximal SGD), optionally reading some columns only."""

    data: StreamData
    rows: RowSet
    steps_per_epoch: int
    column_index: torch.Tensor | None = None

    @property
    def n_features(self) -> int:
        return self.data.n_features if self.column_index is None else int(self.column_index.numel())

    @property
    def context(self) -> distributed.Context:
        return self.data.context

    def columns(self, columns: torch.Tensor | None) -> MiniBatches:
        if columns is None:
            return self
        composed = columns if self.column_index is None else self.column_index[columns.to(self.column_index.device)]
        return MiniBatches(self.data, self.rows, self.steps_per_epoch, composed.to(self.data.device))

    def work(self) -> int:
        return local_batch_size(self.data.batch_size, self.data.context.world_size) * self.n_features

    def stream(self, key: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches ``(X, y)`` fixed by ``key`` (each solver run takes its own)."""
        for X, y in self.data.batches(self.rows, self.steps_per_epoch, key):
            yield (X if self.column_index is None else X.index_select(1, self.column_index)), y


def local_cores() -> int:
    """The cores this process's share of the machine has (torchrun may start several on one machine)."""
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


__all__ = ["TEST", "TRAIN", "VAL", "MiniBatches", "StreamData", "local_batch_size", "local_cores", "row_hash", "wants_streaming"]
