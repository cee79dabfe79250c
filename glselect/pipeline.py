"""``run``: the one place that calls the stages in order, for the CLI and Python users alike."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch

from glselect import __version__
from glselect.outputs.artifacts import check_out_dir, model_document, path_tables, summary_document, write_artifacts
from glselect.path.checkpoint import Checkpointer, checkpoint_dir, fingerprint, load_checkpoint
from glselect.config import RunConfig
from glselect.devices import resolve_device
from glselect.data.encoder import Encoder, check_named_columns, columns_left_out, encode, fit_encoder
from glselect.data.target import drop_missing_target
from glselect.errors import GlselectError
from glselect.data.groups import build_group_index
from glselect.select.crossval import CrossValidation, cross_validate
from glselect.select.importance import Importances, rank_groups
from glselect.select.permutation import PermutationScores, permutation_importance
from glselect.data.io import read_group_map, read_table
from glselect.model.metrics import balanced_class_weights, evaluate, row_loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.path.walk import LambdaPath, PathStep, fit_path
from glselect.select.selection import Selection, choose_step, confirm, group_permutation, refit
from glselect.select.stability import Stability, stability_selection
from glselect.stream_fit import run_stream, wants_streaming

# Called as each extra stage's unit of work starts: (stage, number done, total), e.g. ("cv fold", 2, 5)
StageCallback = Callable[[str, int, int], None]

MIN_ROWS = 20  # fewer rows cannot be split into training, validation and test rows
# below this many multiply-adds per first-layer pass, extra threads cost more in hand-offs than they
# save (measured: a 600 x 12 table took 60 s with 2 busy threads and 3 s with one)
SINGLE_THREAD_WORK = 20_000_000


@dataclass(frozen=True)
class FitResult:
    """What ``run`` produced; ``summary`` is exactly what ``summary.json`` holds."""

    summary: dict[str, Any]
    encoder: Encoder  # fitted on every column; the saved model keeps only the selected ones
    importances: Importances
    path: LambdaPath
    selection: Selection
    cross_validation: CrossValidation | None  # None: chosen on the validation rows
    stability: Stability | None  # None: --stability not asked for
    path_scalars: pd.DataFrame  # path.csv
    path_norms: pd.DataFrame  # path_norms.parquet
    model_meta: dict[str, Any]  # model.json
    out_dir: Path | None  # None until written
    files: list[Path]


@contextmanager
def _checkpoint_dropped_on_user_error(directory: Path | None) -> Iterator[None]:
    """A user error would recur on a rerun, so its checkpoint is useless; an interruption keeps
    it for ``--resume``, and a finished run removes it once the out dir is written."""
    try:
        yield
    except GlselectError:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def split_rows(n_rows: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Seeded random split into training, validation and test row positions (each sorted)."""
    if n_rows < MIN_ROWS:
        raise GlselectError(f"the table has {n_rows} usable rows; glselect needs at least {MIN_ROWS}")
    order = np.random.default_rng(seed).permutation(n_rows)
    n_val = max(1, round(n_rows * val_fraction))
    n_test = max(1, round(n_rows * test_fraction))
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }


def _tensors(X: np.ndarray, y: np.ndarray, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # the whole split moves to the device once; the solver then never copies between host and device
    return (
        torch.from_numpy(np.ascontiguousarray(X[rows])).to(device),
        torch.from_numpy(np.ascontiguousarray(y[rows])).to(device),
    )


def run(
    config: RunConfig, on_step: Callable[[PathStep], None] | None = None, on_stage: StageCallback | None = None
) -> FitResult:
    """Fit the path on ``config.table``, choose and refit a model, and write the out dir.

    Parameters
    ----------
    config
        The whole run's settings.
    on_step
        Called after each lambda of the path with its ``PathStep`` (for progress display).
    on_stage
        Called as each cross-validation fold or stability subsample starts (for progress display).

    Returns
    -------
    FitResult
        The summary, importances, path, selection, and the files written.

    Raises
    ------
    GlselectError
        Bad input: an unreadable table or group map, an unusable target, too few rows, or an
        out dir that cannot be written.
    """
    threads = torch.get_num_threads()
    try:
        return _run(config, on_step, on_stage)
    finally:
        torch.set_num_threads(threads)  # the thread count suits this table only: leave the caller's as it was


def _run(config: RunConfig, on_step: Callable[[PathStep], None] | None, on_stage: StageCallback | None) -> FitResult:
    if wants_streaming(config):  # a Parquet dataset too big for memory, --stream, or torchrun
        return run_stream(config, on_step)
    out_dir = config.out_dir
    check_out_dir(out_dir, config.force, protected=config.inputs)
    table = read_table(config.table)
    group_map = read_group_map(config.groups) if config.groups is not None else None
    checkpoints = checkpoint_dir(out_dir)
    result = fit_frame(table, config, group_map, on_step=on_step, on_stage=on_stage, checkpoints=checkpoints)
    with _checkpoint_dropped_on_user_error(checkpoints):
        files = save_result(result, out_dir, force=config.force, protected=config.inputs)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the out dir is whole: nothing left to resume
    return dataclasses.replace(result, out_dir=out_dir, files=files)


def save_result(result: FitResult, out_dir: Path, *, force: bool = False, protected: tuple[Path, ...] = ()) -> list[Path]:
    """Write ``result`` as an out dir (atomically; see ``artifacts.write_artifacts``) and return the files."""
    return write_artifacts(
        out_dir,
        summary=result.summary,
        importances=result.importances,
        path_scalars=result.path_scalars,
        path_norms=result.path_norms,
        model=result.selection.model,
        model_meta=result.model_meta,
        force=force,
        protected=protected,
    )


def fit_frame(
    table: pd.DataFrame,
    config: RunConfig,
    group_map: dict[str, str] | None = None,
    *,
    on_step: Callable[[PathStep], None] | None = None,
    on_stage: StageCallback | None = None,
    checkpoints: Path | None = None,
) -> FitResult:
    """Everything ``run`` does between reading the table and writing the out dir.

    Parameters
    ----------
    table
        The table, target included (``config.table`` only names it in messages).
    group_map
        ``{column or pattern: group}``, as read from a group-map file.
    checkpoints
        Directory for path checkpoints (``--resume``); None: no checkpointing.

    Returns
    -------
    FitResult
        With ``out_dir`` None and no files: nothing is written here.
    """
    started = time.perf_counter()
    table, n_missing_target = drop_missing_target(table, config.target, str(config.table))
    rows = split_rows(len(table), config.data.val_fraction, config.data.test_fraction, config.seed)
    columns = [str(name) for name in table.columns]
    left_out = columns_left_out(columns, config.target, config.data.features, config.data.drop, str(config.table))
    check_named_columns(config.data.categorical, columns, "--categorical", str(config.table))
    encoder = fit_encoder(
        table, config.target, config.data.task, fit_rows=rows["train"], max_levels=config.data.max_levels,
        excluded=left_out, categorical=frozenset(config.data.categorical),
    )
    design = encode(encoder, table)
    group_index = build_group_index(
        design.sources,
        group_map,
        table_columns=columns,
        target=config.target,
        map_source=str(config.groups),
    )
    device = resolve_device(config.device)
    train, val, test = (_tensors(design.X, design.y, rows[part], device) for part in ("train", "val", "test"))
    task, n_outputs = encoder.target.task, encoder.target.n_outputs
    class_weights = _class_weights(config.data.class_weight, task, len(encoder.target.classes), design.y[rows["train"]])
    read_seconds = time.perf_counter() - started

    work = len(rows["train"]) * design.X.shape[1] * max(config.model.hidden or (n_outputs,))
    torch.set_num_threads(config.threads or (1 if work < SINGLE_THREAD_WORK else max(1, os.cpu_count() or 1)))
    torch.manual_seed(config.seed)
    model = GroupLassoMLP(design.X.shape[1], config.model.hidden, n_outputs).to(device)
    resume, on_checkpoint = None, None
    if checkpoints is not None:
        run_fingerprint = fingerprint(config.to_dict(), [design.X, design.y, group_index.group_ids, rows["train"], rows["val"]])
        resume = load_checkpoint(checkpoints, run_fingerprint) if config.resume else None
        on_checkpoint = Checkpointer(checkpoints, run_fingerprint)
    with _checkpoint_dropped_on_user_error(checkpoints):
        path = fit_path(
            model, train, val, group_index.group_ids, group_index.n_encoded, task,
            config.model, config.train, config.path, on_step=on_step,
            resume=resume, on_checkpoint=on_checkpoint, class_weights=class_weights,
        )
        path_seconds = time.perf_counter() - started - read_seconds
        # cross-validation and stability use every row but the test rows
        rest = (torch.cat([train[0], val[0]]), torch.cat([train[1], val[1]]))
        cross_validation = None
        if config.selection.cv and config.selection.max_features is None:
            cross_validation = cross_validate(
                path, *rest, group_index.group_ids, group_index.n_encoded, task, n_outputs,
                config.model, config.train, config.path, config.selection.cv, config.seed,
                class_weights=class_weights, on_fold=_stage(on_stage, "cv fold", config.selection.cv),
            )
        step_index, rule = choose_step(path, config.selection, cross_validation and cross_validation.scores())
        selection = refit(
            path, step_index, rule, group_index.group_ids, train, val, task, n_outputs,
            config.model, config.train, config.seed, class_weights,
        )
        if config.selection.confirm > 0 and config.selection.max_features is None:
            selection = confirm(
                selection, path, group_index.group_ids, train, val, task, n_outputs, config.model, config.train,
                config.seed, config.selection.confirm, class_weights,
            )
        cv_seconds = time.perf_counter() - started - read_seconds - path_seconds
        stability = None
        if config.importance.stability_pairs:
            stability = stability_selection(
                *rest, group_index.group_ids, group_index.n_encoded, task, n_outputs,
                config.model, config.train, config.path, config.importance.stability_pairs,
                config.importance.stability_q or max(1, int(selection.group_mask.sum())),
                config.importance.stability_threshold, config.data.val_fraction, config.seed,
                class_weights=class_weights,
                on_subsample=_stage(on_stage, "stability subsample", 2 * config.importance.stability_pairs),
            )
        with torch.no_grad():
            columns = torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=device)
            dense_metrics = evaluate(path.dense_model(test[0]), test[1], encoder.target)
            pruned_metrics = evaluate(selection.model(test[0][:, columns]), test[1], encoder.target)
            dense_column_norms = torch.linalg.vector_norm(path.dense_model.first_weight, dim=0).double().cpu().numpy()
        group_permutation, column_permutation = _permutation_importances(
            selection, test, group_index.group_ids, design.sources, task, class_weights,
            config.importance.permutation_repeats, config.seed,
        )
        path.dense_model.cpu(), selection.model.cpu()  # saved and returned from the host
        importances = rank_groups(
            path, selection, group_index, encoder, dense_column_norms, group_permutation, column_permutation,
            None if stability is None else stability.frequency,
        )

        summary = summary_document(
            config, encoder, group_index, path, selection, {"dense": dense_metrics, "pruned": pruned_metrics},
            {
                "rows": len(table),
                "rows_dropped_missing_target": n_missing_target,
                "train_rows": len(rows["train"]),
                "val_rows": len(rows["val"]),
                "test_rows": len(rows["test"]),
            },
            scored_by=cross_validation.scores().source if cross_validation is not None else (
                "validation" if config.selection.max_features is None else "max_features"
            ),
            class_weights=class_weights,
            stability=stability,
            resumed_from_step=None if resume is None else len(resume.steps) - 1,
        )
        inputs = [name for name, keep in zip(design.feature_names, selection.feature_mask) if keep]
        path_scalars, path_norms = path_tables(path, group_index, cross_validation)
        model_meta = model_document(selection.model, encoder, inputs, summary["selected_features"], config.model.max_norm, __version__)
        summary["timings"] = {
            "read_seconds": round(read_seconds, 3),
            "path_seconds": round(path_seconds, 3),
            "cv_and_refit_seconds": round(cv_seconds, 3),
            "importance_seconds": round(time.perf_counter() - started - read_seconds - path_seconds - cv_seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
        }
    return FitResult(
        summary=summary, encoder=encoder, importances=importances, path=path, selection=selection,
        cross_validation=cross_validation, stability=stability, path_scalars=path_scalars, path_norms=path_norms, model_meta=model_meta, out_dir=None, files=[],
    )


def _class_weights(setting: str, task: str, n_classes: int, y_train: np.ndarray) -> np.ndarray | None:
    """Per-class loss weights from the training rows, or None when rows are weighed equally."""
    if setting == "none":
        return None
    if task == "regression":
        raise GlselectError(f"--class-weight {setting} needs a classification target; this one is numeric (regression)")
    return balanced_class_weights(y_train, n_classes)


def _stage(on_stage: StageCallback | None, name: str, total: int) -> Callable[[int], None] | None:
    if on_stage is None:
        return None
    return lambda done: on_stage(name, done, total)


def _permutation_importances(
    selection: Selection,
    test: tuple[torch.Tensor, torch.Tensor],
    group_ids: np.ndarray,
    sources: tuple[str, ...],
    task: str,
    class_weights: np.ndarray | None,
    repeats: int,
    seed: int,
) -> tuple[PermutationScores, dict[str, tuple[float, float]]]:
    """Permutation importance of the refit model on the test rows: per group, and per table column it reads."""
    row_loss_fn = row_loss_function(task, class_weights)
    by_group = group_permutation(selection, test, group_ids, row_loss_fn, repeats, seed)
    model_sources = np.asarray(sources, dtype=object)[selection.feature_mask]
    read_columns = list(dict.fromkeys(model_sources))
    column_sets = [np.flatnonzero(model_sources == name) for name in read_columns]
    X_model = test[0][:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64)]
    by_column = permutation_importance(selection.model, X_model, test[1], column_sets, row_loss_fn, repeats, seed)
    return by_group, {name: (float(m), float(sd)) for name, m, sd in zip(read_columns, by_column.mean, by_column.std)}
