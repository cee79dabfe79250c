"""One streaming pass of statistics that gives the same ``Encoder`` the in-memory fit builds.

Means and variances of numeric columns (merged exactly across batches and processes), 0/1
shares of booleans and missing cells, and level counts of categorical columns are collected on
the training rows; a column's kind comes from its Parquet type. ``predict`` therefore works
unchanged on a streamed fit.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from glselect.data.encoder import MIN_ROWS_FOR_ID, MISSING_LEVEL, OTHER_LEVEL, ColumnEncoding, Encoder
from glselect.errors import GlselectError
from glselect.data.parquet import RowGroup, Source, iter_batches
from glselect.data.split import TRAIN, split_of
from glselect.data.target import TargetEncoding, detect_task, fit_target, plain_value

MAX_TRACKED_LEVELS = 100_000  # a text column with more distinct values is an ID or free text, not a category
MAX_TARGET_VALUES = 1_000  # distinct target values remembered to detect the task and the classes


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged exactly across batches and processes (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        if values.size:
            self.merge(Moments(int(values.size), float(values.mean()), float(((values - values.mean()) ** 2).sum())))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n


@dataclass
class ColumnStats:
    """What one streaming pass learns about a column: counts over all rows, statistics over training rows."""

    kind: str  # "numeric", "boolean", "categorical" or "ignored", from the Arrow type
    reason: str = ""  # for "ignored"
    n_rows: int = 0  # all rows with a target
    n_missing: int = 0
    low: float = math.inf  # numeric and boolean: smallest and largest present value (constant test)
    high: float = -math.inf
    n_train: int = 0
    n_missing_train: int = 0
    moments: Moments = field(default_factory=Moments)  # numeric: present training values; boolean: 0/1
    levels_all: Counter = field(default_factory=Counter)  # categorical: every row (distinctness)
    levels_train: Counter = field(default_factory=Counter)  # categorical: training rows (the kept levels)
    too_many_levels: bool = False

    def merge(self, other: ColumnStats) -> None:
        self.n_rows += other.n_rows
        self.n_missing += other.n_missing
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.n_train += other.n_train
        self.n_missing_train += other.n_missing_train
        self.moments.merge(other.moments)
        self.levels_all.update(other.levels_all)
        self.levels_train.update(other.levels_train)
        self.too_many_levels = self.too_many_levels or other.too_many_levels or len(self.levels_all) > MAX_TRACKED_LEVELS
        if self.too_many_levels:
            self.levels_all.clear()
            self.levels_train.clear()


@dataclass
class TargetStats:
    n_rows: int = 0
    n_missing: int = 0
    moments: Moments = field(default_factory=Moments)
    values: set = field(default_factory=set)  # distinct values, up to MAX_TARGET_VALUES
    overflowed: bool = False
    non_finite: bool = False

    def merge(self, other: TargetStats) -> None:
        self.n_rows += other.n_rows
        self.n_missing += other.n_missing
        self.moments.merge(other.moments)
        self.non_finite = self.non_finite or other.non_finite
        self.values |= other.values
        self.overflowed = self.overflowed or other.overflowed or len(self.values) > MAX_TARGET_VALUES
        if self.overflowed:
            self.values = set(list(sorted(self.values, key=repr))[: MAX_TARGET_VALUES + 1])


@dataclass
class StreamStats:
    """Statistics of every column and the target over one process's share of the rows."""

    columns: dict[str, ColumnStats]
    target: TargetStats
    n_rows_by_part: list[int]  # rows with a target in TRAIN, VAL, TEST

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
    if pa.types.is_decimal(arrow_type):
        return "ignored", "decimal column: cast it to float64 in the Parquet file to use it"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_dictionary(arrow_type):
        return "categorical", ""
    if pa.types.is_temporal(arrow_type):
        return "ignored", "date/time column: not used as-is (derive numeric features from it)"
    return "ignored", f"type {arrow_type} is not a number, boolean or text"


def _labels(array: pa.Array) -> pd.Series:
    """Category labels exactly as ``encoding`` makes them (pandas text; missing cells are the level <missing>),
    so a number forced to a category by --categorical gets the same label here as at encoding time."""
    return pd.Series(array.to_pandas(date_as_object=False)).astype("string").fillna(MISSING_LEVEL)


def _count_levels(labels: pd.Series) -> Counter:
    return Counter({str(level): int(count) for level, count in labels.value_counts(sort=False).items()})


def _float_values(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a missing mask."""
    values = array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values, np.isnan(values)


def _update_column(stats: ColumnStats, name: str, array: pa.Array, is_train: np.ndarray, source: Path) -> None:
    missing_mask = array.is_null().to_numpy(zero_copy_only=False)
    stats.n_rows += len(array)
    stats.n_train += int(is_train.sum())
    if stats.kind == "categorical":
        stats.n_missing += int(missing_mask.sum())
        stats.n_missing_train += int((missing_mask & is_train).sum())
        if stats.too_many_levels:
            return
        labels = _labels(array)
        stats.levels_all.update(_count_levels(labels))
        stats.levels_train.update(_count_levels(labels[is_train]))
        if len(stats.levels_all) > MAX_TRACKED_LEVELS:
            stats.too_many_levels = True
            stats.levels_all.clear()
            stats.levels_train.clear()
        return
    values, missing = _float_values(array)
    missing |= missing_mask
    if stats.kind == "numeric" and np.isinf(values).any():
        raise GlselectError(
            f"column '{name}' in '{source}' has non-finite values ({int(np.isinf(values).sum())})",
            hint="replace infinities with a number or leave the cell empty",
        )
    stats.n_missing += int(missing.sum())
    stats.n_missing_train += int((missing & is_train).sum())
    present = values[~missing]
    if present.size:
        stats.low, stats.high = min(stats.low, float(present.min())), max(stats.high, float(present.max()))
    if stats.kind == "numeric":
        stats.moments.add(values[is_train & ~missing])
    else:  # boolean: the 0/1 column, missing cells as 0
        stats.moments.add(np.where(missing, 0.0, values)[is_train])


def _update_target(stats: TargetStats, array: pa.Array) -> None:
    stats.n_rows += len(array)
    stats.n_missing += array.null_count
    present = array.drop_null()
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        values = present.cast(pa.float64()).to_numpy(zero_copy_only=False)
        stats.non_finite = stats.non_finite or bool(np.isinf(values).any())
        stats.moments.add(values[np.isfinite(values)])
    if not stats.overflowed:
        stats.values.update(pc.unique(present).to_pylist())
        if len(stats.values) > MAX_TARGET_VALUES:
            stats.overflowed = True


def collect_stats(
    row_groups: tuple[RowGroup, ...],
    source: Source,
    target: str,
    columns: list[str],
    kinds: dict[str, tuple[str, str]],
    seed: int,
    val_fraction: float,
    test_fraction: float,
    on_batch: Callable[[pa.RecordBatch, np.ndarray, np.ndarray], None] | None = None,
) -> StreamStats:
    """One pass over ``row_groups``: statistics of every column (training rows) and of the target (all rows).

    ``on_batch(batch, positions, parts)`` sees each batch (rows with a target only), e.g. to keep
    a bounded sample of held-out rows.
    """
    stats = StreamStats(
        columns={name: ColumnStats(*kinds[name]) for name in columns},
        target=TargetStats(),
        n_rows_by_part=[0, 0, 0],
    )
    for batch, positions in iter_batches(row_groups, [*columns, target]):
        target_array = batch.column(batch.num_columns - 1)
        _update_target(stats.target, target_array)
        has_target = ~target_array.is_null().to_numpy(zero_copy_only=False)
        if not has_target.all():
            batch, positions = batch.filter(pa.array(has_target)), positions[has_target]
        parts = split_of(positions, seed, val_fraction, test_fraction)
        stats.n_rows_by_part = [n + int((parts == part).sum()) for part, n in enumerate(stats.n_rows_by_part)]
        is_train = parts == TRAIN
        for index, name in enumerate(columns):
            if stats.columns[name].kind != "ignored":
                _update_column(stats.columns[name], name, batch.column(index), is_train, source.path)
        if on_batch is not None:
            on_batch(batch, positions, parts)
    return stats


def _scale(variance: float) -> float:
    # a constant encoded column (a level every training row has) stays at zero
    return math.sqrt(variance) if variance > 0 else 1.0


def _indicator(stats: ColumnStats) -> tuple[float, float]:
    p = stats.n_missing_train / stats.n_train if stats.n_train else 0.0
    return p, _scale(p * (1 - p))


def _column_encoding(name: str, stats: ColumnStats, max_levels: int) -> ColumnEncoding:
    """The ``ColumnEncoding`` the in-memory ``fit_encoder`` would build, from streamed statistics."""
    if stats.kind == "ignored":
        return ColumnEncoding(name, "ignored", reason=stats.reason)
    if stats.n_missing == stats.n_rows:
        return ColumnEncoding(name, "ignored", reason="every value is missing")
    if stats.kind in ("numeric", "boolean") and stats.low == stats.high and stats.n_missing == 0:
        value = stats.low if stats.kind == "numeric" else bool(stats.low)
        return ColumnEncoding(name, "ignored", reason=f"constant: every value is {value!r}")
    flagged = stats.n_missing > 0
    if stats.kind == "boolean":
        m = stats.moments.mean
        centers, scales = [m], [_scale(m * (1 - m))]
        reason = "boolean: 0/1, standardised" + ("; missing cells set to 0 and flagged" if flagged else "")
    elif stats.kind == "numeric":
        if stats.moments.n == 0:
            return ColumnEncoding(name, "ignored", reason="every value in the training rows is missing")
        # missing cells take the mean, so they add nothing to the squared deviations but count as rows
        centers, scales = [stats.moments.mean], [_scale(stats.moments.m2 / max(stats.n_train, 1))]
        reason = "numeric: standardised" + ("; missing cells imputed with the mean and flagged" if flagged else "")
    else:
        if stats.too_many_levels:
            return ColumnEncoding(name, "ignored", reason=f"more than {MAX_TRACKED_LEVELS} distinct values: an ID or free text")
        n_present = stats.n_rows - stats.n_missing
        n_distinct = len(stats.levels_all) - (MISSING_LEVEL in stats.levels_all)
        if n_distinct == 1 and stats.n_missing == 0:
            return ColumnEncoding(name, "ignored", reason=f"constant: every value is {next(iter(stats.levels_all))!r}")
        if n_distinct == n_present and n_present >= MIN_ROWS_FOR_ID:
            return ColumnEncoding(name, "ignored", reason="ID-like: every value is unique")
        ordered = sorted(stats.levels_train.items(), key=lambda item: (-item[1], item[0]))
        kept = [str(level) for level, _ in ordered[:max_levels]]
        pooled = len(ordered) > max_levels
        levels = tuple(sorted(kept)) + ((OTHER_LEVEL,) if pooled else ())
        n = max(stats.n_train, 1)
        share = {level: stats.levels_train[level] / n for level in kept}
        if pooled:
            share[OTHER_LEVEL] = 1.0 - sum(share.values())
        return ColumnEncoding(
            name,
            "categorical",
            levels=levels,
            centers=tuple(share[level] for level in levels),
            scales=tuple(_scale(share[level] * (1 - share[level])) for level in levels),
            reason=f"categorical: one-hot over {len(levels)} levels, standardised"
            + (f" ({len(ordered) - max_levels} rare levels pooled as {OTHER_LEVEL})" if pooled else ""),
        )
    if flagged:
        p, scale = _indicator(stats)
        centers, scales = [*centers, p], [*scales, scale]
    return ColumnEncoding(
        name, stats.kind, missing_indicator=flagged, centers=tuple(centers), scales=tuple(scales), reason=reason
    )


def _target_encoding(name: str, stats: TargetStats, arrow_type: pa.DataType, task: str | None) -> TargetEncoding:
    """The target's task and encoding from its distinct values (classes) or its moments (regression)."""
    values = sorted(stats.values, key=lambda value: (str(type(value)), value))
    is_number = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    distinct = pd.Series(pa.array(values, type=arrow_type).to_pandas(), name=name)
    if task is None:
        # more distinct numbers than any class count: a regression target, without listing them all
        task = "regression" if is_number and stats.overflowed else detect_task(distinct)
    if task == "regression":
        if not is_number:
            raise GlselectError(f"target column '{name}' is not numeric, so it cannot be a regression target", hint="use --task binary or --task multiclass")
        if stats.non_finite:
            raise GlselectError(f"target column '{name}' has non-finite values (inf)")
        if stats.moments.n and stats.moments.m2 == 0:
            raise GlselectError(f"target column '{name}' has only one distinct value ({plain_value(values[0])!r})", hint="a target must vary to be predicted")
        return TargetEncoding(name, task, center=stats.moments.mean, scale=_scale(stats.moments.m2 / max(stats.moments.n, 1)))
    if stats.overflowed:
        raise GlselectError(f"target column '{name}' has more than {MAX_TARGET_VALUES} classes", hint="use --task regression for a numeric target")
    return fit_target(distinct, task)


def build_encoder(
    stats: StreamStats, source: Source, target: str, task: str | None, max_levels: int, excluded: frozenset[str], categorical: frozenset[str]
) -> Encoder:
    """The fitted ``Encoder`` from merged statistics (the same class and file format as in memory)."""
    del categorical  # already applied to the kinds before the pass
    columns = tuple(
        ColumnEncoding(name, "ignored", reason="left out by the user (--drop / --features)")
        if name in excluded
        else _column_encoding(name, column_stats, max_levels)
        for name, column_stats in stats.columns.items()
    )
    if not any(column.output_names for column in columns):
        raise GlselectError("the table has no usable feature columns besides the target")
    return Encoder(columns=columns, target=_target_encoding(target, stats.target, source.schema.field(target).type, task))


def column_kinds(source: Source, columns: list[str], excluded: frozenset[str], categorical: frozenset[str]) -> dict[str, tuple[str, str]]:
    kinds = {}
    for name in columns:
        if name in excluded:
            kinds[name] = ("ignored", "left out by the user (--drop / --features)")
        elif name in categorical:
            kinds[name] = ("categorical", "")
        else:
            kinds[name] = kind_of_type(source.schema.field(name).type)
    return kinds


