"""The documents and tables of a fit's out dir, built from its results: ``summary.json``,
``model.json``, ``path.csv`` and ``path_norms.parquet``.

Checking and locking the out dir and the atomic write are in ``outputs.outdir``, the registry of
files and their writers in ``outputs.files``, reading them back in ``outputs.load``; their public
names are imported here too, where the pipeline, the HTML report and the selector import them.
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import pandas as pd
import torch

from glselect import __version__
from glselect.config import RunConfig
from glselect.select.crossval import CrossValidation
from glselect.data.encoder import Encoder
from glselect.data.source import Dataset
from glselect.data.groups import GroupIndex
from glselect.model.metrics import PRIMARY_METRIC
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs.files import ARTIFACT_FILES, FORMAT_VERSION, MODEL_FORMAT, dump_json, write_artifacts  # noqa: F401 (re-exported)
from glselect.outputs.load import LoadedModel, Results, load_model, load_results  # noqa: F401 (re-exported)
from glselect.outputs.outdir import OUTPUT_FORMAT, OutDirLock, check_out_dir, is_glselect_output  # noqa: F401 (re-exported)
from glselect.path.walk import LambdaPath
from glselect.select.choose import Selection
from glselect.select.knockoffs import KnockoffSelection
from glselect.select.stability import Stability


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


def fdr_document(knockoffs: KnockoffSelection, group_names: list[str]) -> dict[str, Any]:
    """``summary.json``'s ``fdr`` block: the level, the method and every draw's statistics."""
    finite = lambda values: [float(v) if np.isfinite(v) else None for v in values]  # noqa: E731 (JSON has no inf)
    return {
        "q": knockoffs.q,
        "method": "model-X Gaussian group knockoffs (equicorrelated), W = signed max of the areas of group and knockoff under "
                  "their path norms over log lambda, "
                  "derandomised by averaged e-values and e-BH (Ren & Barber 2023)",
        "draws": knockoffs.draws,
        "draw_level": knockoffs.level,
        "thresholds": finite(knockoffs.thresholds),
        "e_bh_threshold": len(group_names) / (knockoffs.q * max(1, int(knockoffs.selected.sum()))),
        "gamma": knockoffs.gamma,
        "selected_groups": [name for name, keep in zip(group_names, knockoffs.selected) if keep],
        "statistic": dict(zip(group_names, knockoffs.statistic.tolist())),
        "statistics_by_draw": {name: knockoffs.statistics[:, g].tolist() for g, name in enumerate(group_names)},
        "e_value": dict(zip(group_names, knockoffs.e_values.tolist())),
    }


def summary_document(
    config: RunConfig,
    data: Dataset,
    path: LambdaPath,
    selection: Selection,
    metrics: dict[str, dict[str, float]],
    *,
    scored_by: str,
    class_weights: np.ndarray | None = None,
    stability: Stability | None = None,
    knockoffs: KnockoffSelection | None = None,
    resumed_from_step: int | None = None,
) -> dict[str, Any]:
    """``summary.json`` for a fit in memory or streamed: the selection, how it was chosen, metrics, sizes.

    ``metrics``: ``{"dense": ..., "pruned": ...}`` on the test rows. Row counts, the encoder and
    the groups come from ``data``. Timings are filled in by the caller once everything is done.
    """
    encoder, group_index = data.encoder, data.group_index
    train_rows, val_rows, test_rows = data.n_rows_by_part
    row_counts = {
        "rows": train_rows + val_rows + test_rows,
        "rows_dropped_missing_target": data.n_missing_target,
        "train_rows": train_rows,
        "val_rows": val_rows,
        "test_rows": test_rows,
    }
    task = encoder.target.task
    selected_groups = [name for name, keep in zip(group_index.names, selection.group_mask) if keep]
    # a table column is selected when the refit reads any of its encoded columns (with --l1-ratio a
    # kept group may leave some columns, or some one-hot levels, out: those are listed apart)
    read = {source for source, keep in zip(encoder.sources, selection.feature_mask) if keep}
    selected_features = [column.name for column in encoder.columns if column.name in read]
    in_kept_groups = selection.group_mask[group_index.group_ids] & ~selection.feature_mask
    dropped_within_groups = [name for name, dropped in zip(encoder.feature_names, in_kept_groups) if dropped]
    return {
        "format": OUTPUT_FORMAT,
        "version": __version__,
        "task": task,
        "target": config.target,
        "event": encoder.target.event,  # survival: the event column; the target is then the time column
        "classes": list(encoder.target.classes),
        "selected_features": selected_features,
        "selected_groups": selected_groups,
        "n_selected_features": len(selected_features),
        "n_selected_groups": len(selected_groups),
        "dropped_within_groups": dropped_within_groups,
        "lambda": selection.lam,
        "rule": selection.rule,
        "step": selection.step_index,
        "unconfirmed_groups": [name for name, drop in zip(group_index.names, selection.unconfirmed) if drop],
        # pairs the screen gave units of the dense network to (path/interactions.py), strongest first
        "interacting_pairs": [
            {"columns": [encoder.feature_names[pair.first], encoder.feature_names[pair.second]], "t": round(pair.t, 2)}
            for pair in path.pairs
        ],
        "scored_by": scored_by,
        "class_weights": None if class_weights is None else dict(
            zip(map(str, encoder.target.classes), class_weights.tolist())
        ),
        "stability": None if stability is None else {
            "pairs": stability.n_pairs,
            "q": stability.q,
            "threshold": stability.threshold,
            "stable_groups": [name for name, keep in zip(group_index.names, stability.stable) if keep],
            "expected_false_bound": stability.expected_false_bound,
        },
        "fdr": None if knockoffs is None else fdr_document(knockoffs, group_index.names),
        "primary_metric": PRIMARY_METRIC[task],
        "metrics": metrics,
        "sizes": {
            **row_counts,
            "columns": len(encoder.columns),
            "encoded_columns": len(encoder.feature_names),
            "groups": group_index.n_groups,
            "dense_parameters": path.dense_model.n_parameters(),
            "pruned_parameters": selection.model.n_parameters(),
            "pruned_hidden": list(selection.model.hidden),
            "pruned_neurons_removed": selection.n_pruned_neurons,
        },
        "path": {
            "complete": path.complete,
            "resumed_from_step": resumed_from_step,
            "n_steps": len(path.steps),
            "n_rejected_steps": path.n_rejected,
            "lambda_first": path.steps[1].lam if len(path.steps) > 1 else None,
            "lambda_last": path.steps[-1].lam,
            "lambda_max_estimate": path.lambda_max_estimate,
            "n_unconverged_steps": sum(not step.converged for step in path.steps[1:]),
        },
        "columns": {column.name: {"kind": column.kind, "treatment": column.reason} for column in encoder.columns},
        "reading": None if data.reading is None else data.reading.to_dict(),  # kinds, ignored columns, dropped rows, warnings
        "seed": config.seed,
        "config": config.to_dict(),
        # what glselect chose where config says null or auto (the fit has set torch's threads by now)
        "resolved": {"threads": torch.get_num_threads(), "device": str(data.device)},
        "versions": {"glselect": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "timings": {},
    }


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
