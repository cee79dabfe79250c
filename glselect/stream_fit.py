"""The streamed fit: the lambda path by mini-batch proximal SGD over a Parquet dataset read in batches.

The in-memory path solves each lambda with full-batch FISTA, which needs the whole design
matrix. Here every step reads one mini-batch: an SGD step (with momentum) on the loss, then the
same proximal operators (group soft-threshold on the first layer, norm bound on the later ones),
so groups still reach exactly zero. Memory holds one record batch, the model and a bounded
hashed sample of validation and test rows, whatever the number of rows.

Under ``torchrun`` each rank reads its own row groups, DistributedDataParallel averages the
gradients, and the prox step that follows is identical on every rank; every decision (early
stopping, which groups are zero) is taken from all-reduced numbers, so the ranks stay in step.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from glselect import __version__
from glselect import distributed
from glselect.outputs.artifacts import check_out_dir, model_document, path_tables, summary_document, write_artifacts
from glselect.config import RunConfig
from glselect.devices import resolve_device
from glselect.data.encoder import Encoder, check_named_columns, columns_left_out
from glselect.errors import GlselectError
from glselect.data.groups import GroupIndex, build_group_index
from glselect.select.importance import Importances, rank_groups
from glselect.data.io import read_group_map
from glselect.model.metrics import evaluate, loss_function, row_loss_function
from glselect.solve.sgd import (
    Holdout,
    HoldoutSampler,
    Phase,
    Trainer,
    TrainingStream,
    holdout_loss,
    local_batch_size,
    phase_losses,
    train_early_stopped,
)
from glselect.model.mlp import GroupLassoMLP, restrict_inputs
from glselect.path.walk import RELAX_EVERY_SUPPORT_UP_TO, RELAX_LADDER, LambdaPath, PathStep, make_penalty
from glselect.select.selection import Selection, choose_step
from glselect.data.parquet import TEST, TRAIN, VAL, available_memory, estimated_bytes, is_parquet_dataset, open_source, row_groups_of_rank
from glselect.data.stats import build_encoder, collect_stats, column_kinds

if TYPE_CHECKING:
    from glselect.pipeline import FitResult

MAX_PROBE_BATCHES = 64  # mini-batches averaged for the gradient at a zero first layer (lambda_max estimate)
MIN_RELAX_STEPS = 100


def wants_streaming(config: RunConfig) -> bool:
    """Stream when asked (``--stream``), under torchrun, for a directory, or when the table would not fit the memory budget.

    Raises
    ------
    GlselectError
        Streaming is asked for (or needed by torchrun) but the table is not Parquet.
    """
    table = config.table
    asked = config.stream.stream is True or distributed.launched_by_torchrun()
    if table.exists() and not is_parquet_dataset(table):
        if asked:
            why = "--stream" if config.stream.stream else "a torchrun launch (which always streams)"
            raise GlselectError(
                f"{why} needs a Parquet file or a directory of Parquet files, but '{table}' is not one",
                hint="convert the table to Parquet (e.g. pandas: read_csv(...).to_parquet(...)), or drop --stream",
            )
        return False
    if asked or table.is_dir():
        return True
    if config.stream.stream is False or not table.exists():
        return False
    budget = config.stream.memory_budget or available_memory() // 4
    return estimated_bytes(open_source(table), config.target) > budget


def _zero_kkt_lambdas(
    model: GroupLassoMLP, batches: Iterator, n_batches: int, loss_fn: Callable, group_ids: torch.Tensor,
    weights: torch.Tensor, n_groups: int, context: distributed.Context,
) -> np.ndarray:
    """Streamed ``path.zero_kkt_lambdas``: ``||grad_g|| / sqrt(d_g)`` at a zero first layer, gradient averaged over batches and ranks."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        probe.first_weight.zero_()
    gradient = torch.zeros_like(probe.first_weight)
    for _ in range(n_batches):
        X, y = next(batches)
        probe.zero_grad(set_to_none=True)
        loss_fn(probe(X), y).backward()
        gradient += probe.first_weight.grad
    gradient = distributed.all_reduce_sum(gradient.cpu(), context) / (n_batches * context.world_size)
    column_sq = (gradient.double() ** 2).sum(dim=0)
    norms = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, group_ids.cpu(), column_sq).sqrt()
    return (norms / weights.double().cpu()).numpy()


def _step_record(
    model: GroupLassoMLP, lam: float, phase: Phase, holdout: Holdout, group_ids: torch.Tensor, weights: torch.Tensor,
    n_groups: int, row_loss_fn: Callable, relaxed: tuple[float, float], tol: float, context: distributed.Context,
) -> PathStep:
    norms = model.group_norms(group_ids, n_groups).double().cpu().numpy()
    train_loss, early, late = phase_losses(phase, context)
    val_loss, _ = holdout_loss(model, holdout, row_loss_fn, context)
    return PathStep(
        lam=lam,
        n_selected=int(np.count_nonzero(norms)),
        group_norms=norms,
        train_loss=train_loss,
        val_loss=val_loss,
        objective=train_loss + lam * float((weights.double().cpu().numpy() * norms).sum()),
        n_iters=phase.n_steps,
        # stochastic steps never settle exactly: converged means the loss no longer fell within the phase
        converged=bool(early - late <= max(tol * 100, 0.01) * abs(early)),
        relaxed_val_loss=relaxed[0],
        relaxed_val_se=relaxed[1],
    )


def _seeded_model(n_inputs: int, config: RunConfig, n_outputs: int, device: torch.device) -> GroupLassoMLP:
    torch.manual_seed(config.seed)
    return GroupLassoMLP(n_inputs, config.model.hidden, n_outputs).to(device)


def run_stream(config: RunConfig, on_step: Callable[[PathStep], None] | None = None) -> FitResult:
    """``api.run`` for a Parquet dataset read in batches (one process, or one rank of a torchrun job).

    Only rank 0 writes the out dir; every rank returns the same result.

    Raises
    ------
    GlselectError
        Bad input or options (as ``api.run``), or a setting streaming does not support.
    """
    from glselect.pipeline import FitResult  # api imports this module; the result type is defined there

    if config.resume:
        raise GlselectError("--resume is not supported in streaming mode", hint="rerun without --resume")
    if config.model.neuron_penalty > 0:
        raise GlselectError("--neuron-penalty is not supported in streaming mode", hint="rerun without --neuron-penalty")
    for name, asked in (("--cv", config.selection.cv > 0), ("--stability", config.importance.stability_pairs > 0),
                        ("--class-weight balanced", config.data.class_weight != "none")):
        if asked:
            raise GlselectError(f"{name} is not supported in streaming mode", hint=f"rerun without {name.split()[0]}")
    device = resolve_device(config.device)
    context = distributed.start(device)
    try:
        device = distributed.rank_device(device, context)
        out_dir = config.out_dir
        check_out_dir(out_dir, config.force, protected=config.inputs)
        result = _fit(config, device, context, on_step)
        files: list[Path] = []
        if context.is_main:
            files = write_artifacts(
                out_dir, summary=result.summary, importances=result.importances, path_scalars=result.path_scalars,
                path_norms=result.path_norms, model=result.selection.model, model_meta=result.model_meta,
                force=config.force, protected=config.inputs,
            )
        distributed.barrier(context)
        return FitResult(**{**result.__dict__, "cross_validation": None, "stability": None, "out_dir": out_dir if context.is_main else None, "files": files})
    finally:
        distributed.stop(context)


@dataclass(frozen=True)
class _Fitted:
    summary: dict
    encoder: Encoder
    importances: Importances
    path: LambdaPath
    selection: Selection
    path_scalars: pd.DataFrame
    path_norms: pd.DataFrame
    model_meta: dict
    out_dir: Path | None = None
    files: tuple = ()


def _fit(config: RunConfig, device: torch.device, context: distributed.Context, on_step: Callable | None) -> _Fitted:
    started = time.perf_counter()
    source = open_source(config.table)
    columns = [name for name in source.columns if name != config.target]
    if config.target not in source.columns:
        raise GlselectError(
            f"target column '{config.target}' is not in '{config.table}'",
            hint=f"columns are: {', '.join(source.columns[:20])}" + (" ..." if len(source.columns) > 20 else ""),
        )
    left_out = columns_left_out(source.columns, config.target, config.data.features, config.data.drop, str(config.table))
    check_named_columns(config.data.categorical, source.columns, "--categorical", str(config.table))
    categorical = frozenset(config.data.categorical)
    my_groups = row_groups_of_rank(source, context.rank, context.world_size)
    if not my_groups:
        raise GlselectError(
            f"'{config.table}' has {len(source.row_groups)} row groups, fewer than the {context.world_size} processes",
            hint="launch fewer processes, or write the data with more row groups",
        )

    # pass 1: encoding statistics (merged over ranks in rank order: every rank builds the same encoder)
    holdout_sampler = HoldoutSampler(config, source.n_rows)
    kinds = column_kinds(source, columns, left_out, categorical)
    try:
        stats = collect_stats(
            my_groups, source, config.target, columns, kinds, config.seed, config.data.val_fraction,
            config.data.test_fraction, on_batch=holdout_sampler,
        )
    except GlselectError as err:
        stats = err  # every rank must learn of it, or the others would wait for this one forever
    gathered = distributed.all_gather_objects(stats, context)
    for outcome in gathered:
        if isinstance(outcome, GlselectError):
            raise GlselectError(str(outcome), hint=outcome.hint)
    my_train_rows = gathered[context.rank].n_rows_by_part[TRAIN]
    stats = copy.deepcopy(gathered[0])
    for other in gathered[1:]:
        stats.merge(other)
    if sum(stats.n_rows_by_part) < 20:
        raise GlselectError(f"the table has {sum(stats.n_rows_by_part)} usable rows; glselect needs at least 20")
    encoder = build_encoder(stats, source, config.target, config.data.task, config.data.max_levels, left_out, categorical)
    group_map = read_group_map(config.groups) if config.groups is not None else None
    group_index = build_group_index(encoder.sources, group_map, table_columns=source.columns, target=config.target, map_source=str(config.groups))
    schema = pa.schema([source.schema.field(name) for name in [*columns, config.target]])
    val = Holdout(*holdout_sampler.encoded(VAL, encoder, schema, device), n_rows=stats.n_rows_by_part[VAL])
    test = Holdout(*holdout_sampler.encoded(TEST, encoder, schema, device), n_rows=stats.n_rows_by_part[TEST])
    if min(sum(distributed.all_gather_objects(len(part.y), context)) for part in (val, test)) == 0:
        raise GlselectError("too few rows: no validation or test rows were drawn", hint="use a larger table")
    batch_size = local_batch_size(config, context.world_size)
    steps_per_epoch = distributed.all_reduce_min(max(math.ceil(my_train_rows / batch_size), 0), context)
    if steps_per_epoch == 0:
        raise GlselectError(f"a process's share of '{config.table}' has no training rows", hint="launch fewer processes")
    used = [column.name for column in encoder.columns if column.kind != "ignored"]  # ignored columns are never read again
    stream = TrainingStream(my_groups, [*used, config.target], encoder, config, steps_per_epoch, device, context.world_size)
    batches = iter(stream)
    read_seconds = time.perf_counter() - started

    task, n_outputs = encoder.target.task, encoder.target.n_outputs
    _set_threads(config, config.stream.batch_size * len(encoder.feature_names) * max(config.model.hidden or (n_outputs,)))
    loss_fn, row_loss_fn = loss_function(task), row_loss_function(task)
    n_features = len(encoder.feature_names)
    model = _seeded_model(n_features, config, n_outputs, device)
    penalty = make_penalty(group_index.group_ids, group_index.n_encoded, model.first_weight.shape[0], torch.float32)
    group_ids, weights, n_groups = penalty.group_ids.to(device), penalty.weights.to(device), penalty.n_groups

    # dense start (lambda = 0), early-stopped on the validation sample
    trainer = Trainer(model, config, context)
    dense_training = train_early_stopped(
        trainer, batches, val, loss_fn, row_loss_fn, steps_per_epoch, config.stream.max_epochs, context
    )
    dense_model = copy.deepcopy(model)
    dense_val = holdout_loss(model, val, row_loss_fn, context)
    dense_norms = model.group_norms(group_ids, n_groups).double().cpu().numpy()
    # no streamed training loss is kept for the dense model: its record carries the validation loss
    steps = [PathStep(
        lam=0.0, n_selected=int(np.count_nonzero(dense_norms)), group_norms=dense_norms, train_loss=math.nan,
        val_loss=dense_val[0], objective=math.nan, n_iters=dense_training.n_iters,
        converged=dense_training.stopped_early, relaxed_val_loss=dense_val[0], relaxed_val_se=dense_val[1],
    )]
    if on_step is not None:
        on_step(steps[0])

    # the lambda grid: from about where the first groups leave to the estimated lambda_max
    kkt = _zero_kkt_lambdas(model, batches, min(steps_per_epoch, MAX_PROBE_BATCHES), loss_fn, group_ids, weights, n_groups, context)
    positive = kkt[kkt > 0]
    lambda_max = float(positive.max()) if positive.size else 1.0
    lam_start = config.path.lambda_start or max(float(np.quantile(positive, 0.25)) if positive.size else 1.0, 1e-4 * lambda_max)
    ratio = max(lambda_max / lam_start, config.path.lambda_step) ** (1.0 / (config.stream.n_lambdas - 1))
    steps_per_lambda = max(1, round(config.stream.epochs_per_lambda * steps_per_epoch))
    # the fine-tune that scores a support must undo the penalty's shrinkage: a quarter of a lambda's
    # steps on large tables, at least a few epochs (up to MIN_RELAX_STEPS) on small ones
    relax_steps = max(steps_per_lambda // 4, min(MIN_RELAX_STEPS, 3 * steps_per_epoch), 1)
    relaxed_by_support: dict[bytes, tuple[float, float]] = {}
    last_relaxed_size = steps[0].n_selected
    active = steps[0].group_norms > 0
    lam = lam_start
    while len(steps) <= config.path.max_steps and active.sum() > config.path.min_features:
        trainer.set_penalty(group_ids, weights, lam)
        phase = trainer.run(batches, steps_per_lambda, loss_fn)
        norms_now = model.group_norms(group_ids, n_groups).cpu().numpy()
        active = norms_now > 0
        key, n_active = np.packbits(active).tobytes(), int(active.sum())
        if key not in relaxed_by_support and (n_active <= RELAX_EVERY_SUPPORT_UP_TO or n_active <= RELAX_LADDER * last_relaxed_size):
            relaxed_by_support[key] = _relaxed_loss(model, dense_model, active[group_index.group_ids], batches, relax_steps, val, loss_fn, row_loss_fn, config, context)
            last_relaxed_size = n_active
        step = _step_record(model, lam, phase, val, group_ids, weights, n_groups, row_loss_fn,
                            relaxed_by_support.get(key, (math.nan, math.nan)), config.path.tol, context)
        if not math.isfinite(step.train_loss):
            raise GlselectError(f"training diverged at lambda={lam:.3g}: the loss is not finite", hint="lower --learning-rate")
        steps.append(step)
        if on_step is not None:
            on_step(step)
        lam *= ratio
    path = LambdaPath(
        steps=tuple(steps), dense_model=dense_model, dense_training=dense_training, lambda_max_estimate=lambda_max,
        n_rejected=0, complete=bool(active.sum() <= config.path.min_features),
    )
    path_seconds = time.perf_counter() - started - read_seconds

    step_index, rule = choose_step(path, config.selection)
    selection = _refit(path, step_index, rule, group_index, batches, val, loss_fn, row_loss_fn, steps_per_epoch, n_outputs, config, device, context)
    distributed.check_same_weights(selection.model, context)
    distributed.check_same_weights(dense_model, context)
    with torch.no_grad():
        columns_kept = torch.as_tensor(np.flatnonzero(selection.feature_mask), dtype=torch.int64, device=device)
        dense_out = _gather(dense_model(test.X), context)
        pruned_out = _gather(selection.model(test.X.index_select(1, columns_kept)), context)
        test_y = _gather(test.y, context)
        dense_metrics = evaluate(dense_out, test_y, encoder.target)
        pruned_metrics = evaluate(pruned_out, test_y, encoder.target)
    dense_model, selection = dense_model.cpu(), _on_cpu(selection)
    path = LambdaPath(**{**path.__dict__, "dense_model": dense_model})
    dense_column_norms = torch.linalg.vector_norm(dense_model.first_weight.detach(), dim=0).double().numpy()
    # no permutation importance: it would need the holdout sample on every rank shuffled alike
    importances = rank_groups(path, selection, group_index, encoder, dense_column_norms, None, {})
    summary = _summary(config, encoder, group_index, path, selection, dense_metrics, pruned_metrics, stats, val, test, context, device, steps_per_epoch, len(source.row_groups), stream.n_mixed)
    path_scalars, path_norms = path_tables(path, group_index)
    inputs = [name for name, keep in zip(encoder.feature_names, selection.feature_mask) if keep]
    model_meta = model_document(selection.model, encoder, inputs, summary["selected_features"], config.model.max_norm, __version__)
    summary["timings"] = {
        "read_seconds": round(read_seconds, 3),
        "path_seconds": round(path_seconds, 3),
        "refit_seconds": round(time.perf_counter() - started - read_seconds - path_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    return _Fitted(summary, encoder, importances, path, selection, path_scalars, path_norms, model_meta)


def _set_threads(config: RunConfig, work: int) -> None:
    """As ``api`` does: one thread for small mini-batches (hand-offs cost more than they save), else
    the cores this process's share of the machine has (torchrun may start several on one machine)."""
    from glselect.pipeline import SINGLE_THREAD_WORK

    cores = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(config.threads or (1 if work < SINGLE_THREAD_WORK else cores))


def _gather(tensor: torch.Tensor, context: distributed.Context) -> torch.Tensor:
    """Rows from every rank, in rank order, on the CPU (bounded: at most the holdout sample)."""
    return torch.cat(distributed.all_gather_objects(tensor.detach().cpu(), context))


def _on_cpu(selection: Selection) -> Selection:
    return Selection(**{**selection.__dict__, "model": selection.model.cpu()})


def _relaxed_loss(
    model: GroupLassoMLP, dense_model: GroupLassoMLP, keep: np.ndarray, batches: Iterator, n_steps: int, val: Holdout, loss_fn: Callable,
    row_loss_fn: Callable, config: RunConfig, context: distributed.Context,
) -> tuple[float, float]:
    """Validation loss of a support after a short unpenalised fine-tune on it.

    The fine-tune starts from the dense model restricted to the support, not from the penalised
    model: a few hundred stochastic steps do not fully undo the penalty's shrinkage, and starting
    from the shrunken weights would favour supports met early on the path (less shrunk) over
    sparser ones met later. From the dense weights every support starts on an equal footing.
    """
    if not keep.any():  # no input left: the penalised model is its output bias
        return holdout_loss(model, val, row_loss_fn, context)
    device = model.first_weight.device
    small = restrict_inputs(dense_model, keep).to(device)
    columns = torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64, device=device)
    Trainer(small, config, context, columns).run(batches, n_steps, loss_fn)
    return holdout_loss(small, val, row_loss_fn, context, columns)


def _refit(
    path: LambdaPath, step_index: int, rule: str, group_index: GroupIndex, batches: Iterator, val: Holdout,
    loss_fn: Callable, row_loss_fn: Callable, steps_per_epoch: int, n_outputs: int, config: RunConfig,
    device: torch.device, context: distributed.Context,
) -> Selection:
    """Streamed ``selection.refit``: a fresh unpenalised network on the chosen columns, early-stopped."""
    step = path.steps[step_index]
    group_mask = step.group_norms > 0
    feature_mask = group_mask[group_index.group_ids]
    model = _seeded_model(int(feature_mask.sum()), config, n_outputs, device)
    columns = torch.as_tensor(np.flatnonzero(feature_mask), dtype=torch.int64, device=device)
    result = train_early_stopped(
        Trainer(model, config, context, columns), batches, val, loss_fn, row_loss_fn, steps_per_epoch, config.stream.max_epochs, context
    )
    return Selection(
        step_index=step_index, rule=rule, lam=step.lam, group_mask=group_mask, feature_mask=feature_mask,
        model=model, refit=result, n_pruned_neurons=0, unconfirmed=np.zeros_like(group_mask),
    )


def _summary(
    config: RunConfig, encoder: Encoder, group_index: GroupIndex, path: LambdaPath, selection: Selection,
    dense_metrics: dict, pruned_metrics: dict, stats, val: Holdout, test: Holdout,
    context: distributed.Context, device: torch.device, steps_per_epoch: int, n_row_groups: int, n_mixed: int,
) -> dict:
    """``summary.json`` with the in-memory fit's keys, plus ``streaming`` (how the rows were read)."""
    n_val_scored, n_test_scored = (sum(distributed.all_gather_objects(len(part.y), context)) for part in (val, test))
    summary = summary_document(
        config, encoder, group_index, path, selection, {"dense": dense_metrics, "pruned": pruned_metrics},
        {
            "rows": sum(stats.n_rows_by_part),
            "rows_dropped_missing_target": stats.target.n_missing,
            "train_rows": stats.n_rows_by_part[TRAIN],
            "val_rows": stats.n_rows_by_part[VAL],
            "test_rows": stats.n_rows_by_part[TEST],
        },
        scored_by="validation" if config.selection.max_features is None else "max_features",
    )
    summary["streaming"] = {
        "processes": context.world_size,
        "device": str(device),
        "row_groups": n_row_groups,
        "row_groups_mixed": n_mixed,
        "steps_per_epoch": steps_per_epoch,
        "val_rows_scored": n_val_scored,
        "test_rows_scored": n_test_scored,
    }
    return summary
