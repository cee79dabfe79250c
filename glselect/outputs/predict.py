"""Apply a saved model to a raw table: the saved encoding, then the pruned network."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glselect.data.encoder import OTHER_LEVEL, Encoder
from glselect.data.stats import MISSING_LEVEL, category_labels
from glselect.outputs.load import LoadedModel


def predict_table(loaded: LoadedModel, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of ``table``, in row order (``LoadedModel.predict_table``).

    Only the columns the model reads must be present; unseen category levels and missing cells
    are encoded exactly as in training (pooled level, imputed mean plus indicator), and so is a
    column that is empty in every row (a CSV file holds no type for it). ``input_notes`` says
    when either happened. A table without rows gives a frame without rows, with the columns.

    Returns
    -------
    pandas.DataFrame
        Survival: ``risk_score``, the model's log-hazard (higher: the event comes sooner; only its
        order and differences mean something, as in any Cox model). Regression: ``prediction`` in the
        target's units. Classification: ``prediction`` (the
        class label) and one ``probability_<label>`` column per class.

    Raises
    ------
    GlselectError
        A column the model reads is missing or has the wrong type.
    """
    return loaded.predict_table(_empty_columns_as_missing(loaded.encoder, table))


def _empty_columns_as_missing(encoder: Encoder, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each numeric column the model reads that has no value at all as float NaN: read from a
    CSV file such a column has no type, and its cells are missing, not text."""
    empty = {
        column.name: np.full(len(table), np.nan)
        for column in encoder.columns
        if column.kind == "numeric"
        and column.name in table.columns
        and not pd.api.types.is_numeric_dtype(table[column.name])
        and bool(table[column.name].isna().all())
    }
    return table.assign(**empty) if empty else table


def _listed(labels: list[str], most: int = 3) -> str:
    shown = ["an empty cell" if label == MISSING_LEVEL else repr(label) for label in labels[:most]]
    return ", ".join(shown) + (" ..." if len(labels) > most else "")


def input_notes(loaded: LoadedModel, table: pd.DataFrame) -> list[str]:
    """What ``predict_table`` did with ``table``'s cells beyond reading them, one line each: categories the
    fit never saw (pooled as ``<other>``, or with no level of their own when the fit pooled none) and columns
    empty in every row (filled with the training mean, as a missing cell is)."""
    notes = []
    for column in loaded.encoder.columns:
        if column.name not in table.columns or column.kind not in ("numeric", "categorical") or len(table) == 0:
            continue
        values = table[column.name]
        if column.kind == "numeric":
            if bool(values.isna().all()):
                notes.append(f"column '{column.name}' is empty in every row: filled with its training mean, as a missing cell is")
            continue
        labels = category_labels(values)
        unseen = labels[~labels.isin(column.levels)]
        if unseen.empty:
            continue
        names = [str(label) for label in unseen.value_counts().index]  # the most frequent first
        where = f"pooled as {OTHER_LEVEL}" if OTHER_LEVEL in column.levels else "encoded as none of its known categories"
        rows = f"{len(unseen)} row{'s' if len(unseen) != 1 else ''}"
        notes.append(f"column '{column.name}': {rows} with a category the fit never saw ({_listed(names)}), {where}")
    return notes
