"""The target column: which task it poses, its encoding (classes or standardisation), and rows without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from glselect.config import RunConfig
from glselect.data.names import target_not_found
from glselect.errors import GlselectError

MAX_CLASSES_FROM_INTEGERS = 20  # an integer target with at most this many values is a class label


@dataclass(frozen=True)
class TargetEncoding:
    name: str
    task: str  # "regression", "binary", "multiclass" or "survival"
    classes: tuple[Any, ...] = ()  # class labels, index = encoded class
    center: float = 0.0  # regression targets are standardised for training
    scale: float = 1.0
    event: str | None = None  # survival: the event column, folded into this (the time) column as it is read

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1


def target_column(config: RunConfig) -> str:
    """The column a fit predicts: ``--target``, or with ``--task survival`` the time column (``RunConfig`` sets it).

    Raises
    ------
    GlselectError
        No target is named (``RunConfig`` refuses that already; the check gives the column its type).
    """
    if config.target is None:
        raise GlselectError("--target is required: name the column to predict")
    return config.target


def drop_missing_target(df: pd.DataFrame, target: str, source: str) -> tuple[pd.DataFrame, int]:
    """Rows whose target is missing cannot be learned from: drop them and say how many."""
    if target not in df.columns:
        raise target_not_found(target, list(map(str, df.columns)), source)
    missing = df[target].isna().to_numpy()
    kept = df.loc[~missing].reset_index(drop=True)
    kept.attrs = dict(df.attrs)  # the reading notes (``glselect.data.io.reading_notes``) stay with the table
    return kept, int(missing.sum())


def plain_value(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages show 1.0 rather than np.float64(1.0)."""
    return value.item() if isinstance(value, np.generic) else value


def detect_task(values: pd.Series) -> str:
    """Regression, binary or multiclass, from the target's type and number of distinct values."""
    n_unique = values.nunique()
    if n_unique < 2:
        raise GlselectError(
            f"target column '{values.name}' has only one distinct value ({plain_value(values.iloc[0])!r})",
            hint="a target must vary to be predicted",
        )
    if pd.api.types.is_bool_dtype(values):
        return "binary"
    if pd.api.types.is_numeric_dtype(values):
        as_float = values.to_numpy(dtype=np.float64)
        is_integral = bool(np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)))
        if is_integral and n_unique == 2:
            return "binary"
        # integer labels with missing cells arrive as floats, so integral floats count as integers
        if is_integral and n_unique <= MAX_CLASSES_FROM_INTEGERS:
            return "multiclass"
        return "regression"
    return "binary" if n_unique == 2 else "multiclass"


def fit_target(values: pd.Series, task: str) -> TargetEncoding:
    name = str(values.name)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise GlselectError(
                f"target column '{name}' is not numeric, so it cannot be a regression target",
                hint="use --task binary or --task multiclass",
            )
        as_float = values.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(as_float)):
            raise GlselectError(f"target column '{name}' has non-finite values (inf)")
        scale = float(as_float.std())
        return TargetEncoding(name, task, center=float(as_float.mean()), scale=scale if scale > 0 else 1.0)
    classes = tuple(sorted(pd.unique(values).tolist(), key=lambda label: (str(type(label)), label)))
    classes = tuple(label.item() if hasattr(label, "item") else label for label in classes)
    if len(classes) < 2:
        raise GlselectError(f"target column '{name}' has only one class ({classes[0]!r})")
    if task == "binary" and len(classes) != 2:
        raise GlselectError(
            f"target column '{name}' has {len(classes)} classes, so it is not binary",
            hint="use --task multiclass",
        )
    return TargetEncoding(name, task, classes=classes)


def encode_target(target: TargetEncoding, values: pd.Series) -> np.ndarray:
    """Standardised float32 targets (regression), int64 class indices (classification), or the folded
    survival target as float32 (``glselect.data.survival``: never standardised, its sign is the event)."""
    if target.task == "survival":
        return values.to_numpy(dtype=np.float32)
    if target.task == "regression":
        return ((values.to_numpy(dtype=np.float64) - target.center) / target.scale).astype(np.float32)
    index = {label: code for code, label in enumerate(target.classes)}
    codes = np.array([index.get(label.item() if hasattr(label, "item") else label, -1) for label in values], dtype=np.int64)
    if np.any(codes < 0):
        unknown = values.iloc[int(np.flatnonzero(codes < 0)[0])]
        raise GlselectError(f"target column '{target.name}' has a class not seen in training: {unknown!r}")
    return codes
