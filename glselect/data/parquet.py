"""Read a Parquet dataset (a file or a directory of files) in record batches, never whole.

- ``open_source``: the dataset, its row groups in a fixed order and the global position of each row.
- ``split_of``: a deterministic split of rows into training, validation and test rows by a hash
  of the global row position and the seed, so no pass has to remember which row went where.
- ``row_groups_of_rank``: each process of a distributed run reads its own share of row groups, or of the
  rows within each row group when there are fewer row groups than processes.
- ``estimated_bytes`` / ``available_memory``: whether a table would fit in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from glselect.errors import GlselectError

READ_ROWS = 65_536  # rows per record batch read from disk


class Piece(Protocol):
    """Rows read as one unit, in the dataset's global row order: a row group, a range of a row group's rows,
    or a slice of a table in memory."""

    @property
    def start(self) -> int: ...  # global position of its first row

    @property
    def n_rows(self) -> int: ...

    @property
    def n_bytes(self) -> int: ...  # memory one open reader of it holds, about

    @property
    def name(self) -> str: ...

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]: ...


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file: where its rows sit in the dataset's global row order."""

    fragment: ds.ParquetFileFragment  # restricted to this row group
    start: int  # global position of its first row
    n_rows: int
    n_bytes: int  # uncompressed size, from the file's metadata

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        # no read-ahead, no pre-buffering, column chunks read through small buffered streams: Arrow would
        # otherwise queue decoded batches and buffer whole compressed column chunks besides. The batches are
        # still slices of the whole decoded row group (measured: a 262,144-row group of 51 float32 columns
        # holds 53 MB of Arrow memory while any of its batches lives), so each open reader costs a row group
        return iter(
            self.fragment.to_batches(
                columns=columns,
                batch_size=batch_rows,
                batch_readahead=1,
                fragment_readahead=1,
                fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False, use_buffered_stream=True, buffer_size=64 << 10),
            )
        )

    @property
    def name(self) -> str:
        return str(self.fragment.path)


@dataclass(frozen=True)
class Source:
    """A Parquet dataset opened for streaming: its schema and its row groups in a fixed order."""

    path: Path
    schema: pa.Schema
    row_groups: tuple[Piece, ...]

    @property
    def n_rows(self) -> int:
        return sum(group.n_rows for group in self.row_groups)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def is_parquet_dataset(path: Path) -> bool:
    """A ``.parquet``/``.pq`` file, or a directory (read as a dataset of Parquet files)."""
    return path.is_dir() or path.name.lower().endswith((".parquet", ".pq"))


def open_source(path: Path) -> Source:
    """Open a Parquet file or a directory of Parquet files; row groups are ordered by file path, then position.

    Raises
    ------
    GlselectError
        The path is missing, holds no Parquet rows, or a file is not readable Parquet.
    """
    if not path.exists():
        raise GlselectError(f"table file '{path}' does not exist")
    try:
        dataset = ds.dataset(str(path), format="parquet")
        fragments = sorted(dataset.get_fragments(), key=lambda fragment: fragment.path)
        row_groups: list[RowGroup] = []
        start = 0
        for fragment in fragments:
            fragment.ensure_complete_metadata()
            for piece, info in zip(fragment.split_by_row_group(), fragment.row_groups):
                row_groups.append(RowGroup(piece, start, info.num_rows, info.total_byte_size))
                start += info.num_rows
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GlselectError(f"cannot read Parquet dataset '{path}': {detail}", hint="every file in it must be Parquet") from err
    if start == 0:
        raise GlselectError(f"Parquet dataset '{path}' has no data rows")
    return Source(path=path, schema=dataset.schema, row_groups=tuple(row_groups))


@dataclass(frozen=True)
class RowRange:
    """Rows ``offset .. offset + n_rows`` of one row group: a process's share of a row group when a dataset has
    fewer row groups than processes. Its reader decodes the whole row group and keeps the range."""

    group: Piece
    offset: int  # first row, counted within the row group
    n_rows: int

    @property
    def start(self) -> int:
        return self.group.start + self.offset

    @property
    def n_bytes(self) -> int:
        return self.group.n_bytes  # the whole row group is decoded to read a part of it

    @property
    def name(self) -> str:
        return self.group.name

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        end, position = self.offset + self.n_rows, 0
        for batch in self.group.batches(columns, batch_rows):
            first, last = max(self.offset, position), min(end, position + batch.num_rows)
            if first < last:
                yield batch.slice(first - position, last - first)
            position += batch.num_rows
            del batch  # see iter_batches
            if position >= end:
                return


def row_groups_of_rank(source: Source, rank: int, world_size: int) -> tuple[Piece, ...]:
    """The share of ``source`` one process reads: every ``world_size``-th row group, starting at ``rank``; with
    fewer row groups than processes, the ``rank``-th of ``world_size`` equal row ranges of every row group.

    Either way the shares of all ranks are disjoint, cover every row once and keep each row's global position,
    so the split by row hash (``split_of``) gives every row the part one process would give it.
    """
    if len(source.row_groups) >= world_size:
        return source.row_groups[rank::world_size]
    ranges = []
    for group in source.row_groups:
        first, last = group.n_rows * rank // world_size, group.n_rows * (rank + 1) // world_size
        if last > first:
            ranges.append(RowRange(group, first, last - first))
    return tuple(ranges)


@dataclass(frozen=True)
class TableSlice:
    """Rows ``start .. start + n_rows`` of a table already in memory (a CSV under torchrun): read
    like a row group, so every rank streams its share of any table the fit accepts."""

    table: pa.Table
    start: int
    n_rows: int
    n_bytes: int

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        return iter(self.table.select(columns).slice(self.start, self.n_rows).to_batches(max_chunksize=batch_rows))

    @property
    def name(self) -> str:
        return "<table in memory>"


def slice_table(path: Path, table: pa.Table, rows_per_slice: int = READ_ROWS) -> Source:
    """A table in memory as a ``Source`` of slices, in file order."""
    bytes_per_row = table.nbytes / max(table.num_rows, 1)
    slices = tuple(
        TableSlice(table, start, min(rows_per_slice, table.num_rows - start), int(bytes_per_row * rows_per_slice))
        for start in range(0, table.num_rows, rows_per_slice)
    )
    return Source(path=path, schema=table.schema, row_groups=slices)


def iter_batches(
    row_groups: tuple[Piece, ...], columns: list[str], batch_rows: int = READ_ROWS
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """Record batches of ``columns`` with the global position of each row, row group by row group."""
    for group in row_groups:
        offset = group.start
        try:
            for batch in group.batches(columns, batch_rows):
                n_rows = batch.num_rows
                yield batch, np.arange(offset, offset + n_rows, dtype=np.int64)
                # a batch is a slice of its whole decoded row group: let go of it before the next group is decoded,
                # or the two row groups are held at once
                del batch
                offset += n_rows
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
            raise GlselectError(f"cannot read '{group.name}': {str(err).strip().splitlines()[0]}") from err


def estimated_bytes(source: Source, target: str) -> int:
    """Rough memory the in-memory fit needs: the table in pandas (8 bytes a cell) plus the float32
    design matrix and its training/validation/test copies (another 8 bytes a cell)."""
    return source.n_rows * max(len(source.columns) - 1, 1) * 16 if target else 0


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable on Linux), or physical memory elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
