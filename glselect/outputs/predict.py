"""Apply a saved model to a raw table: the saved encoding, then the pruned network."""

from __future__ import annotations

import pandas as pd

from glselect.outputs.load import LoadedModel


def predict_table(loaded: LoadedModel, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of ``table``, in row order (``LoadedModel.predict_table``).

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
    return loaded.predict_table(table)
