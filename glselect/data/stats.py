"""Mergeable column statistics: one pass over record batches, for the in-memory and the streamed fit.

``collect_batch_stats`` counts, per column, what every encoding rule needs: missing cells, the
smallest and largest number and the first value (constant columns), infinite cells, moments of the
training rows, level counts up to a cap (distinctness, kept levels), how many text values do not
parse as numbers, and the total text length. These merge exactly across batches and torchrun ranks;
``glselect.data.encoder.build_encoder_from_stats`` then decides every column from them alone.

Column kinds start from the type (``column_kinds`` for a Parquet schema, ``frame_kinds`` for a
DataFrame, one mapping for both). ``fit_encoder`` runs the pass over its table as one batch and
``collect_stats`` over Parquet row groups, so a table gets the same kinds, ignored columns, reasons
and errors in memory and streamed, and ``predict`` works unchanged on a streamed fit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from glselect.data.numeric import Batch, as_series, column_of, float_block, in_blocks, is_plain_numeric, raw_values
from glselect.data.parquet import READ_ROWS, Piece, Source, iter_batches
from glselect.data.split import TRAIN, VAL, SplitSettings
from glselect.data.survival import fold_batch
from glselect.data.target import plain_value

MAX_TRACKED_LEVELS = 100_000  # a text column with more distinct values is an ID or free text, not a category
MAX_TARGET_VALUES = 1_000  # distinct target values remembered to detect the task and the classes
MISSING_LEVEL = "<missing>"  # the label of a missing cell in a categorical column

WHOLE_CHECK_ROWS = 1024  # rows looked at first for a fraction, before the rest of a column that has none there
LEFT_OUT = "left out by the user (--drop / --features)"
DATE_TIME = "date/time column: not used as-is (derive numeric features from it)"

First = tuple[int, Any] | None  # (global row position, value) of the earliest row with some property


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged exactly across batches and processes (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        if values.size:
            mean = values.mean()
            self.merge(Moments(int(values.size), float(mean), float(((values - mean) ** 2).sum())))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        if self.n == 0:  # a copy, not the formula: one batch then gives numpy's own mean and std
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n


def _earliest(first: First, other: First) -> First:
    if first is None or (other is not None and other[0] < first[0]):
        return other
    return first


@dataclass
class ColumnStats:
    """What one pass learns about a column: counts over all rows, statistics over training rows.

    ``kind`` comes from the column's type before the pass (``column_kinds`` / ``frame_kinds``):
    "numeric", "boolean", "text", "categorical" (named by ``--categorical``) or "ignored".
    """

    kind: str
    reason: str = ""  # for "ignored"
    n_rows: int = 0  # all rows with a target
    n_missing: int = 0
    n_train: int = 0
    n_missing_train: int = 0
    first: First = None  # the first present value: what a constant column holds
    low: float = math.inf  # numeric and boolean: smallest and largest present value (constant test)
    high: float = -math.inf
    n_infinite: int = 0  # numeric: infinite cells, and the first of them
    first_infinite: First = None
    moments: Moments = field(default_factory=Moments)  # numeric: finite training values; boolean: 0/1 training values
    levels_all: Counter = field(default_factory=Counter)  # text, categorical: present values of every row (distinctness)
    levels_train: Counter = field(default_factory=Counter)  # text, categorical: training rows, <missing> included
    too_many_levels: bool = False  # more than MAX_TRACKED_LEVELS distinct values: the level counts were dropped
    n_not_numbers: int = 0  # text: present values that do not parse as numbers, and the first of them
    first_not_number: First = None
    text_length: int = 0  # text: characters in all present values
    # numeric: the distinct values while every present value is a whole number (None once one is not, or once
    # more than MAX_TRACKED_LEVELS are seen), and whether they repeat: an integer ID shows as whole and unique
    whole_values: np.ndarray | None = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    whole_repeats: bool = False

    def merge(self, other: ColumnStats) -> None:
        self.n_rows += other.n_rows
        self.n_missing += other.n_missing
        self.n_train += other.n_train
        self.n_missing_train += other.n_missing_train
        self.first = _earliest(self.first, other.first)
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.n_infinite += other.n_infinite
        self.first_infinite = _earliest(self.first_infinite, other.first_infinite)
        self.moments.merge(other.moments)
        self.n_not_numbers += other.n_not_numbers
        self.first_not_number = _earliest(self.first_not_number, other.first_not_number)
        self.text_length += other.text_length
        self._add_whole(other.whole_values, other.whole_repeats)
        self.too_many_levels = self.too_many_levels or other.too_many_levels
        if not self.too_many_levels:
            self.levels_all.update(other.levels_all)
            self.levels_train.update(other.levels_train)
            self.too_many_levels = len(self.levels_all) > MAX_TRACKED_LEVELS
        if self.too_many_levels:
            self.levels_all.clear()
            self.levels_train.clear()

    def _add_whole(self, values: np.ndarray | None, repeats: bool) -> None:
        """Union in another share's distinct whole values (``values`` None: it had a fraction, or too many)."""
        if self.whole_values is None:
            return
        if values is None:
            self.whole_values = None
            return
        union = np.union1d(self.whole_values, values)
        self.whole_repeats = self.whole_repeats or repeats or len(union) < len(self.whole_values) + len(values)
        self.whole_values = union if len(union) <= MAX_TRACKED_LEVELS else None

    @property
    def is_whole_and_unique(self) -> bool:
        """Every present value a whole number, none repeated (known for up to MAX_TRACKED_LEVELS values)."""
        return self.whole_values is not None and not self.whole_repeats and len(self.whole_values) > 0


@dataclass
class TargetStats:
    n_rows: int = 0
    n_missing: int = 0
    moments: Moments = field(default_factory=Moments)  # numeric targets: finite values of the training rows
    distinct: pd.Series | None = None  # distinct values in order of appearance (their dtype too), up to the cap
    overflowed: bool = False  # more than MAX_TARGET_VALUES distinct values
    non_finite: bool = False
    n_positive: int = 0  # values > 0: with a folded survival target, the rows with an event
    counts: Counter = field(default_factory=Counter)  # rows per distinct value (cleared once overflowed): class sizes

    def merge(self, other: TargetStats) -> None:
        self.n_rows += other.n_rows
        self.counts.update(other.counts)
        self.n_positive += other.n_positive
        self.n_missing += other.n_missing
        self.moments.merge(other.moments)
        self.non_finite = self.non_finite or other.non_finite
        self.overflowed = self.overflowed or other.overflowed
        self._add_distinct(other.distinct)

    def _add_distinct(self, values: pd.Series | None) -> None:
        if values is None:
            return
        if self.distinct is not None:
            values = pd.concat([self.distinct, values], ignore_index=True).drop_duplicates()
        self.overflowed = self.overflowed or len(values) > MAX_TARGET_VALUES
        self.distinct = values.iloc[: MAX_TARGET_VALUES + 1].reset_index(drop=True)
        if self.overflowed:
            self.counts.clear()


@dataclass
class StreamStats:
    """Statistics of every column and the target over one process's share of the rows."""

    columns: dict[str, ColumnStats]
    target: TargetStats
    n_rows_by_part: list[int]  # rows with a target in TRAIN, VAL, TEST
    notes: dict = field(default_factory=dict)  # what reading the file did (``glselect.data.io.reading_notes``)

    def merge(self, other: StreamStats) -> None:
        for name, stats in self.columns.items():
            stats.merge(other.columns[name])
        self.target.merge(other.target)
        self.n_rows_by_part = [a + b for a, b in zip(self.n_rows_by_part, other.n_rows_by_part)]


def kind_of_type(arrow_type: pa.DataType) -> tuple[str, str]:
    """The column kind an Arrow type allows, and why a column of it is ignored."""
    if pa.types.is_boolean(arrow_type):
        return "boolean", ""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numeric", ""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "text", ""
    if pa.types.is_dictionary(arrow_type):
        return "text", ""
    if pa.types.is_temporal(arrow_type):
        return "ignored", DATE_TIME
    if pa.types.is_decimal(arrow_type):
        return "ignored", "decimal column: cast it to float64 to use it"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return "ignored", "list column: not a number, boolean or text"
    if pa.types.is_struct(arrow_type) or pa.types.is_map(arrow_type):
        return "ignored", f"{'struct' if pa.types.is_struct(arrow_type) else 'map'} column: not a number, boolean or text"
    return "ignored", f"type {arrow_type} is not a number, boolean or text"


def _is_boolean(values: pd.Series) -> bool:
    """A bool column, or an object column (a bool column with missing cells) holding only booleans."""
    if pd.api.types.is_bool_dtype(values):
        return True
    if values.dtype != object:
        return False
    present = values.dropna()
    return len(present) > 0 and all(isinstance(value, (bool, np.bool_)) for value in present)


def kind_of_series(values: pd.Series) -> tuple[str, str]:
    """The column kind a pandas column allows: the same answer ``kind_of_type`` gives for the Arrow type it
    was read from (a Parquet date, decimal or list arrives in pandas as objects of that type)."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        return "ignored", DATE_TIME
    if _is_boolean(values):
        return "boolean", ""
    if pd.api.types.is_numeric_dtype(values):
        return "numeric", ""
    if values.dtype == object:
        try:
            inferred = pa.infer_type(values.dropna().to_numpy())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            inferred = pa.string()  # mixed types: text, as each value's str() is its label
        kind = kind_of_type(inferred)
        # objects that are all numbers (or all strings) stay text: their labels are their str()
        if kind[0] == "ignored":
            return kind
    return "text", ""


def _kind(name: Any, type_kind: tuple[str, str], excluded: frozenset[str], categorical: frozenset[str]) -> tuple[str, str]:
    if name in excluded:
        return "ignored", LEFT_OUT
    if type_kind[1] == DATE_TIME:  # a date stays a date even when named by --categorical
        return type_kind
    if name in categorical:
        return "categorical", ""
    return type_kind


def column_kinds(source: Source, columns: list[str], excluded: frozenset[str], categorical: frozenset[str]) -> dict[str, tuple[str, str]]:
    """``{column: (kind, reason)}`` from the Parquet schema, before the statistics pass."""
    return {name: _kind(name, kind_of_type(source.schema.field(name).type), excluded, categorical) for name in columns}


def frame_kinds(df: pd.DataFrame, columns: list, excluded: frozenset[str], categorical: frozenset[str]) -> dict[Any, tuple[str, str]]:
    """``{column: (kind, reason)}`` from a DataFrame's dtypes: the in-memory twin of ``column_kinds``."""
    return {name: _kind(name, kind_of_series(df[name]), excluded, categorical) for name in columns}


def category_labels(values: pd.Series) -> pd.Series:
    """A categorical column's labels, as the pass counts them and encoding reads them: pandas text, missing cells
    as ``MISSING_LEVEL`` (a number forced to categories by --categorical is spelt as pandas spells it, "2.0")."""
    return values.astype("string").fillna(MISSING_LEVEL)


def _first(positions: np.ndarray, rows: np.ndarray, values: pd.Series, as_value: Callable[[Any], Any] = plain_value) -> First:
    """(position, value) of the earliest of ``rows`` (indices into the batch), or None when there are none."""
    if rows.size == 0:
        return None
    row = int(rows[np.argmin(positions[rows])])
    return int(positions[row]), as_value(values.iloc[row])


def _update_column(stats: ColumnStats, column: pa.Array | pd.Series, positions: np.ndarray, is_train: np.ndarray) -> None:
    stats.n_rows += len(column)
    stats.n_train += int(is_train.sum())
    if stats.kind == "ignored":  # only whether it is all missing matters
        stats.n_missing += column.null_count if isinstance(column, pa.Array) else int(column.isna().sum())
        return
    values = as_series(column)
    missing = values.isna().to_numpy(dtype=bool)
    stats.n_missing += int(missing.sum())
    stats.n_missing_train += int((missing & is_train).sum())
    present_rows = np.flatnonzero(~missing)
    stats.first = _earliest(stats.first, _first(positions, present_rows, values))
    if stats.kind == "numeric":
        as_float = values.to_numpy(dtype=np.float64, na_value=np.nan)
        infinite = np.isinf(as_float)
        stats.n_infinite += int(infinite.sum())
        stats.first_infinite = _earliest(stats.first_infinite, _first(positions, np.flatnonzero(infinite), values, float))
        stats.moments.add(as_float[is_train & ~missing & ~infinite])
        if stats.whole_values is not None:
            present = as_float[~missing]
            if not np.all(np.isfinite(present)) or np.any(present != np.round(present)):  # O(n): most columns stop here
                stats.whole_values = None
            else:
                whole = np.unique(present)
                stats._add_whole(whole, len(whole) < len(present))
    elif stats.kind == "boolean":  # the 0/1 column, missing cells as 0
        # not Series.fillna: pandas warns of its object downcast
        as_float = np.where(missing, False, values.to_numpy(dtype=object)).astype("float64")
        stats.moments.add(as_float[is_train])
    else:
        _update_levels(stats, values, missing, positions, is_train)
        return
    if present_rows.size:
        present = as_float[present_rows]
        stats.low, stats.high = min(stats.low, float(present.min())), max(stats.high, float(present.max()))


def _update_numeric_block(columns: list[ColumnStats], raws: list[np.ndarray], positions: np.ndarray, is_train: np.ndarray) -> None:
    """``_update_column`` for numeric columns, a block of them at once (``glselect.data.numeric``).

    The common column (no missing or infinite cell in this batch) is counted with whole-block operations;
    the others take the per-column arithmetic below, which is ``_update_column``'s own, so each
    statistic is the same number either way."""
    block = float_block(raws)
    n_train = int(is_train.sum())
    non_finite = ~np.isfinite(block)
    is_clean = ~non_finite.any(axis=0)
    clean = np.flatnonzero(is_clean)
    if clean.size and n_train:
        # Fortran order: each column's rows are added in the same pairwise order as one column alone
        train = block.T.compress(is_train, axis=1).T  # compressing the transposed (C-ordered) block keeps each column contiguous
        if clean.size < block.shape[1]:
            train = np.asfortranarray(train[:, clean])
        means = train.mean(axis=0)
        m2s = ((train - means) ** 2).sum(axis=0)
        del train
    if len(block):
        lows, highs = block.min(axis=0), block.max(axis=0)  # read for the clean columns only
    whole = [j for j, stats in enumerate(columns) if stats.whole_values is not None and is_clean[j]]
    if whole:  # most columns hold a fraction in their first rows already and stop being tracked there
        head = block[:WHOLE_CHECK_ROWS, whole]
        has_fraction = (head != np.round(head)).any(axis=0)
        rest = [j for j, fraction in zip(whole, has_fraction) if not fraction]
        if rest and len(block) > WHOLE_CHECK_ROWS:
            tail = block[WHOLE_CHECK_ROWS:, rest]
            has_fraction[~has_fraction] = (tail != np.round(tail)).any(axis=0)
        for j, fraction in zip(whole, has_fraction):
            if fraction:
                columns[j].whole_values = None
    earliest = int(np.argmin(positions)) if len(positions) else 0
    for j, stats in enumerate(columns):
        raw, values = raws[j], block[:, j]
        stats.n_rows += len(values)
        stats.n_train += n_train
        if is_clean[j]:
            k = int(np.searchsorted(clean, j))
            if len(values):
                stats.first = _earliest(stats.first, (int(positions[earliest]), plain_value(raw[earliest])))
                stats.low, stats.high = min(stats.low, float(lows[j])), max(stats.high, float(highs[j]))
            if n_train:
                stats.moments.merge(Moments(n_train, float(means[k]), float(m2s[k])))
            present = values
        else:
            is_missing = np.isnan(values)
            is_infinite = non_finite[:, j] & ~is_missing
            stats.n_missing += int(is_missing.sum())
            stats.n_missing_train += int((is_missing & is_train).sum())
            present_rows = np.flatnonzero(~is_missing)
            stats.first = _earliest(stats.first, _first_of(positions, present_rows, raw, plain_value))
            stats.n_infinite += int(is_infinite.sum())
            stats.first_infinite = _earliest(stats.first_infinite, _first_of(positions, np.flatnonzero(is_infinite), raw, float))
            stats.moments.add(values[is_train & ~is_missing & ~is_infinite])
            if present_rows.size:
                present = values[present_rows]
                stats.low, stats.high = min(stats.low, float(present.min())), max(stats.high, float(present.max()))
            present = values[~is_missing]
        if stats.whole_values is not None:
            if not np.all(np.isfinite(present)) or np.any(present != np.round(present)):  # O(n): most columns stop here
                stats.whole_values = None
            else:
                distinct = np.unique(present)
                stats._add_whole(distinct, len(distinct) < len(present))


def _first_of(positions: np.ndarray, rows: np.ndarray, raw: np.ndarray, as_value: Callable[[Any], Any]) -> First:
    """``_first`` over a numpy column."""
    if rows.size == 0:
        return None
    row = int(rows[np.argmin(positions[rows])])
    return int(positions[row]), as_value(raw[row])


def _update_levels(stats: ColumnStats, values: pd.Series, missing: np.ndarray, positions: np.ndarray, is_train: np.ndarray) -> None:
    """Text and categorical columns: level counts (as encoding spells the labels), and for text the number and
    length facts the free-text and numbers-in-text rules need."""
    labels = values[~missing].astype("string")
    codes, uniques = pd.factorize(labels)
    counts = np.bincount(codes, minlength=len(uniques))
    if stats.kind == "text":
        # parsed once per distinct label, not per cell: a category column has few labels and many rows
        distinct = pd.Series(uniques)
        not_numbers = pd.to_numeric(distinct, errors="coerce").isna().to_numpy(dtype=bool)
        stats.n_not_numbers += int(counts[not_numbers].sum())
        rows = np.flatnonzero(not_numbers[codes])
        stats.first_not_number = _earliest(stats.first_not_number, _first(positions[~missing], rows, labels, str))
        stats.text_length += int((distinct.str.len().to_numpy(dtype=np.int64) * counts).sum())
    if stats.too_many_levels:
        return
    if len(uniques) > MAX_TRACKED_LEVELS:
        stats.too_many_levels = True
    else:
        stats.levels_all.update(dict(zip(uniques.tolist(), counts.tolist())))
        train_counts = category_labels(values[is_train]).value_counts(sort=False)
        stats.levels_train.update(dict(zip(train_counts.index, train_counts.to_numpy().tolist())))
        stats.too_many_levels = len(stats.levels_all) > MAX_TRACKED_LEVELS
    if stats.too_many_levels:
        stats.levels_all.clear()
        stats.levels_train.clear()


def _update_target(stats: TargetStats, values: pd.Series, present_in_train: np.ndarray) -> None:
    """Counts and levels from every row with a target; the moments that standardise a numeric
    target from ``present_in_train`` (bool, one per row with a target) alone, as every column's."""
    missing = values.isna().to_numpy(dtype=bool)
    stats.n_rows += len(values)
    stats.n_missing += int(missing.sum())
    present = values[~missing]
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        as_float = present.to_numpy(dtype=np.float64)
        finite = np.isfinite(as_float)
        stats.non_finite = stats.non_finite or not finite.all()
        stats.n_positive += int((as_float > 0).sum())
        stats.moments.add(as_float[finite & present_in_train])
    if not stats.overflowed:
        counts = present.value_counts(sort=False)
        stats.counts.update(dict(zip(counts.index.tolist(), counts.to_numpy().tolist())))
        stats._add_distinct(present.drop_duplicates())


def collect_batch_stats(
    batches: Iterable[tuple[Batch, np.ndarray]],
    part_of: Callable[[np.ndarray], np.ndarray],
    target: str,
    kinds: dict[Any, tuple[str, str]],
    on_batch: Callable[[Batch, np.ndarray, np.ndarray], None] | None = None,
) -> StreamStats:
    """One pass over record batches: statistics of every column (kinds decided by the rules later) and of the target.

    Parameters
    ----------
    batches
        ``(batch, positions)`` pairs: a ``pyarrow.RecordBatch`` or a ``pandas.DataFrame`` holding the columns of
        ``kinds`` and the target, and the global row position of each of its rows, shape (n_rows,). Parquet row
        groups, slices of an in-memory table, or one whole table.
    part_of
        Maps positions to an int array of ``TRAIN``, ``VAL`` or ``TEST``; levels and moments come from ``TRAIN`` rows.
    target
        The target column: its rows with a missing value are left out of every column's statistics.
    kinds
        ``{column: (kind, reason)}`` from ``column_kinds`` or ``frame_kinds``.
    on_batch
        Called as ``on_batch(batch, positions, parts)`` for each batch (rows with a target only), e.g. to keep a
        bounded sample of held-out rows.

    Returns
    -------
    StreamStats
        Mergeable with the statistics of other batches (``StreamStats.merge``), e.g. from other torchrun ranks.
    """
    stats = StreamStats(
        columns={name: ColumnStats(*kind) for name, kind in kinds.items()},
        target=TargetStats(),
        n_rows_by_part=[0, 0, 0],
    )
    for batch, positions in batches:
        _add_batch(stats, batch, positions, part_of, target, on_batch)
        # a streamed batch, and every numpy view of its columns, pins its whole decoded row group: none of them
        # may live on (as a loop variable) while the next row group is read and decoded
        del batch
    return stats


def _add_batch(
    stats: StreamStats,
    batch: Batch,
    positions: np.ndarray,
    part_of: Callable[[np.ndarray], np.ndarray],
    target: str,
    on_batch: Callable[[Batch, np.ndarray, np.ndarray], None] | None,
) -> None:
    """One batch of ``collect_batch_stats``."""
    target_values = as_series(column_of(batch, target))
    has_target = ~target_values.isna().to_numpy(dtype=bool)
    if not has_target.all():
        batch = batch.filter(pa.array(has_target)) if isinstance(batch, pa.RecordBatch) else batch[has_target]
        positions = positions[has_target]
    parts = np.asarray(part_of(positions))
    _update_target(stats.target, target_values, parts == TRAIN)
    stats.n_rows_by_part = [n + int((parts == part).sum()) for part, n in enumerate(stats.n_rows_by_part)]
    is_train = parts == TRAIN
    numeric = []
    for name, column_stats in stats.columns.items():
        column = column_of(batch, name)
        if column_stats.kind == "numeric" and is_plain_numeric(column):
            numeric.append((column_stats, raw_values(column)))
        else:
            _update_column(column_stats, column, positions, is_train)
    for block in in_blocks(numeric):
        _update_numeric_block([column_stats for column_stats, _ in block], [raw for _, raw in block], positions, is_train)
    if on_batch is not None:
        on_batch(batch, positions, parts)


def collect_stats(
    row_groups: tuple[Piece, ...],
    target: str,
    columns: list[str],
    kinds: dict[str, tuple[str, str]],
    split: SplitSettings,
    *,
    on_batch: Callable[[Batch, np.ndarray, np.ndarray], None] | None = None,
    event: str | None = None,
) -> StreamStats:
    """``collect_batch_stats`` over Parquet row groups (or ranges of their rows, or table slices), split by the
    row hash (``split.parts``).

    ``on_batch(batch, positions, parts)`` sees each record batch (rows with a target only). ``event``: a
    survival target's event column, folded into the target (time) column as each batch is read.
    """
    return collect_batch_stats(
        read_batches(row_groups, [*columns, target], event),
        split.parts,
        target,
        {name: kinds[name] for name in columns},
        on_batch,
    )


def read_batches(
    row_groups: tuple[Piece, ...], columns: list[str], event: str | None = None, batch_rows: int = READ_ROWS
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """``iter_batches`` of ``columns`` (the target last); with a survival ``event`` column, that column is
    read too and folded into the target (``glselect.data.survival``), so the batches look alike for every task."""
    if event is None:
        yield from iter_batches(row_groups, columns, batch_rows)
        return
    for batch, positions in iter_batches(row_groups, [*columns, event], batch_rows):
        yield fold_batch(batch, columns[-1], event, positions), positions
        del batch  # see iter_batches


def training_part(n_rows: int, fit_rows: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """``part_of`` for an in-memory table: rows in ``fit_rows`` (None: all) are ``TRAIN``, the others ``VAL``."""
    is_train = np.ones(n_rows, dtype=bool)
    if fit_rows is not None:
        is_train[:] = False
        is_train[np.asarray(fit_rows, dtype=np.int64)] = True
    return lambda positions: np.where(is_train[positions], TRAIN, VAL).astype(np.int8)
