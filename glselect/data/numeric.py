"""Numeric columns as one float64 block, read straight from Arrow arrays or numpy-backed pandas columns.

The statistics pass and the encoder do their numeric work on blocks of columns at once rather than
column by column through pandas: one numpy operation serves a few dozen columns, which is what makes
a wide table (hundreds of columns) or a streamed record batch cheap to read.

A block is Fortran-ordered (each column contiguous), so a reduction along the rows adds each column
in the same pairwise order numpy uses for that column alone: means and variances come out bit for bit
as they did one column at a time. Blocks hold ``COLUMNS_PER_BLOCK`` columns, so the float64 copy stays
a small multiple of one column's size however wide the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

COLUMNS_PER_BLOCK = 32

Batch: TypeAlias = pa.RecordBatch | pd.DataFrame  # a streamed record batch, or a table in memory


def is_plain_numeric(column: pa.Array | pd.Series) -> bool:
    """An Arrow integer or floating array, or a pandas column of a numpy integer or floating dtype.

    Only these take the block route: pandas' nullable and other extension dtypes keep their own notion of a
    missing cell (a NaN in a ``Float64`` column is not missing), so they go column by column as before.
    """
    if isinstance(column, pa.Array):
        return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf"


def raw_values(column: pa.Array | pd.Series) -> np.ndarray:
    """The column as pandas would hold it in numpy: Arrow integers with missing cells become float64 with NaN,
    as ``to_pandas`` makes them, so a value quoted in a message reads as it did through pandas ("3.0", not "3")."""
    if isinstance(column, pa.Array):
        return column.to_numpy(zero_copy_only=False)
    return column.to_numpy()


def float_block(raws: list[np.ndarray]) -> np.ndarray:
    """Columns as one Fortran-ordered float64 block of shape (n_rows, len(raws)); NaN marks a missing cell."""
    block = np.empty((len(raws[0]) if raws else 0, len(raws)), dtype=np.float64, order="F")
    for j, raw in enumerate(raws):
        block[:, j] = raw
    return block


def column_of(batch: Batch, name: Any) -> pa.Array | pd.Series:
    """One column of a record batch or a DataFrame."""
    return batch.column(name) if isinstance(batch, pa.RecordBatch) else batch[name]


def as_series(column: pa.Array | pd.Series) -> pd.Series:
    """One column as pandas values: the statistics pass and the encoder both read non-numeric columns so,
    so a label is spelt the same in both, and a DataFrame column of mixed Python objects (which Arrow
    cannot hold) needs no conversion."""
    return column.to_pandas(date_as_object=False) if isinstance(column, pa.Array) else column


def in_blocks(items: list, size: int = COLUMNS_PER_BLOCK) -> Iterator[list]:
    """``items`` in consecutive runs of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
