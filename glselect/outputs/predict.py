"""Apply a saved model to a raw table: the saved encoding, then the pruned network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from glselect.data.encoder import OTHER_LEVEL, Encoder, encode_features
from glselect.data.stats import MISSING_LEVEL, category_labels
from glselect.errors import GlselectError
from glselect.outputs.load import LoadedModel


def predict_table(loaded: LoadedModel, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of ``table``, in row order.

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
    table = _empty_columns_as_missing(loaded.encoder, table)
    try:
        X = torch.from_numpy(encode_features(loaded.encoder, table))
    except GlselectError as err:
        raise _with_row(err, loaded.encoder, table) from err
    if list(loaded.inputs) != loaded.encoder.feature_names:
        # the sparse group lasso may leave some of a column's encoded parts (one-hot levels, the
        # missing indicator) out of the model: keep the ones it reads, in its order
        position = {name: j for j, name in enumerate(loaded.encoder.feature_names)}
        X = X[:, [position[name] for name in loaded.inputs]]
    with torch.no_grad():
        out = loaded.model(X).double()
    target = loaded.encoder.target
    if target.task == "survival":
        return pd.DataFrame({"risk_score": out[:, 0].numpy()}, index=table.index)
    if target.task == "regression":
        return pd.DataFrame({"prediction": out[:, 0].numpy() * target.scale + target.center}, index=table.index)
    if target.task == "binary":
        positive = torch.sigmoid(out[:, 0]).numpy()
        probabilities = np.stack([1.0 - positive, positive], axis=1)
    else:
        probabilities = torch.softmax(out, dim=1).numpy()
    labels = np.asarray(target.classes, dtype=object)[probabilities.argmax(axis=1)]
    frame = pd.DataFrame({"prediction": labels}, index=table.index)
    for index, label in enumerate(target.classes):
        frame[f"probability_{label}"] = probabilities[:, index]
    return frame


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


def _with_row(err: GlselectError, encoder: Encoder, table: pd.DataFrame) -> GlselectError:
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
