"""The documents and tables of a fit's out dir, built from its results: ``model.json``,
``path.csv`` and ``path_norms.parquet`` (``summary.json`` is built by ``outputs.summary``).

Checking and locking the out dir and the atomic write are in ``outputs.outdir``, the registry of
files and their writers in ``outputs.files``, reading them back in ``outputs.load``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from glselect.data.encoder import Encoder
from glselect.data.groups import GroupIndex
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs.files import FORMAT_VERSION, MODEL_FORMAT
from glselect.path.walk import LambdaPath
from glselect.select.crossval import CrossValidation


def path_tables(
    path: LambdaPath, group_index: GroupIndex, cross_validation: CrossValidation | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``path.csv`` (one row per lambda) and ``path_norms.parquet`` (step, group, norm; non-zero norms only).

    With cross-validation, ``path.csv`` also has ``cv_loss`` and ``cv_se`` (mean relaxed loss over
    folds and its standard error) and ``cv_mean_selected`` (groups non-zero, averaged over folds).
    """
    scalars = pd.DataFrame(
        {
            "step": np.arange(len(path.steps)),
            "lambda": [step.lam for step in path.steps],
            "n_selected": [step.n_selected for step in path.steps],
            # encoded columns with non-zero weights: below the selected groups' width under --l1-ratio
            "n_selected_columns": [int(step.column_mask(group_index.group_ids).sum()) for step in path.steps],
            "train_loss": [step.train_loss for step in path.steps],
            "val_loss": [step.val_loss for step in path.steps],
            "relaxed_val_loss": [step.relaxed_val_loss for step in path.steps],
            "relaxed_val_se": [step.relaxed_val_se for step in path.steps],
            "objective": [step.objective for step in path.steps],
            "n_iters": [step.n_iters for step in path.steps],
            "converged": [step.converged for step in path.steps],
            # the solve's gradient mapping relative to lambda (at most --tol when converged; blank at lambda 0 and for streams)
            "optimality": [step.optimality for step in path.steps],
        }
    )
    if cross_validation is not None:
        scores = cross_validation.scores()
        scalars["cv_loss"] = scores.loss
        scalars["cv_se"] = scores.se
        scalars["cv_mean_selected"] = cross_validation.fold_sizes.mean(axis=0)
    norms = np.stack([step.group_norms for step in path.steps])
    step_index, group = np.nonzero(norms)  # long and sparse: wide tables have tens of thousands of groups
    long = pd.DataFrame(
        {
            "step": step_index.astype(np.int32),
            "group": pd.Categorical.from_codes(group, categories=list(group_index.names)),
            "norm": norms[step_index, group],
        }
    )
    return scalars, long


def model_document(
    model: GroupLassoMLP,
    encoder: Encoder,
    inputs: list[str],
    used_columns: list[str],
    max_norm: float,
    version: str,
) -> dict[str, Any]:
    """``model.json``: architecture, the encoding of the columns the model reads, and class labels."""
    columns = [column for column in encoder.columns if column.name in set(used_columns)]
    return {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "glselect_version": version,
        "task": encoder.target.task,
        "target": encoder.target.name,
        "event": encoder.target.event,
        "hidden": list(model.hidden),
        "n_inputs": model.n_inputs,
        "n_outputs": model.n_outputs,
        "max_norm": max_norm,
        "inputs": inputs,
        "encoder": Encoder(columns=tuple(columns), target=encoder.target).to_dict(),
        "tensors": {name: list(tensor.shape) for name, tensor in model.state_dict().items()},
    }
