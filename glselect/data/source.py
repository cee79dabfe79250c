"""Where a fit's rows come from: the batch-source interface and its in-memory implementation.

Every stage above ``data/`` sees rows in two forms only:

- ``Rows``: encoded rows held in memory on the training device (validation and test rows, CV
  folds' held-out rows). They are the same on every torchrun rank, so every decision taken from
  them (early stopping, relaxed scores, confirmation) is the same on every rank.
- training rows, served to a solver: ``FullBatch`` (every training row at once, for the exact
  full-batch solver) or ``MiniBatches`` (``data/stream.py``: shuffled mini-batches of a Parquet
  dataset or of a table shared across ranks, for proximal SGD).

A ``Dataset`` hands out both for any ``RowSet`` (``data/split.py``), which is how CV folds and
stability halves get their rows whatever the source.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
import torch

from glselect import distributed
from glselect.data.encoder import Encoder
from glselect.data.groups import GroupIndex
from glselect.data.knockoffs import GaussianKnockoffs, Moments
from glselect.data.reading import ReadReport
from glselect.data.split import TEST, TRAIN, VAL, RowSet, row_hash, split_of
from glselect.errors import GlselectError

MIN_ROWS = 20  # fewer rows cannot be split into training, validation and test rows
InMemory = TypeVar("InMemory", bound="InMemoryData")


@dataclass(frozen=True)
class Rows:
    """Encoded rows in memory: X float32 (n_rows, n_features), y (n_rows,), on the training device."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def columns(self, columns: torch.Tensor | None) -> Rows:
        """The same rows, reading only ``columns`` (int64 indices; None: all)."""
        return self if columns is None else Rows(self.X.index_select(1, columns.to(self.X.device)), self.y)


@dataclass(frozen=True)
class FullBatch:
    """Every training row at once: the exact full-batch solver's input (one process, in memory)."""

    rows: Rows

    @property
    def n_features(self) -> int:
        return int(self.rows.X.shape[1])

    def columns(self, columns: torch.Tensor | None) -> FullBatch:
        return FullBatch(self.rows.columns(columns))

    def work(self) -> int:
        """Rows x columns of one pass: what the thread policy sizes itself by."""
        return len(self.rows) * self.n_features

    @property
    def steps_per_epoch(self) -> int:
        """One: a full batch passes over every row in each step."""
        return 1


class TrainingRows(Protocol):
    """What a solver reads: ``FullBatch`` or ``stream.MiniBatches``."""

    @property
    def n_features(self) -> int: ...

    @property
    def steps_per_epoch(self) -> int: ...

    def columns(self, columns: torch.Tensor | None) -> TrainingRows: ...

    def work(self) -> int: ...


class Dataset(Protocol):
    """A table opened for fitting: its encoding, its groups, and its rows by ``RowSet``."""

    # read-only: a dataset is opened once and never changed in place (``with_knockoffs`` makes another)
    @property
    def encoder(self) -> Encoder: ...

    @property
    def group_index(self) -> GroupIndex: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def context(self) -> distributed.Context: ...

    @property
    def n_rows_by_part(self) -> tuple[int, int, int]:
        """Rows with a target in the training, validation and test parts."""
        ...

    @property
    def n_missing_target(self) -> int: ...

    @property
    def reading(self) -> ReadReport | None:
        """What reading the table found; None for rows encoded by the caller."""
        ...

    def training(self, rows: RowSet) -> TrainingRows: ...

    def holdout(self, rows: RowSet) -> Rows: ...

    def class_counts(self, rows: RowSet) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def describe(self) -> dict[str, Any] | None: ...

    def moments(self, rows: RowSet) -> Moments: ...

    def with_knockoffs(self, sampler: GaussianKnockoffs, draw: int) -> Dataset: ...


def require_rows(n_rows: int, min_rows: int = MIN_ROWS) -> None:
    """Stop a fit on a table with fewer than ``min_rows`` usable rows (too few for training, validation and test
    rows): the one floor, for a table read whole and for the statistics pass of a stream alike.

    Raises
    ------
    GlselectError
        Naming the rows found and the rows needed.
    """
    if n_rows < min_rows:
        raise GlselectError(f"the table has {n_rows} usable row{'' if n_rows == 1 else 's'}; glselect needs at least {min_rows}")


def hash_split(positions: np.ndarray, seed: int, val_fraction: float, test_fraction: float, min_rows: int = MIN_ROWS) -> np.ndarray:
    """``split_of`` for a table whose every row is known: a part left empty by chance on a tiny
    table takes the training row whose hash is nearest to it, so each part has a row.
    ``min_rows``: the fewest rows accepted (the scikit-learn selector goes down to 3, one per part)."""
    require_rows(len(positions), min_rows)
    parts = split_of(positions, seed, val_fraction, test_fraction)
    u = row_hash(positions, seed)
    for part in (TEST, VAL):
        if not (parts == part).any():
            train = np.flatnonzero(parts == TRAIN)
            parts[train[np.argmin(u[train])]] = part
    return parts


@dataclass(frozen=True)
class InMemoryData:
    """A table encoded whole and moved to the device once; the full-batch solver reads it directly."""

    encoder: Encoder
    group_index: GroupIndex
    X: np.ndarray  # float32 (n_rows, n_features): every row with a target
    y: np.ndarray
    positions: np.ndarray  # int64 (n_rows,): each row's position in the file (the split's hash key)
    parts: np.ndarray  # int8 (n_rows,): TRAIN, VAL or TEST
    seed: int
    device: torch.device
    n_missing_target: int
    context: distributed.Context = distributed.SINGLE
    reading: ReadReport | None = None  # None: rows encoded by the caller

    @property
    def n_rows_by_part(self) -> tuple[int, int, int]:
        counts = np.bincount(self.parts, minlength=3)
        return int(counts[TRAIN]), int(counts[VAL]), int(counts[TEST])

    def _rows(self, rows: RowSet) -> Rows:
        index = np.flatnonzero(rows.mask(self.parts, self.positions, self.seed))
        return Rows(
            torch.from_numpy(np.ascontiguousarray(self.X[index])).to(self.device),
            torch.from_numpy(np.ascontiguousarray(self.y[index])).to(self.device),
        )

    def training(self, rows: RowSet) -> FullBatch:
        return FullBatch(self._rows(rows))

    def holdout(self, rows: RowSet) -> Rows:
        return self._rows(rows)

    def class_counts(self, rows: RowSet) -> np.ndarray:
        y = self.y[rows.mask(self.parts, self.positions, self.seed)].astype(np.int64)
        # rows encoded by the caller name no classes: those present are counted
        n_classes = len(self.encoder.target.classes) if self.encoder is not None else int(self.y.max(initial=-1)) + 1
        return np.bincount(y, minlength=n_classes)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        group_ids = () if self.group_index is None else (self.group_index.group_ids,)
        for array in (self.X, self.y, *group_ids, self.parts):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> None:
        return None

    def moments(self, rows: RowSet) -> Moments:
        """Mean and covariance of the encoded columns over ``rows`` (what knockoffs are built from)."""
        return Moments.of(self.X[rows.mask(self.parts, self.positions, self.seed)])

    def with_knockoffs(self: InMemory, sampler: GaussianKnockoffs, draw: int) -> InMemory:
        """The same rows with their knockoff copies (draw ``draw``) appended as columns: ``[X, X~]``."""
        return dataclasses.replace(self, X=np.hstack([self.X, sampler.draw(self.X, self.positions, draw)]))


@dataclass(frozen=True)
class EncodedTable(InMemoryData):
    """A table read and encoded here (``data.open.frame_dataset``): it always has its encoder and groups."""

    encoder: Encoder
    group_index: GroupIndex


def frame_positions(table: pd.DataFrame, target: str) -> np.ndarray:
    """File positions of the rows that have a target (those the fit keeps)."""
    return np.flatnonzero(~table[target].isna().to_numpy())
