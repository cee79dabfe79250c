"""``run``: the one orchestration, for the CLI, the Python API, the scikit-learn selector and
torchrun alike: dataset -> problem -> path -> selection -> outputs.

Whether the rows sit in memory or stream from Parquet (or are shared among torchrun ranks) is
decided once, when the dataset is opened; every stage after that is the same code.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from glselect import __version__, distributed
from glselect.config import RunConfig
from glselect.data.encoder import Encoder
from glselect.data.open import frame_dataset, open_dataset
from glselect.data.source import MIN_ROWS, Dataset, Rows
from glselect.data.split import TEST_ROWS, TRAINING_ROWS, VALIDATION_ROWS
from glselect.data.stream import local_cores
from glselect.devices import resolve_device
from glselect.errors import GlselectError
from glselect.model.datafits import DATAFITS, evaluate, make_datafit
from glselect.model.metrics import balanced_class_weights
from glselect.model.prox import column_norms
from glselect.outputs.artifacts import model_document, path_tables
from glselect.outputs.files import PathTables, SavedModel, write_artifacts
from glselect.outputs.outdir import OutDirLock, check_out_dir
from glselect.outputs.summary import SummaryFacts, summary_document
from glselect.path.checkpoint import Checkpointer, PathState, checkpoint_dir, fingerprint, load_checkpoint
from glselect.path.problem import Problem, Settings
from glselect.path.walk import LambdaPath, PathStep, fit_path
from glselect.select.base import Fit, Part, Progress, StageCallback
from glselect.select.choose import Selection
from glselect.select.crossval import CrossValidation
from glselect.select.importance import Importances, rank_groups
from glselect.select.knockoffs import KnockoffSelection
from glselect.select.plan import resolve, result_of
from glselect.select.stability import Stability

__all__ = ["MIN_ROWS", "FitResult", "StageCallback", "fit_frame", "frame_dataset", "open_dataset", "run", "save_result"]

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
    parts: tuple[Part, ...]  # what each selection stage that ran added, in the order they ran
    path_scalars: pd.DataFrame  # path.csv
    path_norms: pd.DataFrame  # path_norms.parquet
    model_meta: dict[str, Any]  # model.json
    out_dir: Path | None  # None until written
    files: list[Path]

    @property
    def cross_validation(self) -> CrossValidation | None:
        """None: chosen on the validation rows."""
        return result_of(self.parts, "cross-validation")

    @property
    def stability(self) -> Stability | None:
        """None: --stability not asked for."""
        return result_of(self.parts, "stability")

    @property
    def knockoffs(self) -> KnockoffSelection | None:
        """None: --fdr not asked for."""
        return result_of(self.parts, "knockoffs")


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
    config: RunConfig,
    on_step: Callable[[PathStep], None] | None = None,
    on_stage: StageCallback | None = None,
    on_read: Callable[[dict[str, Any]], None] | None = None,
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
    on_read
        Called on rank 0 once the table is read, before any training, with the reading report (what
        ``summary.json`` keeps under "reading"): a mis-read column can be seen, and the fit stopped, early.

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
        if on_read is not None and context.is_main and data.reading is not None:
            on_read(data.reading.to_dict())
        result = fit_dataset(data, config, hooks, started)
        if context.is_main:
            with _checkpoint_dropped_on_user_error(checkpoints):
                Progress(hooks.on_stage).announce("writing")
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
            refusal = err
    distributed.gather_or_raise(refusal, context)
    return lock


def save_result(result: FitResult, out_dir: Path, *, force: bool = False, protected: tuple[Path, ...] = ()) -> list[Path]:
    """Write ``result`` as an out dir (atomically; see ``files.write_artifacts``) and return the files."""
    return write_artifacts(
        out_dir,
        summary=result.summary,
        importances=result.importances,
        path=PathTables(result.path_scalars, result.path_norms),
        model=SavedModel(result.selection.model, result.model_meta),
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
    target = data.encoder.target
    return Problem(
        data=data,
        rows=data.training(TRAINING_ROWS),
        val=data.holdout(VALIDATION_ROWS),
        group_ids=data.group_index.group_ids,
        n_encoded=data.group_index.n_encoded,
        datafit=make_datafit(target.task, target.n_outputs, _class_weights(config.data.class_weight, data)),
        settings=Settings(config.model, config.train, config.path, config.stream, config.data.val_fraction),
        seed=config.seed,
    )


def fit_dataset(data: Dataset, config: RunConfig, hooks: Hooks, started: float) -> FitResult:
    """The one fit: the plan's conflicts, the path, the plan's stages (choice, refit, refinements,
    measures), the held-out metrics, the ranked tables and the documents."""
    plan = resolve(config)  # a combination of options that is an error stops the fit before any work
    problem = make_problem(data, config)
    test = data.holdout(TEST_ROWS)
    read_seconds = time.perf_counter() - started
    _set_threads(config, problem)
    resume, on_checkpoint = _checkpoints(data, config, hooks.checkpoints)
    with _checkpoint_dropped_on_user_error(hooks.checkpoints if data.context.is_main else None):
        progress = Progress(hooks.on_stage)
        progress.announce("dense fit")  # the path's first step; its steps report themselves through on_step
        path_started = time.perf_counter()
        path = fit_path(problem, on_step=hooks.on_step, resume=resume, on_checkpoint=on_checkpoint)
        path_seconds = time.perf_counter() - path_started
        fit = Fit(problem, path, config, test, progress)
        selection, chosen = plan.select(fit)
        distributed.check_same_weights(selection.model, data.context)
        measured = plan.measure(fit, selection)
        metrics, dense_column_norms = _held_out_metrics(path, selection, test, data.encoder)
        path.dense_model.cpu(), selection.model.cpu()  # saved and returned from the host
        parts = (*chosen, *measured)
        # the measures in the tables' column order, then the parts whose rank key orders the selection
        ranking_parts = [*plan.column_parts(parts, problem.n_groups), *(part for part in parts if part.rank_key is not None)]
        importances = rank_groups(path, selection, data.group_index, data.encoder, dense_column_norms, ranking_parts)
        timings = _timings(started, read_seconds, path_seconds, chosen, measured)
        facts = SummaryFacts(
            config, data, path, selection, metrics, problem.datafit.class_weights, None if resume is None else len(resume.steps) - 1
        )
        summary = summary_document(facts, [*parts, *_streaming(data, problem, test), timings])
        path_scalars, path_norms = path_tables(path, data.group_index, result_of(parts, "cross-validation"))
        inputs = [name for name, keep in zip(data.encoder.feature_names, selection.feature_mask) if keep]
        model_meta = model_document(selection.model, data.encoder, inputs, summary["selected_features"], config.model.max_norm, __version__)
    return FitResult(
        summary=summary,
        encoder=data.encoder,
        importances=importances,
        path=path,
        selection=selection,
        parts=parts,
        path_scalars=path_scalars,
        path_norms=path_norms,
        model_meta=model_meta,
        out_dir=None,
        files=[],
    )


def _timings(started: float, read_seconds: float, path_seconds: float, chosen: list[Part], measured: list[Part]) -> Part:
    """``summary.json``'s timings: reading and the path as measured, the stages' as each stage measured itself."""
    return Part(
        "timings",
        summary={
            "timings": {
                "read_seconds": round(read_seconds, 3),
                "path_seconds": round(path_seconds, 3),
                "cv_and_refit_seconds": round(sum(part.seconds for part in chosen), 3),
                "importance_seconds": round(sum(part.seconds for part in measured), 3),
                "total_seconds": round(time.perf_counter() - started, 3),
            }
        },
    )


def _checkpoints(data: Dataset, config: RunConfig, directory: Path | None) -> tuple[PathState | None, Checkpointer | None]:
    """The checkpoint to resume from (``--resume``) and where to save the path's progress; None, None without a directory."""
    if directory is None:
        return None, None
    run_fingerprint = fingerprint(config.to_dict(), [np.frombuffer(data.fingerprint().encode(), dtype=np.uint8)])
    resume = load_checkpoint(directory, run_fingerprint) if config.resume else None
    # every rank holds the same state: rank 0 alone writes it
    return resume, Checkpointer(directory, run_fingerprint) if data.context.is_main else None


@torch.no_grad()
def _held_out_metrics(
    path: LambdaPath, selection: Selection, test: Rows, encoder: Encoder
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """The dense and the pruned model's metrics on the test rows, and the dense model's first-layer norm per encoded column."""
    columns = torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=test.X.device)
    dense_metrics = evaluate(path.dense_model(test.X), test.y, encoder.target)
    pruned_metrics = evaluate(selection.model(test.X.index_select(1, columns)), test.y, encoder.target)
    dense_column_norms = column_norms(path.dense_model.first_weight).double().cpu().numpy()
    return {"dense": dense_metrics, "pruned": pruned_metrics}, dense_column_norms


def _streaming(data: Dataset, problem: Problem, test: Rows) -> list[Part]:
    """A streamed fit's reading and scoring, for ``summary.json``; nothing for a table in memory."""
    streaming = data.describe()
    if streaming is None:
        return []
    return [
        Part(
            "streaming",
            summary={
                "streaming": {
                    **streaming,
                    "steps_per_epoch": problem.rows.steps_per_epoch,
                    "val_rows_scored": len(problem.val),
                    "test_rows_scored": len(test),
                }
            },
        )
    ]


def _set_threads(config: RunConfig, problem: Problem) -> None:
    """One thread for small problems (hand-offs cost more than they save), else every core this process has."""
    work = problem.rows.work() * max(config.model.hidden or (problem.datafit.outputs,))
    torch.set_num_threads(config.threads or (1 if work < SINGLE_THREAD_WORK else local_cores()))


def _class_weights(setting: str, data: Dataset) -> np.ndarray | None:
    """Per-class loss weights from the training rows, or None when rows are weighed equally."""
    if setting == "none":
        return None
    target = data.encoder.target
    if not DATAFITS[target.task].has_classes:  # survival targets are refused earlier, by the config
        raise GlselectError(f"--class-weight {setting} needs a classification target; this one is numeric (regression)")
    counts = data.class_counts(TRAINING_ROWS)
    return balanced_class_weights(np.repeat(np.arange(len(counts)), counts), len(target.classes))
