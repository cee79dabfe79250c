"""Turn a table into a design matrix, with an encoder fitted once and reapplied by ``predict``.

The encoder is fitted from mergeable column statistics (``glselect.data.stats``) by one set of
rules, ``build_encoder_from_stats``: in memory the table is one batch of statistics, streamed it
is many, so a table is encoded alike either way. Every encoded column remembers its source
column, so results are reported per original column and all of a column's encoded parts (one-hot
levels, missing indicator) share its group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from glselect.data.io import NOTES_KEY
from glselect.data.names import with_suggestion
from glselect.data.numeric import as_series, column_of, float_block, in_blocks, is_plain_numeric, raw_values
from glselect.data.parquet import Source
from glselect.data.stats import (
    LEFT_OUT,
    MAX_TARGET_VALUES,
    MAX_TRACKED_LEVELS,
    ColumnStats,
    First,
    StreamStats,
    TargetStats,
    category_labels,
    collect_batch_stats,
    frame_kinds,
    training_part,
)
from glselect.data.target import TargetEncoding, detect_task, encode_target, fit_target, plain_value
from glselect.errors import GlselectError
from glselect.text import plural

MAX_LEVELS = 20  # one-hot levels kept per categorical column; rarer ones are pooled
OTHER_LEVEL = "<other>"
MIN_ROWS_FOR_ID = 20  # with fewer rows, all-distinct values say little about a column being an ID
FREE_TEXT_LENGTH = 40  # mean characters per value above which a mostly-distinct column is free text
NUMERIC_TEXT_SHARE_BAD = 0.1  # a text column whose values are >= 90% numbers is a numeric column with bad cells
MIN_CLASS_ROWS = 2  # a class with fewer rows cannot be both learned from and scored


@dataclass(frozen=True)
class ColumnRules:
    """What the user said about the columns: those left out (``--drop``, ``--features``: recorded as ignored),
    those one-hot encoded whatever their type (``--categorical``), and the one-hot levels kept per categorical
    column (``--max-levels``; rarer levels are pooled)."""

    max_levels: int = MAX_LEVELS
    excluded: frozenset[str] = frozenset()
    categorical: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ColumnEncoding:
    """How one source column becomes encoded columns."""

    name: str
    kind: str  # "numeric", "boolean", "categorical", or "ignored"
    missing_indicator: bool = False  # numeric, boolean: a 0/1 column marking filled-in cells
    levels: tuple[str, ...] = ()  # categorical: one encoded column per level
    # per encoded column, from the training rows: every encoded column (one-hot levels and
    # indicators included) is standardised, so sqrt(d_g) weighs groups fairly whatever their kind
    centers: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    reason: str = ""  # why the column was treated this way, for the summary

    @property
    def output_names(self) -> list[str]:
        if self.kind == "ignored":
            return []
        if self.kind == "categorical":
            return [f"{self.name}={level}" for level in self.levels]
        names = [self.name]
        if self.missing_indicator:
            names.append(f"{self.name}[missing]")
        return names


@dataclass(frozen=True)
class Encoder:
    columns: tuple[ColumnEncoding, ...]
    target: TargetEncoding

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.output_names]

    @property
    def sources(self) -> list[str]:
        return [column.name for column in self.columns for _ in column.output_names]

    def transform(self, frame: pd.DataFrame, inputs: Sequence[str] | None = None) -> np.ndarray:
        """A raw table (the fitted table's columns, as read) encoded as a model's inputs: float32 of shape
        (n_rows, n_inputs), what ``glselect predict`` feeds the saved model.

        Only the columns the encoding reads must be present (the target need not be); unseen category levels
        and missing cells are encoded exactly as in training (the pooled level, the training mean and its
        indicator).

        Parameters
        ----------
        frame
            The table, one row per prediction.
        inputs
            The encoded columns a model reads, in its order (``LoadedModel.inputs``: the sparse group lasso may
            leave some of a column's encoded parts out); None: every encoded column (``feature_names``).

        Raises
        ------
        GlselectError
            A column the encoding reads is missing, or a numeric one holds a cell that is not a number (the
            message names the first such data row), or an infinity.
        """
        try:
            X = encode_features(self, frame)
        except GlselectError as err:
            raise _naming_the_row(err, self, frame) from err
        if inputs is None or list(inputs) == self.feature_names:
            return X
        position = {name: j for j, name in enumerate(self.feature_names)}
        unknown = [name for name in inputs if name not in position]
        if unknown:
            raise GlselectError(f"the encoding has no input(s) {', '.join(map(repr, unknown))}")
        return np.ascontiguousarray(X[:, [position[name] for name in inputs]])

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(column) for column in self.columns], "target": asdict(self.target)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Encoder:
        columns = tuple(
            ColumnEncoding(**{**column, **{key: tuple(column[key]) for key in ("levels", "centers", "scales")}})
            for column in raw["columns"]
        )
        target = TargetEncoding(**{**raw["target"], "classes": tuple(raw["target"]["classes"])})
        return cls(columns=columns, target=target)


@dataclass(frozen=True)
class Design:
    """The encoded table.

    ``X`` is float32 of shape (n_samples, n_features); ``y`` is float32 (standardised regression
    target) or int64 (class index) of shape (n_samples,); ``sources[j]`` is the table column that
    encoded column ``feature_names[j]`` came from.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    sources: tuple[str, ...]


def check_named_columns(named: list[str] | tuple[str, ...], columns: list[str], options: str, source: str) -> None:
    """Raise naming every entry of ``named`` (given by ``options``) that is not a column of ``source``."""
    unknown = [name for name in named if name not in columns]
    if unknown:
        raise GlselectError(
            f"column(s) {', '.join(map(repr, unknown))} named by {options} are not in '{source}'",
            hint=with_suggestion("check the spelling against the table's header", unknown, columns),
        )


def columns_left_out(
    columns: list[str], target: str, features: tuple[str, ...] | None, drop: tuple[str, ...], source: str
) -> frozenset[str]:
    """The columns ``--features`` (keep only these) and ``--drop`` leave out; names are checked."""
    named = list(features or ()) + list(drop)
    check_named_columns(named, columns, "--features/--drop", source)
    if target in named:
        raise GlselectError(f"the target '{target}' cannot be named by --features or --drop")
    kept = set(columns) - {target} if features is None else set(features)
    return frozenset(name for name in columns if name != target and (name not in kept or name in drop))


def _scale(variance: float) -> float:
    # a constant encoded column (a level every training row has) stays at zero
    return math.sqrt(variance) if variance > 0 else 1.0


def _share_scale(count: int, n: int) -> tuple[float, float]:
    """Mean and standard deviation of a 0/1 column with ``count`` ones in ``n`` rows."""
    if not 0 < count < n:
        return (count / n if n else 0.0), 1.0
    # from the exact integer count * (n - count): closer to the true value than numpy's sum of squares
    return count / n, math.sqrt(count * (n - count)) / n


def _recorded(first: First) -> tuple[int, Any]:
    """``(position, value)`` of a first occurrence that a column's counts say was seen."""
    if first is None:
        raise RuntimeError("a counted value has no recorded first occurrence")
    return first


def _is_constant(stats: ColumnStats) -> bool:
    if stats.n_missing:
        return False
    if stats.kind in ("numeric", "boolean"):
        return stats.low == stats.high
    return not stats.too_many_levels and len(stats.levels_all) == 1


def _check_not_numbers_in_text(name: str, stats: ColumnStats, where: str) -> None:
    """A text column that is mostly numbers is a numeric column with a few bad cells: say which."""
    n_present = stats.n_rows - stats.n_missing
    if 0 < stats.n_not_numbers <= NUMERIC_TEXT_SHARE_BAD * n_present:
        position, value = _recorded(stats.first_not_number)
        raise GlselectError(
            f"column '{name}'{where} has {stats.n_not_numbers} non-numeric values among numbers "
            f"(first at data row {position + 1}: {value!r})",
            hint=f"clean those cells (leave them empty if unknown), or pass --categorical '{name}' to treat the column as categories",
        )


def _check_numbers_mixed_with_text(name: str, stats: ColumnStats, max_levels: int, where: str) -> None:
    """A text column that is mostly numbers, with more distinct numbers than one-hot levels are kept, is a
    numeric column whose other cells mean something (missing, a bound, a unit): one-hot encoding would pool
    most numbers into one level, and reading the text as missing would guess. The user says which."""
    n_present = stats.n_rows - stats.n_missing
    n_numbers = n_present - stats.n_not_numbers
    if not 0 < stats.n_not_numbers < n_numbers:
        return
    if not stats.too_many_levels:
        labels = pd.Series(list(stats.levels_all), dtype=object)
        if int(pd.to_numeric(labels, errors="coerce").notna().sum()) <= max_levels:
            return  # a few number labels beside text ones ("0", "1", "2", "3+"): categories, each kept
    position, value = _recorded(stats.first_not_number)
    raise GlselectError(
        f"column '{name}'{where} mixes numbers and text: {n_numbers} of {n_present} values are numbers, "
        f"{stats.n_not_numbers} are not (first at data row {position + 1}: {value!r})",
        hint=f"to use it as numbers, leave the unknown cells empty; to one-hot encode its values, pass --categorical '{name}'; "
        f"to leave it out, --drop '{name}'",
    )


def _check_finite(name: str, stats: ColumnStats, where: str) -> None:
    if stats.n_infinite:
        position, value = _recorded(stats.first_infinite)
        raise GlselectError(
            f"column '{name}'{where} has non-finite values ({stats.n_infinite}, first at data row {position + 1}: {value})",
            hint="replace infinities with a number or leave the cell empty",
        )


def _with_indicator(column: ColumnEncoding, stats: ColumnStats) -> ColumnEncoding:
    if not column.missing_indicator:
        return column
    p, scale = _share_scale(stats.n_missing_train, stats.n_train)
    return replace(column, centers=(*column.centers, p), scales=(*column.scales, scale))


def _column_encoding(name: str, stats: ColumnStats, max_levels: int, where: str) -> ColumnEncoding:
    """How one column is used, from its merged statistics; the rules run in this order.

    ``where`` follows the column's name in messages: "" or " in 'data.parquet'"."""
    if stats.n_missing == stats.n_rows:
        return ColumnEncoding(name, "ignored", reason="every value is missing")
    if stats.kind == "ignored":
        return ColumnEncoding(name, "ignored", reason=stats.reason)
    if stats.kind == "numeric":  # before the constant test: a column of infinities is as wrong as one infinite cell
        _check_finite(name, stats, where)
    if _is_constant(stats):
        return ColumnEncoding(name, "ignored", reason=f"constant: every value is {_recorded(stats.first)[1]!r}")
    flagged = stats.n_missing > 0
    if stats.kind == "boolean":
        column = ColumnEncoding(
            name,
            "boolean",
            missing_indicator=flagged,
            centers=(stats.moments.mean,),
            scales=(_scale(stats.moments.m2 / max(stats.moments.n, 1)),),
            reason="boolean: 0/1, standardised" + ("; missing cells set to 0 and flagged" if flagged else ""),
        )
        return _with_indicator(column, stats)
    if stats.kind == "numeric":
        if stats.moments.n == 0:
            return ColumnEncoding(name, "ignored", reason="every value in the training rows is missing")
        # missing cells take the mean: they add nothing to the squared deviations but count as rows
        column = ColumnEncoding(
            name,
            "numeric",
            missing_indicator=flagged,
            centers=(stats.moments.mean,),
            scales=(_scale(stats.moments.m2 / max(stats.n_train, 1)),),
            reason="numeric: standardised" + ("; missing cells imputed with the mean and flagged" if flagged else ""),
        )
        return _with_indicator(column, stats)
    if stats.kind == "text":
        _check_not_numbers_in_text(name, stats, where)
        _check_numbers_mixed_with_text(name, stats, max_levels, where)
    if stats.too_many_levels:
        return ColumnEncoding(name, "ignored", reason=f"more than {MAX_TRACKED_LEVELS} distinct values: an ID or free text")
    if stats.kind == "text":
        n_present, n_distinct = stats.n_rows - stats.n_missing, len(stats.levels_all)
        if n_distinct == n_present and n_present >= MIN_ROWS_FOR_ID:
            return ColumnEncoding(name, "ignored", reason="ID-like: every value is unique")
        if stats.text_length / n_present > FREE_TEXT_LENGTH and n_distinct > 0.5 * n_present:
            return ColumnEncoding(name, "ignored", reason="free text: long, mostly distinct values")
    ordered = sorted(stats.levels_train.items(), key=lambda item: (-item[1], item[0]))
    kept = [str(level) for level, _ in ordered[:max_levels]]
    pooled = len(ordered) > max_levels
    levels = tuple(sorted(kept)) + ((OTHER_LEVEL,) if pooled else ())
    counts = {level: stats.levels_train[level] for level in kept}
    if pooled:
        counts[OTHER_LEVEL] = stats.n_train - sum(counts.values())
    shares = [_share_scale(counts[level], stats.n_train) for level in levels]
    return ColumnEncoding(
        name,
        "categorical",
        levels=levels,
        centers=tuple(center for center, _ in shares),
        scales=tuple(scale for _, scale in shares),
        reason=f"categorical: one-hot over {plural(len(levels), 'level')}, standardised"
        + (f" ({plural(len(ordered) - max_levels, 'rare level')} pooled as {OTHER_LEVEL})" if pooled else ""),
    )


def _target_encoding(name: str, stats: TargetStats, task: str | None, event: str | None = None) -> TargetEncoding:
    """The target's task and encoding from its distinct values (classes) or its moments (regression).

    A survival target arrives folded (``glselect.data.survival``, checked as it was read): its events are the
    positive values."""
    if task == "survival":
        if stats.n_positive == 0:
            raise GlselectError(
                f"event column '{event}' has no events: every row is censored",
                hint="the Cox model learns from the rows whose event happened (event 1 or True)",
            )
        return TargetEncoding(name, task, event=event)
    distinct = (stats.distinct if stats.distinct is not None else pd.Series([], dtype=object)).rename(name)
    is_number = pd.api.types.is_numeric_dtype(distinct) and not pd.api.types.is_bool_dtype(distinct)
    if task is None:
        # more distinct numbers than any class count: a regression target, without listing them all
        task = "regression" if is_number and stats.overflowed else detect_task(distinct)
        if task == "multiclass" and is_number and len(distinct) > (stats.n_rows - stats.n_missing) / MIN_CLASS_ROWS:
            task = "regression"  # a few whole numbers, hardly any repeated: amounts, not class labels
    if task == "regression":
        if not is_number:
            raise GlselectError(
                f"target column '{name}' is not numeric, so it cannot be a regression target", hint="use --task binary or --task multiclass"
            )
        if stats.non_finite:
            raise GlselectError(f"target column '{name}' has non-finite values (inf)")
        if stats.moments.n and stats.moments.m2 == 0:
            raise GlselectError(
                f"target column '{name}' has only one distinct value ({plain_value(distinct.iloc[0])!r})",
                hint="a target must vary to be predicted",
            )
        return TargetEncoding(name, task, center=stats.moments.mean, scale=_scale(stats.moments.m2 / max(stats.moments.n, 1)))
    if stats.overflowed:
        raise GlselectError(
            f"target column '{name}' has more than {MAX_TARGET_VALUES} classes", hint="use --task regression for a numeric target"
        )
    encoding = fit_target(distinct, task)
    _check_class_sizes(name, encoding, stats)
    return encoding


def _check_class_sizes(name: str, encoding: TargetEncoding, stats: TargetStats) -> None:
    """At least two classes need rows to learn from and rows to be scored on; a label on (nearly) every row is no class."""
    n_rows = stats.n_rows - stats.n_missing
    sizes = {label: stats.counts[label] for label in encoding.classes}
    n_classes = len(sizes)
    is_number = pd.api.types.is_numeric_dtype(stats.distinct) and not pd.api.types.is_bool_dtype(stats.distinct)
    if n_classes > n_rows / MIN_CLASS_ROWS:
        raise GlselectError(
            f"target column '{name}' has {n_classes} classes in {n_rows} rows: a class label must repeat to be learned "
            "(is it an ID or free text?)",
            hint="choose another target column" + (", or pass --task regression for a numeric target" if is_number else ""),
        )
    tiny = [label for label, size in sizes.items() if size < MIN_CLASS_ROWS]
    if n_classes - len(tiny) < 2:  # a multiclass target keeps its other classes (data.reading warns of the tiny ones)
        listed = ", ".join(repr(plain_value(label)) for label in tiny[:5]) + (" ..." if len(tiny) > 5 else "")
        raise GlselectError(
            f"target column '{name}' has {'a class' if len(tiny) == 1 else f'{len(tiny)} classes'} with a single row ({listed}): "
            "a class needs rows to learn from and rows to be scored on",
            hint="drop those rows or merge each such class into another; a class needs at least "
            f"{MIN_CLASS_ROWS} rows (and dozens to be learned well)",
        )


def build_encoder_from_stats(
    stats: StreamStats,
    target: str,
    task: str | None,
    max_levels: int,
    excluded: frozenset = frozenset(),
    *,
    source: str | None = None,
    event: str | None = None,
) -> Encoder:
    """The fitted ``Encoder`` from merged statistics: the one rule set, in memory and streamed.

    Parameters
    ----------
    stats
        From ``collect_batch_stats`` (merged over batches and ranks).
    target
        The target column's name.
    task
        ``"regression"``, ``"binary"``, ``"multiclass"``, or None to detect it from the target.
    max_levels
        One-hot levels kept per categorical column; rarer levels are pooled.
    excluded
        Columns the user left out (``--drop``, ``--features``): recorded as ignored.
    source
        The table's name, for messages about a column's values (``column 'x' in 'data.parquet' has ...``);
        None leaves it out, as the in-memory fit does.
    event
        With ``task="survival"``: the event column, already folded into ``target`` (the time column).

    Raises
    ------
    GlselectError
        The target is unusable, a numeric column has infinities, a text column is numbers with a few bad
        cells, or no column is usable.
    """
    target_encoding = _target_encoding(target, stats.target, task, event)
    where = f" in '{source}'" if source else ""
    columns = tuple(
        ColumnEncoding(str(name), "ignored", reason=LEFT_OUT)
        if name in excluded
        else _column_encoding(str(name), column_stats, max_levels, where)
        for name, column_stats in stats.columns.items()
    )
    if not any(column.output_names for column in columns):
        raise GlselectError("the table has no usable feature columns besides the target")
    return Encoder(columns=columns, target=target_encoding)


def fit_encoder(
    df: pd.DataFrame,
    target: str,
    task: str | None = None,
    fit_rows: np.ndarray | None = None,
    *,
    rules: ColumnRules = ColumnRules(),
    event: str | None = None,
) -> Encoder:
    """Fit the encoding: feature statistics on the training rows, the target's classes on all rows.

    The table is one batch of the statistics pass a Parquet stream makes (``glselect.data.stats``),
    and the same rules decide each column's kind, so a table is encoded alike in memory and streamed.

    Parameters
    ----------
    df
        The whole table, target included, with no missing target values.
    target
        The target column's name.
    task
        ``"regression"``, ``"binary"``, ``"multiclass"``, or None to detect it from the target.
    fit_rows
        Row positions whose feature statistics (means, scales, levels) are used, as a set (order
        and repeats do not matter); None: all rows.
        Held-out rows must not shape the encoding they are scored with; a column's kind (and any
        error about its values) is decided on all rows. Messages name rows by position + 1.
    rules
        The columns left out, those one-hot encoded whatever their type, and the one-hot levels kept.
    event
        With ``task="survival"``: the event column, already folded into ``target`` (``glselect.data.survival``).

    Raises
    ------
    GlselectError
        The target is unusable (one value, wrong type for the task), a numeric column has
        infinities, a text column is numbers with a few bad cells, or no column is usable.
    """
    return fit_encoder_and_stats(df, target, task, fit_rows, rules=rules, event=event)[0]


def fit_encoder_and_stats(
    df: pd.DataFrame,
    target: str,
    task: str | None = None,
    fit_rows: np.ndarray | None = None,
    *,
    rules: ColumnRules = ColumnRules(),
    event: str | None = None,
) -> tuple[Encoder, StreamStats]:
    """``fit_encoder``, and the column statistics it was fitted from (what ``data.reading`` reports on)."""
    kinds = frame_kinds(df, [name for name in df.columns if name != target], rules.excluded, rules.categorical)
    stats = collect_batch_stats([(df, np.arange(len(df)))], training_part(len(df), fit_rows), target, kinds)
    stats.notes = dict(df.attrs.get(NOTES_KEY, {}))
    return build_encoder_from_stats(stats, target, task, rules.max_levels, rules.excluded, event=event), stats


def _raw_block(column: ColumnEncoding, values: pd.Series) -> np.ndarray:
    """The column's encoded values before standardising, shape (n_samples, n_outputs)."""
    if column.kind == "boolean":
        missing = values.isna().to_numpy()
        # not Series.fillna: pandas warns of its object downcast
        as_float = np.where(missing, False, values.to_numpy(dtype=object)).astype("float64")
        parts = [as_float]
    elif column.kind == "numeric":
        if not pd.api.types.is_numeric_dtype(values):
            raise GlselectError(f"column '{column.name}' was numeric when the model was fitted but is not numeric now")
        as_float = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(as_float)
        parts = [np.where(missing, column.centers[0], as_float)]  # missing cells take the training mean
    else:
        labels = category_labels(values).to_numpy(dtype=object)
        codes = pd.Index(column.levels, dtype=object).get_indexer(labels)
        if OTHER_LEVEL in column.levels:  # unseen levels join the pooled level, else encode to zeros
            codes[codes < 0] = column.levels.index(OTHER_LEVEL)
        one_hot = np.zeros((len(labels), len(column.levels)))
        rows = np.flatnonzero(codes >= 0)
        one_hot[rows, codes[rows]] = 1.0
        return one_hot
    if column.missing_indicator:
        parts.append(missing.astype(np.float64))
    return np.stack(parts, axis=1)


def _infinite_error(name: str, as_float: np.ndarray) -> GlselectError:
    infinite = np.isinf(as_float)
    row = int(np.flatnonzero(infinite)[0])
    return GlselectError(
        f"column '{name}' has non-finite values ({int(infinite.sum())}, first at data row {row + 1}: {as_float[row]})",
        hint="replace infinities with a number or leave the cell empty",
    )


def _encode_column(column: ColumnEncoding, values: pd.Series) -> np.ndarray:
    if column.kind == "numeric" and pd.api.types.is_numeric_dtype(values):
        as_float = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.any(np.isinf(as_float)):
            raise _infinite_error(column.name, as_float)
    return (_raw_block(column, values) - np.asarray(column.centers)) / np.asarray(column.scales)


def _encode_numeric_block(
    columns: list[ColumnEncoding],
    raws: list[np.ndarray],
    X: np.ndarray,
    offsets: list[int],
    errors: dict[int, GlselectError],
    indices: list[int],
) -> None:
    """Numeric columns, a block at once (``glselect.data.numeric``), into their places in ``X``: elementwise the
    same arithmetic as ``_encode_column``, so the same float32 values. A column with infinities is recorded in
    ``errors`` under its index."""
    block = float_block(raws)
    missing = np.isnan(block)
    has_infinite = np.isinf(block).any(axis=0)
    for j, column in enumerate(columns):
        if has_infinite[j]:
            errors[indices[j]] = _infinite_error(column.name, block[:, j])
        elif column.missing_indicator:
            X[:, offsets[j] + 1] = (missing[:, j].astype(np.float64) - column.centers[1]) / column.scales[1]
    centers = np.array([column.centers[0] for column in columns])
    scales = np.array([column.scales[0] for column in columns])
    # in place, the block being this function's own copy: a wide table's block is tens of MB, and every
    # temporary of that size is fresh pages to fault in
    np.copyto(block, np.broadcast_to(centers, block.shape), where=missing)  # missing cells take the training mean
    np.subtract(block, centers, out=block)
    np.divide(block, scales, out=block)
    # one write for the block (column by column is 5x slower), a slice when the block's columns sit side by
    # side in X (no missing indicator among them), which halves it again
    places = slice(offsets[0], offsets[-1] + 1) if offsets[-1] - offsets[0] == len(offsets) - 1 else offsets
    X[:, places] = block


def encode_features(encoder: Encoder, table: pd.DataFrame | pa.RecordBatch) -> np.ndarray:
    """Encoded float32 matrix of shape (n_samples, n_features) for a table with the fitted columns.

    ``table``: a DataFrame, or an Arrow record batch (a streamed batch), whose numeric columns are read
    without passing through pandas.

    Raises
    ------
    GlselectError
        A fitted column is absent, a numeric column is no longer numeric or has infinities (the first such
        column in the encoder's order is named).
    """
    names = set(table.schema.names if isinstance(table, pa.RecordBatch) else table.columns)  # a set: tables have 10,000s of columns
    used = [column for column in encoder.columns if column.kind != "ignored"]
    absent = [column.name for column in used if column.name not in names]
    if absent:
        raise GlselectError(f"the table lacks column(s) the model was fitted on: {', '.join(map(repr, absent))}")
    n_rows = table.num_rows if isinstance(table, pa.RecordBatch) else len(table)
    X = np.empty((n_rows, len(encoder.feature_names)), dtype=np.float32)
    errors: dict[int, GlselectError] = {}  # raised after the pass, the first column's, as a column-by-column pass would
    numeric: list[tuple[int, ColumnEncoding, np.ndarray, int]] = []
    offset = 0
    for index, column in enumerate(used):
        values = column_of(table, column.name)
        if column.kind == "numeric" and is_plain_numeric(values):
            numeric.append((index, column, raw_values(values), offset))
        else:
            try:
                block = _encode_column(column, as_series(values))
                X[:, offset : offset + block.shape[1]] = block
            except GlselectError as err:
                errors[index] = err
        offset += len(column.output_names)
    for run in in_blocks(numeric):
        _encode_numeric_block(
            [column for _, column, _, _ in run],
            [raw for _, _, raw, _ in run],
            X,
            [at for *_, at in run],
            errors,
            [index for index, *_ in run],
        )
    if errors:
        raise errors[min(errors)]
    return X


def _naming_the_row(err: GlselectError, encoder: Encoder, table: pd.DataFrame) -> GlselectError:
    """``err``, naming the first row whose cell a numeric column cannot read, when there is one:
    in a table of a million rows 'not numeric' alone does not say where to look."""
    for column in encoder.columns:
        if column.kind != "numeric" or column.name not in table.columns:
            continue
        values = table[column.name]
        unreadable = np.flatnonzero((pd.to_numeric(values, errors="coerce").isna() & values.notna()).to_numpy())
        if len(unreadable):
            row = int(unreadable[0])
            return GlselectError(
                f"column '{column.name}' was numeric when the model was fitted, but data row {row + 1} holds "
                f"{values.iloc[row]!r} ({len(unreadable)} unreadable cell{'s' if len(unreadable) != 1 else ''} in all)",
                hint="give that column numbers (or leave cells empty for missing values)",
            )
    return err


def encode(encoder: Encoder, table: pd.DataFrame | pa.RecordBatch) -> Design:
    """Apply a fitted encoder to a table (a DataFrame or an Arrow record batch) that contains the target."""
    target = column_of(table, encoder.target.name)
    return Design(
        X=encode_features(encoder, table),
        y=encode_target(encoder.target, as_series(target)),
        feature_names=tuple(encoder.feature_names),
        sources=tuple(encoder.sources),
    )


def build_encoder(
    stats: StreamStats, source: Source, target: str, task: str | None, rules: ColumnRules, event: str | None = None
) -> Encoder:
    """``build_encoder_from_stats`` for the streaming fit (the same class and file format as in memory);
    messages about a column's values name ``source``'s path. (``rules.categorical`` is already in the kinds
    the statistics were collected with.)"""
    return build_encoder_from_stats(stats, target, task, rules.max_levels, rules.excluded, source=str(source.path), event=event)
