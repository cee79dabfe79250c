"""Turn a table into a design matrix, with an encoder fitted once and reapplied by ``predict``.

Every encoded column remembers its source column, so results are reported per original column
and all of a column's encoded parts (one-hot levels, missing indicator) share its group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from glselect.errors import GlselectError
from glselect.data.target import TargetEncoding, detect_task, encode_target, fit_target, plain_value

MAX_LEVELS = 20  # one-hot levels kept per categorical column; rarer ones are pooled
OTHER_LEVEL = "<other>"
MISSING_LEVEL = "<missing>"
MIN_ROWS_FOR_ID = 20  # with fewer rows, all-distinct values say little about a column being an ID
FREE_TEXT_LENGTH = 40  # mean characters per value above which a mostly-distinct column is free text
NUMERIC_TEXT_SHARE_BAD = 0.1  # a text column whose values are >= 90% numbers is a numeric column with bad cells


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

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(column) for column in self.columns], "target": asdict(self.target)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Encoder:
        columns = tuple(
            ColumnEncoding(
                **{**column, **{key: tuple(column[key]) for key in ("levels", "centers", "scales")}}
            )
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
            hint="check the spelling against the table's header",
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


def _is_boolean(values: pd.Series) -> bool:
    """A bool column, or an object column (a bool column with missing cells) holding only booleans."""
    if pd.api.types.is_bool_dtype(values):
        return True
    if values.dtype != object:
        return False
    present = values.dropna()
    return len(present) > 0 and all(isinstance(value, (bool, np.bool_)) for value in present)


def _check_not_numbers_in_text(name: str, labels: pd.Series) -> None:
    """A text column that is mostly numbers is a numeric column with a few bad cells: say which."""
    parsed = pd.to_numeric(labels, errors="coerce")
    bad = parsed.isna().to_numpy()
    if 0 < bad.sum() <= NUMERIC_TEXT_SHARE_BAD * len(labels):
        row = int(np.flatnonzero(bad)[0])
        raise GlselectError(
            f"column '{name}' has {int(bad.sum())} non-numeric values among numbers "
            f"(first at data row {labels.index[row] + 1}: {labels.iloc[row]!r})",
            hint=f"clean those cells (leave them empty if unknown), or pass --categorical '{name}' to treat the column as categories",
        )


def _fit_column(values: pd.Series, fit_values: pd.Series, max_levels: int, categorical: bool) -> ColumnEncoding:
    """Decide how one column is used from all its values; fit its statistics on ``fit_values`` (training rows)."""
    name = str(values.name)
    n_missing = int(values.isna().sum())
    if n_missing == len(values):
        return ColumnEncoding(name, "ignored", reason="every value is missing")
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        return ColumnEncoding(name, "ignored", reason="date/time column: not used as-is (derive numeric features from it)")
    present = values.dropna()
    # nunique on the values themselves: converting every number to text costs seconds on wide tables
    n_distinct = present.nunique() if present.dtype != object else present.astype("string").nunique()
    if n_distinct == 1 and n_missing == 0:
        return ColumnEncoding(name, "ignored", reason=f"constant: every value is {plain_value(present.iloc[0])!r}")
    if not categorical and _is_boolean(values):
        return _standardised(
            ColumnEncoding(
                name,
                "boolean",
                missing_indicator=n_missing > 0,
                reason="boolean: 0/1, standardised" + ("; missing cells set to 0 and flagged" if n_missing else ""),
            ),
            fit_values,
        )
    if not categorical and pd.api.types.is_numeric_dtype(values):
        as_float = fit_values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        present_values = as_float[np.isfinite(as_float)]
        if present_values.size == 0:
            return ColumnEncoding(name, "ignored", reason="every value in the training rows is missing")
        column = ColumnEncoding(
            name,
            "numeric",
            missing_indicator=bool(n_missing),
            # the value column's center is the mean of the present values: the imputation value
            centers=(float(present_values.mean()),),
            reason="numeric: standardised" + ("; missing cells imputed with the mean and flagged" if n_missing else ""),
        )
        return _standardised(column, fit_values.where(~np.isinf(as_float)) if np.isinf(as_float).any() else fit_values)
    labels = present.astype("string")
    if not categorical:
        _check_not_numbers_in_text(name, labels)
        n_distinct = labels.nunique()
        if n_distinct == len(labels) and len(labels) >= MIN_ROWS_FOR_ID:
            return ColumnEncoding(name, "ignored", reason="ID-like: every value is unique")
        if labels.str.len().mean() > FREE_TEXT_LENGTH and n_distinct > 0.5 * len(labels):
            return ColumnEncoding(name, "ignored", reason="free text: long, mostly distinct values")
    counts = fit_values.astype("string").fillna(MISSING_LEVEL).value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [str(level) for level, _ in ordered[:max_levels]]
    pooled = len(ordered) > max_levels
    levels = tuple(sorted(kept)) + ((OTHER_LEVEL,) if pooled else ())
    column = ColumnEncoding(
        name,
        "categorical",
        levels=levels,
        reason=f"categorical: one-hot over {len(levels)} levels, standardised"
        + (f" ({len(ordered) - max_levels} rare levels pooled as {OTHER_LEVEL})" if pooled else ""),
    )
    return _standardised(column, fit_values)


def _standardised(column: ColumnEncoding, values: pd.Series) -> ColumnEncoding:
    """``column`` with the mean and standard deviation of each of its encoded columns on ``values``."""
    raw = _raw_block(column, values)
    scales = raw.std(axis=0)
    return replace(
        column,
        centers=tuple(float(c) for c in raw.mean(axis=0)),
        # a constant encoded column (a level every training row has) stays at zero
        scales=tuple(float(scale) if scale > 0 else 1.0 for scale in scales),
    )


def fit_encoder(
    df: pd.DataFrame,
    target: str,
    task: str | None = None,
    fit_rows: np.ndarray | None = None,
    *,
    max_levels: int = MAX_LEVELS,
    excluded: frozenset[str] = frozenset(),
    categorical: frozenset[str] = frozenset(),
) -> Encoder:
    """Fit the encoding: feature statistics on the training rows, the target's classes on all rows.

    Parameters
    ----------
    df
        The whole table, target included, with no missing target values.
    target
        The target column's name.
    task
        ``"regression"``, ``"binary"``, ``"multiclass"``, or None to detect it from the target.
    fit_rows
        Row positions whose feature statistics (means, scales, levels) are used; None: all rows.
        Held-out rows must not shape the encoding they are scored with; a column's kind (and any
        error about its values) is decided on all rows.
    max_levels
        One-hot levels kept per categorical column; rarer levels are pooled.
    excluded
        Columns the user left out (``--drop``, ``--features``): recorded as ignored.
    categorical
        Columns to one-hot encode whatever their type (``--categorical``).

    Raises
    ------
    GlselectError
        The target is unusable (one value, wrong type for the task) or a column has infinities.
    """
    task = task or detect_task(df[target])
    target_encoding = fit_target(df[target], task)
    fit_df = df if fit_rows is None else df.iloc[fit_rows]
    columns = tuple(
        ColumnEncoding(str(name), "ignored", reason="left out by the user (--drop / --features)")
        if name in excluded
        else _fit_column(df[name], fit_df[name], max_levels, name in categorical)
        for name in df.columns
        if name != target
    )
    if not any(column.output_names for column in columns):
        raise GlselectError("the table has no usable feature columns besides the target")
    return Encoder(columns=columns, target=target_encoding)


def _raw_block(column: ColumnEncoding, values: pd.Series) -> np.ndarray:
    """The column's encoded values before standardising, shape (n_samples, n_outputs)."""
    if column.kind == "boolean":
        missing = values.isna().to_numpy()
        as_float = np.where(missing, 0.0, values.fillna(False).astype("float64").to_numpy())
        parts = [as_float]
    elif column.kind == "numeric":
        if not pd.api.types.is_numeric_dtype(values):
            raise GlselectError(f"column '{column.name}' was numeric when the model was fitted but is not numeric now")
        as_float = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(as_float)
        parts = [np.where(missing, column.centers[0], as_float)]  # missing cells take the training mean
    else:
        labels = values.astype("string").fillna(MISSING_LEVEL).to_numpy(dtype=object)
        known = {level: index for index, level in enumerate(column.levels)}
        fallback = known.get(OTHER_LEVEL, -1)  # unseen levels join the pooled level, or encode to zeros
        codes = np.array([known.get(label, fallback) for label in labels], dtype=np.int64)
        one_hot = np.zeros((len(labels), len(column.levels)))
        rows = np.flatnonzero(codes >= 0)
        one_hot[rows, codes[rows]] = 1.0
        return one_hot
    if column.missing_indicator:
        parts.append(missing.astype(np.float64))
    return np.stack(parts, axis=1)


def _encode_column(column: ColumnEncoding, values: pd.Series) -> np.ndarray:
    if column.kind == "numeric" and pd.api.types.is_numeric_dtype(values):
        as_float = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.any(np.isinf(as_float)):
            row = int(np.flatnonzero(np.isinf(as_float))[0])
            raise GlselectError(
                f"column '{column.name}' has non-finite values ({int(np.isinf(as_float).sum())}, "
                f"first at data row {row + 1}: {as_float[row]})",
                hint="replace infinities with a number or leave the cell empty",
            )
    return (_raw_block(column, values) - np.asarray(column.centers)) / np.asarray(column.scales)


def encode_features(encoder: Encoder, df: pd.DataFrame) -> np.ndarray:
    """Encoded float32 matrix of shape (n_samples, n_features) for a table with the fitted columns."""
    used = [column for column in encoder.columns if column.kind != "ignored"]
    absent = [column.name for column in used if column.name not in df.columns]
    if absent:
        raise GlselectError(f"the table lacks column(s) the model was fitted on: {', '.join(map(repr, absent))}")
    blocks = [_encode_column(column, df[column.name]) for column in used]
    if not blocks:  # a model that selected no column reads nothing
        return np.zeros((len(df), 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def encode(encoder: Encoder, df: pd.DataFrame) -> Design:
    """Apply a fitted encoder to a table that contains the target."""
    return Design(
        X=encode_features(encoder, df),
        y=encode_target(encoder.target, df[encoder.target.name]),
        feature_names=tuple(encoder.feature_names),
        sources=tuple(encoder.sources),
    )
