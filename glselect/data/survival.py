"""Survival targets: a time column and an event column, folded into one target value per row.

Every stage of a fit reads the target as one value per row (a 1-D ``y``). A survival target is two
columns, so as each batch is read (the in-memory table is one batch) the event column is folded into
the time column:

    y = +(1 + t)  for a row whose event happened at time t
    y = -(1 + t)  for a row censored at time t

The sign is the event indicator and ``|y|`` increases with ``t``, which is all the Cox partial
likelihood and the concordance index look at: both use only the order of the times. The 1 keeps a time
of 0 from losing its sign. A row missing its time or its event gets no target, so it is dropped like a
row missing any other target. After folding, the statistics pass, the split, the encoder and every
later stage run the same code as for any other task; only the loss and the metric read the sign.

``y`` is float32 on the device, so times are compared to about 7 significant digits: a duration in
days or years is exact enough, a raw epoch timestamp is not (subtract the start of follow-up first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from glselect.config import RunConfig
from glselect.data.names import with_suggestion
from glselect.data.numeric import Batch
from glselect.errors import GlselectError

EVENT_HINT = "encode the event as 1 (or True) when it happened at the row's time, 0 (or False) when the row is censored"


def survival_columns(config: RunConfig) -> tuple[str, str]:
    """``(time, event)`` of a survival fit's config.

    Raises
    ------
    GlselectError
        Either is not named (``RunConfig`` refuses that already; the check gives the columns their type).
    """
    if config.time is None or config.event is None:
        raise GlselectError("--task survival needs --time COL (the follow-up time) and --event COL (1 if the event happened)")
    return config.time, config.event


def check_survival_columns(
    columns: list[str], time: str, event: str, features: tuple[str, ...] | None, drop: tuple[str, ...], source: str
) -> None:
    """The time and event columns are in the table and are not named as features (they are the target)."""
    for role, name in (("time", time), ("event", event)):
        if name not in columns:
            raise GlselectError(
                f"{role} column '{name}' (--{role}) is not in '{source}'",
                hint=with_suggestion(
                    f"columns are: {', '.join(map(str, columns[:20]))}" + (" ..." if len(columns) > 20 else ""), [name], columns
                ),
            )
        if name in (*(features or ()), *drop):
            raise GlselectError(f"the {role} column '{name}' is part of the target: it cannot be named by --features or --drop")


def _first(positions: np.ndarray, bad: np.ndarray) -> tuple[int, int]:
    """(1-based data row, index in the batch) of the earliest flagged row; positions are 0-based file positions."""
    index = int(np.flatnonzero(bad)[np.argmin(positions[bad])])
    return int(positions[index]) + 1, index


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _times(values: pd.Series, name: str, positions: np.ndarray) -> np.ndarray:
    """Float64 times, NaN where missing; raises on text, booleans, infinities and negative times."""
    hint = "the time is a duration since the start of follow-up: a number >= 0"
    if pd.api.types.is_bool_dtype(values):
        raise GlselectError(f"time column '{name}' holds True/False, not times", hint=hint)
    if not pd.api.types.is_numeric_dtype(values):
        present = values.notna().to_numpy(dtype=bool)
        parsed = pd.to_numeric(values, errors="coerce")
        bad = present & parsed.isna().to_numpy(dtype=bool)
        if bad.any():
            row, index = _first(positions, bad)
            raise GlselectError(
                f"time column '{name}' has {int(bad.sum())} non-numeric values (first at data row {row}: {_plain(values.iloc[index])!r})",
                hint=hint,
            )
        values = parsed
    times = values.to_numpy(dtype=np.float64, na_value=np.nan)
    for bad, what in ((np.isinf(times), "non-finite"), (times < 0, "negative")):
        if bad.any():
            row, index = _first(positions, bad)
            raise GlselectError(
                f"time column '{name}' has {what} values ({int(bad.sum())}, first at data row {row}: {times[index]:g})",
                hint=hint if what == "negative" else "give a censored row its last follow-up time, or leave the cell empty",
            )
    return times


def _events(values: pd.Series, name: str, positions: np.ndarray) -> np.ndarray:
    """Float64 events, 1.0 / 0.0 and NaN where missing; raises on anything but 0/1/True/False."""
    present = values.notna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(values):
        return np.where(present, values.fillna(False).astype(bool).to_numpy(), np.nan).astype(np.float64)
    if values.dtype == object:  # True/False with missing cells arrive as objects
        values = values.map(lambda value: float(value) if isinstance(value, (bool, np.bool_)) else value)
    as_number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = present & ~np.isin(as_number, (0.0, 1.0))
    if bad.any():
        row, index = _first(positions, bad)
        raise GlselectError(
            f"event column '{name}' must hold 0/1 or True/False; {int(bad.sum())} values do not "
            f"(first at data row {row}: {_plain(values.iloc[index])!r})",
            hint=EVENT_HINT,
        )
    return np.where(present, as_number, np.nan)


def fold_values(time: pd.Series, event: pd.Series, positions: np.ndarray) -> np.ndarray:
    """``+(1 + t)`` for events, ``-(1 + t)`` for censored rows, NaN where either is missing (float64).

    Raises
    ------
    GlselectError
        A time that is not a number, not finite or negative; an event that is not 0/1/True/False.
        Messages name the column and the first data row (``positions`` + 1).
    """
    times = _times(time, str(time.name), positions)
    events = _events(event, str(event.name), positions)
    return np.where(events == 1.0, 1.0, -1.0) * (1.0 + times) + np.where(np.isnan(events), np.nan, 0.0)


def fold_batch(batch: Batch, time: str, event: str, positions: np.ndarray) -> Batch:
    """``batch`` with the event column removed and the time column holding the folded target, in its place."""
    if isinstance(batch, pd.DataFrame):
        folded = fold_values(batch[time], batch[event], positions)
        frame = batch.drop(columns=[event]).assign(**{time: folded})
        frame.attrs = dict(batch.attrs)  # the reading notes stay with the table
        return frame
    values = fold_values(batch.column(time).to_pandas().rename(time), batch.column(event).to_pandas().rename(event), positions)
    names = [name for name in batch.schema.names if name != event]
    arrays = [pa.array(values, from_pandas=True) if name == time else batch.column(name) for name in names]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def unfold(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The time order key and the event indicator of folded targets: ``(|y|, y > 0)``."""
    return y.abs(), y > 0
