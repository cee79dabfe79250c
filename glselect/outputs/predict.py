"""Apply a saved model to a raw table: the saved encoding, then the pruned network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from glselect.data.encoder import Encoder, encode_features
from glselect.errors import GlselectError
from glselect.outputs.load import LoadedModel


def predict_table(loaded: LoadedModel, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of ``table``, in row order.

    Only the columns the model reads must be present; unseen category levels and missing cells
    are encoded exactly as in training (pooled level, imputed mean plus indicator).

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
