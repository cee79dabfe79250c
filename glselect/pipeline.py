"""``run``: the one orchestration, for the CLI, the Python API, the scikit-learn selector and
torchrun alike: dataset -> problem -> path -> selection -> outputs.

Whether the rows sit in memory or stream from Parquet (or are shared among torchrun ranks) is
decided once, when the dataset is opened; every stage after that is the same code.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch

from glselect import __version__, distributed
from glselect.config import RunConfig
from glselect.data.encoder import Encoder, check_named_columns, columns_left_out, encode, fit_encoder_and_stats
from glselect.data.groups import build_group_index
from glselect.data.io import read_group_map, read_table
from glselect.data.reading import read_report
from glselect.data.source import MIN_ROWS, Dataset, InMemoryData, Rows, frame_positions, hash_split
from glselect.data.split import TEST_ROWS, TRAIN, TRAINING_ROWS, VALIDATION_ROWS
from glselect.data.stream import StreamData, local_cores, wants_streaming
from glselect.data.survival import check_survival_columns, fold_batch
from glselect.data.target import drop_missing_target
from glselect.devices import resolve_device
from glselect.errors import GlselectError
from glselect.model.metrics import balanced_class_weights, evaluate
from glselect.outputs.artifacts import OutDirLock, check_out_dir, model_document, path_tables, summary_document, write_artifacts
from glselect.path.checkpoint import Checkpointer, checkpoint_dir, fingerprint, load_checkpoint
from glselect.path.problem import Problem, Settings
from glselect.path.walk import LambdaPath, PathStep, fit_path
from glselect.select.choose import Selection, choose_step
from glselect.select.confirm import confirm, confirmation_folds, group_permutation
from glselect.select.crossval import CrossValidation, cross_validate, folds_for
from glselect.select.importance import Importances, rank_groups
from glselect.select.knockoffs import KnockoffSelection, check_fdr_options, knockoff_selection, sparsest_step_with
from glselect.select.permutation import permutation_importance
from glselect.select.redundancy import redundancy_aware_top_k
from glselect.select.refit import refit
from glselect.select.relevant import all_relevant, asks_all_relevant, check_goal_options
from glselect.select.stability import Stability, stability_selection

__all__ = ["FitResult", "MIN_ROWS", "fit_frame", "run", "save_result"]

# Called as each extra stage's unit of work starts: (stage, number done, total), e.g. ("cv fold", 2, 5)
StageCallback = Callable[[str, int, int], None]

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
    knockoffs: KnockoffSelection | None  # None: --fdr not asked for
    path_scalars: pd.DataFrame  # path.csv
    path_norms: pd.DataFrame  # path_norms.parquet
    model_meta: dict[str, Any]  # model.json
    out_dir: Path | None  # None until written
    files: list[Path]


@dataclass(frozen=True)
class Hooks:
    """How a fit reports and saves progress: all optional."""

    on_step: Callable[[PathStep], None] | None = None
    on_stage: StageCallback | None = None
    checkpoints: Path | None = None  # directory for path checkpoints (--resume); None: none


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


def run(
    config: RunConfig, on_step: Callable[[PathStep], None] | None = None, on_stage: StageCallback | None = None
) -> FitResult:
    """Fit the path on ``config.table``, choose and refit a model, and write the out dir.

    The table is read whole when it fits in memory, streamed in record batches when it is a
    Parquet dataset too big for memory (or ``--stream``), and shared among the ranks under
    torchrun (where only rank 0 writes, and every rank returns the same result).

    Parameters
    ----------
    config
        The whole run's settings.
    on_step
        Called after each lambda of the path with its ``PathStep`` (for progress display).
    on_stage
        Called as each stage starts (dense fit, refit, confirmation, permutation importance, writing) and
        as each cross-validation fold, knockoff draw or stability subsample starts (for progress display).

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
    device = resolve_device(config.device)
    context = distributed.start(device)
    lock: OutDirLock | None = None
    files: list[Path] = []
    try:
        device = distributed.rank_device(device, context)
        out_dir = config.out_dir
        check_out_dir(out_dir, config.force, protected=config.inputs)
        lock = _lock_out_dir(out_dir, context)
        checkpoints = checkpoint_dir(out_dir)
        hooks = Hooks(on_step, on_stage, checkpoints)
        started = time.perf_counter()
        with _checkpoint_dropped_on_user_error(checkpoints if context.is_main else None):
            data = open_dataset(config, device, context)
        result = fit_dataset(data, config, hooks, started)
        if context.is_main:
            with _checkpoint_dropped_on_user_error(checkpoints):
                _announce(hooks, "writing")
                files = save_result(result, out_dir, force=config.force, protected=config.inputs)
            shutil.rmtree(checkpoints, ignore_errors=True)  # the out dir is whole: nothing left to resume
        distributed.barrier(context)
        return dataclasses.replace(result, out_dir=out_dir if context.is_main else None, files=files)
    finally:
        if lock is not None:
            lock.release(written=bool(files))
        torch.set_num_threads(threads)  # the thread count suits this table only: leave the caller's as it was
        distributed.stop(context)


def _lock_out_dir(out_dir: Path, context: distributed.Context) -> OutDirLock | None:
    """Rank 0 takes the out dir's lock (the rank that writes); every rank learns whether it did,
    so that under torchrun all of them stop with the same message instead of waiting for rank 0."""
    lock, refusal = None, None
    if context.is_main:
        try:
            lock = OutDirLock(out_dir).acquire()
        except GlselectError as err:
            refusal = (str(err), err.hint)
    refusal = distributed.all_gather_objects(refusal, context)[0]
    if refusal is not None:
        raise GlselectError(refusal[0], hint=refusal[1])
    return lock


def open_dataset(config: RunConfig, device: torch.device, context: distributed.Context) -> Dataset:
    """The table in memory when it fits, else a stream (always a stream under torchrun)."""
    if wants_streaming(config):
        return StreamData.open(config, device, context)
    table = read_table(config.table)
    group_map = read_group_map(config.groups) if config.groups is not None else None
    return frame_dataset(table, config, group_map, device)


def frame_dataset(
    table: pd.DataFrame, config: RunConfig, group_map: dict[str, str] | None, device: torch.device, min_rows: int = MIN_ROWS
) -> InMemoryData:
    """Encode a table in memory: the rows' parts by the one hash split, the encoder fitted on the training rows."""
    if config.is_survival:  # the event column is folded into the time column, the target from here on
        check_survival_columns(list(map(str, table.columns)), config.time, config.event, config.data.features, config.data.drop, str(config.table))
        table = fold_batch(table, config.time, config.event, np.arange(len(table)))
    positions = frame_positions(table, config.target) if config.target in table.columns else np.arange(len(table))
    table, n_missing_target = drop_missing_target(table, config.target, str(config.table))
    parts = hash_split(positions, config.seed, config.data.val_fraction, config.data.test_fraction, min_rows)
    columns = [str(name) for name in table.columns]
    left_out = columns_left_out(columns, config.target, config.data.features, config.data.drop, str(config.table))
    check_named_columns(config.data.categorical, columns, "--categorical", str(config.table))
    encoder, stats = fit_encoder_and_stats(
        table, config.target, config.data.task, fit_rows=np.flatnonzero(parts == TRAIN), max_levels=config.data.max_levels,
        excluded=left_out, categorical=frozenset(config.data.categorical), event=config.event,
    )
    design = encode(encoder, table)
    group_index = build_group_index(
        design.sources, group_map, table_columns=columns, target=config.target, map_source=str(config.groups)
    )
    return InMemoryData(
        encoder=encoder, group_index=group_index, X=design.X, y=design.y, positions=positions, parts=parts,
        seed=config.seed, device=device, n_missing_target=n_missing_target,
        reading=read_report(stats, encoder, n_missing_target),
    )


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
    min_rows: int = MIN_ROWS,
) -> FitResult:
    """Everything ``run`` does between reading a table and writing the out dir, for a table in memory.

    ``min_rows``: the fewest rows accepted (see ``hash_split``).

    Returns
    -------
    FitResult
        With ``out_dir`` None and no files: nothing is written here.
    """
    started = time.perf_counter()
    data = frame_dataset(table, config, group_map, resolve_device(config.device), min_rows)
    return fit_dataset(data, config, Hooks(on_step, on_stage, checkpoints), started)


def make_problem(data: Dataset, config: RunConfig) -> Problem:
    """The fit's ``Problem``: training rows, validation rows, groups, loss and settings."""
    encoder = data.encoder
    task, n_outputs = encoder.target.task, encoder.target.n_outputs
    return Problem(
        data=data,
        rows=data.training(TRAINING_ROWS),
        val=data.holdout(VALIDATION_ROWS),
        group_ids=data.group_index.group_ids,
        n_encoded=data.group_index.n_encoded,
        task=task,
        n_outputs=n_outputs,
        class_weights=_class_weights(config.data.class_weight, data),
        settings=Settings(config.model, config.train, config.path, config.stream, config.data.val_fraction),
        seed=config.seed,
    )


def fit_dataset(data: Dataset, config: RunConfig, hooks: Hooks, started: float) -> FitResult:
    """The one fit: path, choice, refit, confirmation, CV, stability, importances, documents."""
    check_fdr_options(config.selection)
    check_goal_options(config.selection)
    problem = make_problem(data, config)
    test = data.holdout(TEST_ROWS)
    read_seconds = time.perf_counter() - started
    _set_threads(config, problem)
    group_index, encoder = data.group_index, data.encoder
    resume, on_checkpoint = None, None
    checkpoints = hooks.checkpoints
    if checkpoints is not None:
        run_fingerprint = fingerprint(config.to_dict(), [np.frombuffer(data.fingerprint().encode(), dtype=np.uint8)])
        resume = load_checkpoint(checkpoints, run_fingerprint) if config.resume else None
        # every rank holds the same state: rank 0 alone writes it
        on_checkpoint = Checkpointer(checkpoints, run_fingerprint) if data.context.is_main else None
    with _checkpoint_dropped_on_user_error(checkpoints if data.context.is_main else None):
        _announce(hooks, "dense fit")  # the path's first step; its steps report themselves through on_step
        path = fit_path(problem, on_step=hooks.on_step, resume=resume, on_checkpoint=on_checkpoint)
        path_seconds = time.perf_counter() - started - read_seconds
        selection_config = config.selection
        cross_validation = None
        relevant_rounds = None  # with the all-relevant rounds (select/relevant.py): the groups each one added
        n_folds = folds_for(selection_config.cv, len(problem.val))
        if n_folds and selection_config.max_features is None:
            cross_validation = cross_validate(problem, path, n_folds, on_fold=_stage(hooks.on_stage, "cv fold", n_folds))
        knockoffs = None
        if selection_config.fdr is not None:
            # the knockoff selection replaces the rule and the confirmation; the refit is on its groups
            knockoffs = knockoff_selection(
                problem, selection_config.fdr, selection_config.knockoff_draws,
                on_draw=_stage(hooks.on_stage, "knockoff draw", selection_config.knockoff_draws),
            )
            step_index = sparsest_step_with(path, knockoffs.selected)
            _announce(hooks, "refit")
            selection = refit(problem, path, step_index, f"fdr={selection_config.fdr:g}", group_mask=knockoffs.selected)
            selection = dataclasses.replace(selection, unconfirmed=np.zeros_like(knockoffs.selected))
        else:
            step_index, rule = choose_step(path, selection_config, cross_validation and cross_validation.scores())
            _announce(hooks, "refit")
            if selection_config.max_features is not None and selection_config.max_correlation < 1:
                top_k = redundancy_aware_top_k(path, problem, selection_config.max_features, selection_config.max_correlation)
                selection = refit(problem, path, sparsest_step_with(path, top_k), rule, group_mask=top_k)
                selection = dataclasses.replace(selection, unconfirmed=np.zeros_like(top_k))
            else:
                selection = refit(problem, path, step_index, rule)
            if selection_config.confirm > 0 and selection_config.max_features is None:
                _announce(hooks, "confirmation")
                n_confirm_folds = confirmation_folds(selection_config.cv, len(problem.val))
                selection = confirm(problem, path, selection, selection_config.confirm, n_confirm_folds)
            if asks_all_relevant(selection_config):
                confirmed_by = selection.confirmed_by  # later rounds confirm the same way
                relevant, relevant_rounds = all_relevant(
                    problem, selection.group_mask, selection_config,
                    on_round=lambda k: _announce(hooks, f"all-relevant round {k}"),
                    gated=selection_config.goal == "auto",
                )
                if relevant_rounds:  # else the minimal selection stands as it is, refit and confirmed
                    left_out = selection.unconfirmed & ~relevant  # confirmation's drops no round took back
                    selection = refit(problem, path, sparsest_step_with(path, relevant), rule, group_mask=relevant)
                    selection = dataclasses.replace(selection, unconfirmed=left_out, confirmed_by=confirmed_by)
                if relevant_rounds or selection_config.goal == "all-relevant":
                    selection = dataclasses.replace(selection, rule=f"{selection.rule}, all-relevant")
        distributed.check_same_weights(selection.model, data.context)
        cv_seconds = time.perf_counter() - started - read_seconds - path_seconds
        stability = None
        importance_config = config.importance
        if importance_config.stability_pairs:
            stability = stability_selection(
                problem, importance_config.stability_pairs,
                importance_config.stability_q or max(1, int(selection.group_mask.sum())),
                importance_config.stability_threshold,
                on_subsample=_stage(hooks.on_stage, "stability subsample", 2 * importance_config.stability_pairs),
            )
        with torch.no_grad():
            columns = torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=test.X.device)
            dense_metrics = evaluate(path.dense_model(test.X), test.y, encoder.target)
            pruned_metrics = evaluate(selection.model(test.X.index_select(1, columns)), test.y, encoder.target)
            dense_column_norms = torch.linalg.vector_norm(path.dense_model.first_weight, dim=0).double().cpu().numpy()
        _announce(hooks, "permutation importance")
        by_group, by_column = _permutation_importances(problem, selection, test, importance_config.permutation_repeats)
        path.dense_model.cpu(), selection.model.cpu()  # saved and returned from the host
        importances = rank_groups(
            path, selection, group_index, encoder, dense_column_norms, by_group, by_column,
            None if stability is None else stability.frequency,
            knockoffs,
            relevant_rounds,
        )
        summary = summary_document(
            config, data, path, selection, {"dense": dense_metrics, "pruned": pruned_metrics},
            scored_by=cross_validation.scores().source if cross_validation is not None else (
                "knockoffs" if knockoffs is not None else "validation" if selection_config.max_features is None else "max_features"
            ),
            class_weights=problem.class_weights,
            stability=stability,
            knockoffs=knockoffs,
            resumed_from_step=None if resume is None else len(resume.steps) - 1,
        )
        summary["confirmed_by"] = selection.confirmed_by  # None: confirmation not applied
        if relevant_rounds is not None:
            summary["all_relevant_rounds"] = [[group_index.names[g] for g in np.flatnonzero(added)] for added in relevant_rounds]
        streaming = data.describe()
        if streaming is not None:
            summary["streaming"] = {
                **streaming,
                "steps_per_epoch": problem.rows.steps_per_epoch,
                "val_rows_scored": len(problem.val),
                "test_rows_scored": len(test),
            }
        inputs = [name for name, keep in zip(encoder.feature_names, selection.feature_mask) if keep]
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
        cross_validation=cross_validation, stability=stability, knockoffs=knockoffs, path_scalars=path_scalars, path_norms=path_norms,
        model_meta=model_meta, out_dir=None, files=[],
    )


def _set_threads(config: RunConfig, problem: Problem) -> None:
    """One thread for small problems (hand-offs cost more than they save), else every core this process has."""
    work = problem.rows.work() * max(config.model.hidden or (problem.n_outputs,))
    torch.set_num_threads(config.threads or (1 if work < SINGLE_THREAD_WORK else local_cores()))


def _class_weights(setting: str, data: Dataset) -> np.ndarray | None:
    """Per-class loss weights from the training rows, or None when rows are weighed equally."""
    if setting == "none":
        return None
    target = data.encoder.target
    if target.task == "regression":
        raise GlselectError(f"--class-weight {setting} needs a classification target; this one is numeric (regression)")
    counts = data.class_counts(TRAINING_ROWS)
    return balanced_class_weights(np.repeat(np.arange(len(counts)), counts), len(target.classes))


def _announce(hooks: Hooks, stage: str) -> None:
    """Tell the progress display that ``stage``, one piece of work, starts."""
    if hooks.on_stage is not None:
        hooks.on_stage(stage, 0, 1)


def _stage(on_stage: StageCallback | None, name: str, total: int) -> Callable[[int], None] | None:
    if on_stage is None:
        return None
    return lambda done: on_stage(name, done, total)


def _permutation_importances(
    problem: Problem, selection: Selection, test: Rows, repeats: int
) -> tuple[Any, dict[str, tuple[float, float]]]:
    """Permutation importance of the refit model on the test rows: per group, and per table column it reads."""
    by_group = group_permutation(selection, test, problem.group_ids, problem.row_loss_fn, repeats, problem.seed)
    sources = problem.data.encoder.sources
    model_sources = np.asarray(sources, dtype=object)[selection.feature_mask]
    read_columns = list(dict.fromkeys(model_sources))
    column_sets = [np.flatnonzero(model_sources == name) for name in read_columns]
    X_model = test.X[:, torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=test.X.device)]
    by_column = permutation_importance(selection.model, X_model, test.y, column_sets, problem.row_loss_fn, repeats, problem.seed)
    return by_group, {name: (float(m), float(sd)) for name, m, sd in zip(read_columns, by_column.mean, by_column.std)}
