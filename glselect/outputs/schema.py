"""What a saved out dir must hold, checked as it is read.

An out dir is plain files that people copy, edit and truncate. Every field a reader uses is checked
here, once, so that ``predict``, ``show``, ``select``, ``check``, ``report`` and the loaders either
work on what they find or stop with one message naming the file and the field, never a traceback
from deep inside pandas, numpy or torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from glselect.data.encoder import ColumnEncoding, Encoder
from glselect.data.target import TargetEncoding
from glselect.errors import GlselectError

TASKS = ("regression", "binary", "multiclass", "survival")
COLUMN_KINDS = ("numeric", "boolean", "categorical", "ignored")
HINT = "the file was changed or damaged after the fit: refit, or restore it from a copy"

Check = Callable[[Any], bool]  # True when a JSON value is acceptable


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _malformed(file: Path, field: str, expected: str, found: Any) -> NoReturn:
    raise GlselectError(f"'{file}' is malformed: {field} must be {expected}, found {_short(found)}", hint=HINT)


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_count(value: Any) -> bool:
    """A whole number >= 0 (JSON's true/false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_object(value: Any) -> bool:
    return isinstance(value, dict)


def is_number(value: Any) -> bool:
    """A finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_number_or_null(value: Any) -> bool:
    """A number, or null: the summary writes a metric that could not be computed (NaN) as null."""
    return value is None or is_number(value)


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def list_of(check: Check, *, unique: bool = False) -> Check:
    def accepts(value: Any) -> bool:
        if not isinstance(value, list) or not all(check(item) for item in value):
            return False
        return not unique or len({repr(item) for item in value}) == len(value)

    return accepts


def mapping_of(check: Check) -> Check:
    return lambda value: isinstance(value, dict) and all(check(item) for item in value.values())


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _field(document: dict[str, Any], key: str, check: Check, expected: str, file: Path, where: str = "") -> Any:
    if key not in document:
        raise GlselectError(f"'{file}' is malformed: it lacks '{where}{key}'", hint=HINT)
    value = document[key]
    if not check(value):
        _malformed(file, f"'{where}{key}'", expected, value)
    return value


def _document(value: Any, file: Path, where: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        _malformed(file, f"'{where.rstrip('.')}'" if where else "the file", "a JSON object", value)
    return value


# ---------------------------------------------------------------------------------------- summary.json


def check_summary(summary: Any, file: Path) -> dict[str, Any]:
    """``summary`` (parsed ``summary.json``) when every field a reader uses is there and well typed:
    checked against ``outputs/summary.FIELDS``, the one definition of the file's fields.

    Raises
    ------
    GlselectError
        Naming the first field that is missing or of the wrong type.
    """
    from glselect.outputs.summary import check_summary as check  # summary.py builds on this module's checks

    return check(summary, file)


# ------------------------------------------------------------------------------------- result tables

# (column, kind) per table; kind: "text", "count", "number" (NaN allowed: not computed), "flag"
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "importances.csv": (
        ("rank", "count"),
        ("feature", "text"),
        ("group", "text"),
        ("selected", "flag"),
        ("importance", "number"),
        ("dense_norm", "number"),
    ),
    "groups.csv": (("rank", "count"), ("group", "text"), ("selected", "flag"), ("importance", "number")),
    "path.csv": (("step", "count"), ("lambda", "number"), ("n_selected", "count"), ("val_loss", "number")),
    "path_norms.parquet": (("step", "count"), ("group", "text"), ("norm", "number")),
}
# measures a table may have, read as numbers when present (empty cells: not computed)
OPTIONAL_NUMBERS = {
    "importances.csv": ("round", "permutation", "permutation_std", "stability"),
    "groups.csv": ("round", "permutation", "permutation_std", "stability"),
    "path.csv": ("relaxed_val_loss", "relaxed_val_se", "cv_loss", "cv_se", "optimality"),
    "path_norms.parquet": (),
}
FLAGS = {True: True, False: False, "True": True, "False": False, "true": True, "false": False}


def _bad_cell(file: Path, column: str, values: pd.Series, bad: np.ndarray, expected: str) -> NoReturn:
    row = int(np.flatnonzero(bad)[0])
    raise GlselectError(
        f"'{file}' is malformed: column '{column}' must hold {expected}, found {_short(values.iloc[row])} in data row {row + 1}",
        hint=HINT,
    )


def _typed_column(values: pd.Series, kind: str, file: Path, column: str) -> pd.Series:
    if kind == "text":
        return values.astype(str)
    if kind == "flag":
        flags = values.map(lambda value: FLAGS.get(value) if isinstance(value, (bool, np.bool_, str)) else None)
        if flags.isna().any():
            _bad_cell(file, column, values, flags.isna().to_numpy(), "True or False")
        return flags.astype(bool)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        blank = values.isna()
    else:  # text read back from a CSV: an empty cell is a measure that was not computed
        blank = values.isna() | values.astype(str).str.strip().isin(["", "nan", "NaN"])
    numbers = pd.to_numeric(values.where(~blank), errors="coerce").astype(np.float64)
    finite = np.isfinite(numbers.to_numpy())
    if kind == "count":  # whole, not negative, and small enough to be exact as a float
        bad = ~(finite & (numbers.to_numpy() >= 0) & (numbers.to_numpy() == np.floor(numbers.to_numpy())) & (numbers.to_numpy() < 2**53))
        if bad.any():
            _bad_cell(file, column, values, bad, "whole numbers")
        return numbers.astype(np.int64)
    bad = ~finite & ~blank.to_numpy()  # an empty cell is a measure that was not computed
    if bad.any():
        _bad_cell(file, column, values, bad, "finite numbers")
    return numbers


def check_table(table: pd.DataFrame, name: str, out_dir: Path) -> pd.DataFrame:
    """``table`` (read from ``out_dir / name``) with every column a reader uses present and typed.

    Raises
    ------
    GlselectError
        A required column is missing, a cell does not parse, or the table has no rows.
    """
    file = out_dir / name
    missing = [column for column, _ in TABLE_COLUMNS[name] if column not in table.columns]
    if missing:
        raise GlselectError(f"'{file}' is malformed: it lacks column(s) {', '.join(map(repr, missing))}", hint=HINT)
    if not len(table) and name != "path_norms.parquet":  # every fit has a column, a group and a dense step
        raise GlselectError(f"'{file}' is malformed: it has no rows", hint=HINT)
    typed = table.copy()
    for column, kind in TABLE_COLUMNS[name]:
        typed[column] = _typed_column(table[column], kind, file, column)
    for column in OPTIONAL_NUMBERS[name]:
        if column in table.columns:
            typed[column] = _typed_column(table[column], "number", file, column)
    return typed


def check_consistent(summary: dict[str, Any], path: pd.DataFrame, file: Path) -> None:
    """The summary's chosen step is a row of ``path.csv`` (the plot and the report look it up)."""
    if not (path["step"] == summary["step"]).any():
        raise GlselectError(f"'{file}' is malformed: its step {summary['step']} is not a row of 'path.csv'", hint=HINT)


# ------------------------------------------------------------------------------------------ model.json

COLUMN_FIELDS: dict[str, tuple[Check, str]] = {
    "name": (is_text, "text"),
    "kind": (lambda value: value in COLUMN_KINDS, f"one of {', '.join(COLUMN_KINDS)}"),
    "missing_indicator": (lambda value: isinstance(value, bool), "true or false"),
    "levels": (list_of(is_text, unique=True), "a list of distinct level names"),
    "centers": (list_of(is_number), "a list of numbers"),
    "scales": (list_of(lambda value: is_number(value) and value > 0), "a list of positive numbers"),
    "reason": (is_text, "text"),
}
TARGET_FIELDS: dict[str, tuple[Check, str]] = {
    "name": (is_text, "text"),
    "task": (lambda value: value in TASKS, f"one of {', '.join(TASKS)}"),
    "classes": (list_of(is_scalar, unique=True), "a list of distinct labels"),
    "center": (is_number, "a number"),
    "scale": (lambda value: is_number(value) and value > 0, "a positive number"),
    "event": (optional(is_text), "text or null"),
}


def _record(raw: Any, fields: dict[str, tuple[Check, str]], required: tuple[str, ...], file: Path, where: str) -> dict[str, Any]:
    raw = _document(raw, file, where)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise GlselectError(f"'{file}' is malformed: '{where}' has unknown field(s) {', '.join(map(repr, unknown))}", hint=HINT)
    for key in sorted(set(raw) | set(required)):
        _field(raw, key, *fields[key], file, f"{where}.")
    return raw


def _column(raw: Any, file: Path, where: str) -> ColumnEncoding:
    raw = _record(raw, COLUMN_FIELDS, ("name", "kind"), file, where)
    column = ColumnEncoding(**{**raw, **{key: tuple(raw[key]) for key in ("levels", "centers", "scales") if key in raw}})
    width = len(column.output_names)
    if len(column.centers) != width or len(column.scales) != width:
        raise GlselectError(
            f"'{file}' is malformed: '{where}' ({column.kind}) encodes {width} column(s) but has "
            f"{len(column.centers)} centers and {len(column.scales)} scales",
            hint=HINT,
        )
    return column


def _target(raw: Any, file: Path) -> TargetEncoding:
    raw = _record(raw, TARGET_FIELDS, ("name", "task"), file, "encoder.target")
    target = TargetEncoding(**{**raw, "classes": tuple(raw.get("classes", ()))})
    if (target.task == "binary" and len(target.classes) != 2) or (target.task == "multiclass" and len(target.classes) < 2):
        _malformed(
            file,
            "'encoder.target.classes'",
            f"{'2' if target.task == 'binary' else '2 or more'} labels for a {target.task} target",
            list(target.classes),
        )
    return target


def encoder_from_meta(meta: dict[str, Any], file: Path) -> Encoder:
    """The saved ``Encoder`` of ``model.json``, every column and the target checked."""
    raw = _document(_field(meta, "encoder", is_object, "an object", file), file, "encoder.")
    columns = _field(raw, "columns", lambda value: isinstance(value, list), "a list", file, "encoder.")
    encoder = Encoder(
        columns=tuple(_column(column, file, f"encoder.columns[{index}]") for index, column in enumerate(columns)),
        target=_target(_field(raw, "target", is_object, "an object", file, "encoder."), file),
    )
    names = encoder.feature_names
    if len(set(names)) != len(names):
        raise GlselectError(f"'{file}' is malformed: its encoder has repeated column names", hint=HINT)
    return encoder


def architecture_from_meta(meta: dict[str, Any], file: Path, encoder: Encoder) -> tuple[int, tuple[int, ...], int, tuple[str, ...]]:
    """``(n_inputs, hidden, n_outputs, inputs)`` of ``model.json``, consistent with its encoder."""
    n_inputs = _field(meta, "n_inputs", is_count, "a whole number", file)
    hidden = tuple(_field(meta, "hidden", list_of(lambda value: is_count(value) and value > 0), "a list of positive whole numbers", file))
    n_outputs = _field(
        meta, "n_outputs", lambda value: value == encoder.target.n_outputs, f"{encoder.target.n_outputs} for its target", file
    )
    inputs = tuple(_field(meta, "inputs", list_of(is_text, unique=True), "a list of distinct column names", file))
    if len(inputs) != n_inputs:
        raise GlselectError(f"'{file}' is malformed: it lists {len(inputs)} inputs but 'n_inputs' is {n_inputs}", hint=HINT)
    unknown = sorted(set(inputs) - set(encoder.feature_names))
    if unknown:
        raise GlselectError(f"'{file}' is malformed: its inputs {unknown[:3]} are not columns of its encoder", hint=HINT)
    return n_inputs, hidden, n_outputs, inputs


def tensor_shapes(n_inputs: int, hidden: tuple[int, ...], n_outputs: int) -> dict[str, tuple[int, ...]]:
    """The shapes of ``GroupLassoMLP(n_inputs, hidden, n_outputs)``'s tensors, known before building it
    (a tampered width must not allocate a huge model before the weights file disagrees)."""
    widths = [n_inputs, *hidden, n_outputs]
    shapes: dict[str, tuple[int, ...]] = {}
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        shapes[f"layers.{index}.weight"] = (fan_out, fan_in)
        shapes[f"layers.{index}.bias"] = (fan_out,)
    return shapes
