"""``summary.json``: one definition of its fields, built from a fit and its stages' parts, and checked.

``FIELDS`` lists every field in the order the file holds them, with how a reader checks it. The
writer (``summary_document``) fills the fields from the fit and from the fragments the selection
stages return (``select/base.Part.summary``), in that order, and checks the result as a reader
would; the readers (``check_summary``) check a saved file against the same list. A stage that adds
a field to the summary adds one line here.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glselect import __version__
from glselect.config import RunConfig
from glselect.data.source import Dataset
from glselect.errors import GlselectError
from glselect.model.datafits import PRIMARY_METRIC
from glselect.outputs.files import dump_json
from glselect.outputs.outdir import OUTPUT_FORMAT
from glselect.outputs.schema import (
    TASKS,
    Check,
    _document,
    _field,
    is_count,
    is_number,
    is_number_or_null,
    is_object,
    is_scalar,
    is_text,
    list_of,
    mapping_of,
    optional,
)
from glselect.path.walk import EXACT_UP_TO, LambdaPath
from glselect.select.base import Part
from glselect.select.choose import Selection

__all__ = ["FIELDS", "Field", "SummaryFacts", "check_summary", "summary_document"]


@dataclass(frozen=True)
class Field:
    """One field of ``summary.json``.

    ``check`` and ``expected``: what a reader accepts (None: the field is not read back, so not
    checked). ``required``: every summary a reader opens must have it. ``optional_write``: written
    only when a stage gave it (else written as null when nothing gave it).
    """

    key: str
    check: Check | None = None
    expected: str = ""
    required: bool = False
    optional_write: bool = False


# every field, in the order summary.json holds them
FIELDS: tuple[Field, ...] = (
    Field("format"),
    Field("version"),
    Field("task", lambda value: value in TASKS, f"one of {', '.join(TASKS)}", required=True),
    Field("target", is_text, "text", required=True),
    Field("event", optional(is_text), "text or null"),  # survival: the event column; the target is then the time column
    Field("classes", list_of(is_scalar, unique=True), "a list of distinct labels", required=True),
    Field("selected_features", list_of(is_text, unique=True), "a list of distinct column names", required=True),
    Field("selected_groups", list_of(is_text, unique=True), "a list of distinct group names", required=True),
    Field("n_selected_features", is_count, "a whole number", required=True),
    Field("n_selected_groups", is_count, "a whole number", required=True),
    Field("dropped_within_groups"),
    Field("lambda", is_number, "a number", required=True),
    Field("rule", is_text, "text", required=True),
    Field("step", is_count, "a whole number", required=True),
    Field("unconfirmed_groups", list_of(is_text), "a list of group names"),
    Field("interacting_pairs", list_of(is_object), "a list of objects"),
    Field("duplicate_pairs", list_of(is_object), "a list of objects"),
    Field("scored_by", is_text, "text"),  # the choosing stage's
    # --goal auto's comparison of the chosen set with all columns (select/smallest.py)
    Field("as_good_as_all", is_object, "an object", optional_write=True),
    # per selected group what could stand in for it, and the groups with signal of their own (select/standins.py)
    Field("stand_ins", is_object, "an object", optional_write=True),
    Field("class_weights"),
    Field("stability"),  # the stability stage's (null: not run); its block is checked by STABILITY_FIELDS
    Field("fdr"),  # the knockoff stage's (null: not run)
    # the groups that alone predict the target almost perfectly (select/leakage.py); null: not measured
    Field("leakage", optional(list_of(is_object)), "a list of objects or null"),
    Field("primary_metric"),
    Field("metrics", mapping_of(mapping_of(is_number_or_null)), "an object of metric objects", required=True),
    Field("sizes", is_object, "an object", required=True),
    Field("path"),
    Field("columns", mapping_of(is_object), "an object with one object per column", required=True),
    Field("reading"),
    Field("seed", optional(is_count), "a whole number"),
    Field("config", is_object, "an object", required=True),
    Field("resolved"),
    Field("versions", mapping_of(is_text), "an object of version strings"),
    Field("timings"),
    Field("confirmed_by", optional(is_text), "text or null"),  # None: confirmation not applied
    Field("all_relevant_rounds", list_of(list_of(is_text)), "a list of lists of group names", optional_write=True),
    Field("streaming", is_object, "an object", optional_write=True),  # a streamed fit's reading and scoring
)
SIZE_FIELDS = ("columns", "groups", "test_rows")
STABILITY_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("pairs", is_count, "a whole number"),
    ("q", is_number, "a number"),
    ("threshold", is_number, "a number"),
    ("stable_groups", list_of(is_text), "a list of group names"),
    ("expected_false_bound", is_number, "a number"),
)

# what the printed line and the report read of the smallest-set search (report.as_good_line)
AS_GOOD_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("noise_se", is_number, "a number"),
    ("compared_on", is_text, "text"),
    ("reference_groups", is_count, "a whole number"),
    ("against_all", optional(is_object), "an object or null"),
    ("loss_difference", is_number, "a number"),
    ("standard_error", is_number, "a number"),
    ("as_good", lambda value: isinstance(value, bool), "true or false"),
    ("dropped", list_of(is_text), "a list of group names"),
)
AGAINST_ALL_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("groups", is_count, "a whole number"),
    ("loss_difference", is_number, "a number"),
    ("standard_error", is_number, "a number"),
)
# and of the stand-ins (report.stand_ins_line): per selected group, its substitutes and proxies
STAND_IN_FIELDS: tuple[tuple[str, Check, str], ...] = (
    ("substitutes", list_of(is_text), "a list of group names"),
    ("proxies", list_of(is_text), "a list of group names"),
)


def check_summary(summary: Any, file: Path) -> dict[str, Any]:
    """``summary`` (parsed ``summary.json``) when every field a reader uses is there and well typed.

    Raises
    ------
    GlselectError
        Naming the first field that is missing or of the wrong type.
    """
    summary = _document(summary, file)
    for entry in FIELDS:
        if entry.required and entry.check is not None:
            _field(summary, entry.key, entry.check, entry.expected, file)
    for entry in FIELDS:
        if not entry.required and entry.check is not None and entry.key in summary:
            _field(summary, entry.key, entry.check, entry.expected, file)
    for part in ("dense", "pruned"):
        _field(summary["metrics"], part, is_object, "an object", file, "metrics.")
    for key in SIZE_FIELDS:
        _field(summary["sizes"], key, is_count, "a whole number", file, "sizes.")
    if summary.get("streaming") is not None:
        streaming = summary["streaming"]
        if "test_rows_scored" in streaming:
            _field(streaming, "test_rows_scored", is_count, "a whole number", file, "streaming.")
    if summary.get("stability") is not None:
        _fields(_document(summary["stability"], file, "stability."), STABILITY_FIELDS, file, "stability.")
    if summary.get("as_good_as_all"):
        as_good = summary["as_good_as_all"]
        _fields(as_good, AS_GOOD_FIELDS, file, "as_good_as_all.")
        if as_good["against_all"]:
            _fields(as_good["against_all"], AGAINST_ALL_FIELDS, file, "as_good_as_all.against_all.")
        if "compared_by" in as_good:  # absent from summaries written before it was recorded
            _field(as_good, "compared_by", is_text, "text", file, "as_good_as_all.")
    if summary.get("stand_ins"):
        stand_ins = summary["stand_ins"]
        _field(stand_ins, "selected", mapping_of(is_object), "an object with one object per selected group", file, "stand_ins.")
        _field(stand_ins, "own_signal", list_of(is_text), "a list of group names", file, "stand_ins.")
        for group, found in stand_ins["selected"].items():
            _fields(found, STAND_IN_FIELDS, file, f"stand_ins.selected.{group}.")
    return summary


def _fields(document: dict[str, Any], fields: tuple[tuple[str, Check, str], ...], file: Path, where: str) -> None:
    """``_field`` for each (key, check, expected) of ``fields`` in ``document``."""
    for key, check, expected in fields:
        _field(document, key, check, expected, file, where)


@dataclass(frozen=True)
class SummaryFacts:
    """What a fit knows besides its stages' parts: the run, the data, the path and the saved selection.

    ``metrics``: ``{"dense": ..., "pruned": ...}`` on the test rows. ``class_weights``: per class,
    None when rows are weighed equally. ``resumed_from_step``: the checkpoint's last step, None when
    the path was not resumed.
    """

    config: RunConfig
    data: Dataset
    path: LambdaPath
    selection: Selection
    metrics: dict[str, dict[str, float]]
    class_weights: np.ndarray | None = None
    resumed_from_step: int | None = None


def _fit_fields(facts: SummaryFacts) -> dict[str, Any]:
    """The fields every fit writes, from the fit itself: the selection, metrics, sizes, path, settings."""
    config, data, path, selection = facts.config, facts.data, facts.path, facts.selection
    encoder, group_index = data.encoder, data.group_index
    train_rows, val_rows, test_rows = data.n_rows_by_part
    task = encoder.target.task
    selected_groups = [name for name, keep in zip(group_index.names, selection.group_mask) if keep]
    # a table column is selected when the refit reads any of its encoded columns (with --l1-ratio a
    # kept group may leave some columns, or some one-hot levels, out: those are listed apart)
    read = {source for source, keep in zip(encoder.sources, selection.feature_mask) if keep}
    selected_features = [column.name for column in encoder.columns if column.name in read]
    in_kept_groups = selection.group_mask[group_index.group_ids] & ~selection.feature_mask
    return {
        "format": OUTPUT_FORMAT,
        "version": __version__,
        "task": task,
        "target": config.target,
        "event": encoder.target.event,
        "classes": list(encoder.target.classes),
        "selected_features": selected_features,
        "selected_groups": selected_groups,
        "n_selected_features": len(selected_features),
        "n_selected_groups": len(selected_groups),
        "dropped_within_groups": [name for name, dropped in zip(encoder.feature_names, in_kept_groups) if dropped],
        "lambda": selection.lam,
        "rule": selection.rule,
        "step": selection.step_index,
        "unconfirmed_groups": [name for name, drop in zip(group_index.names, selection.unconfirmed) if drop],
        # pairs the screen gave units of the dense network to (path/interactions.py), strongest first
        "interacting_pairs": [
            {"columns": [encoder.feature_names[pair.first], encoder.feature_names[pair.second]], "t": round(pair.t, 2)}
            for pair in path.pairs
        ],
        # near-copies the screen passed over instead (|corr| > 0.95): no units, named here
        "duplicate_pairs": [
            {
                "columns": [encoder.feature_names[pair.first], encoder.feature_names[pair.second]],
                "correlation": round(pair.correlation, 3),
                "t": round(pair.t, 2),
            }
            for pair in path.duplicates
        ],
        "class_weights": None if facts.class_weights is None else dict(zip(map(str, encoder.target.classes), facts.class_weights.tolist())),
        "primary_metric": PRIMARY_METRIC[task],
        "metrics": facts.metrics,
        "sizes": {
            "rows": train_rows + val_rows + test_rows,
            "rows_dropped_missing_target": data.n_missing_target,
            "train_rows": train_rows,
            "val_rows": val_rows,
            "test_rows": test_rows,
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
            "resumed_from_step": facts.resumed_from_step,
            "n_steps": len(path.steps),
            # groups non-zero at the step of "step": confirmation and the all-relevant rounds select among them
            "groups_at_step": path.steps[selection.step_index].n_selected,
            "n_rejected_steps": path.n_rejected,
            "lambda_first": path.steps[1].lam if len(path.steps) > 1 else None,
            "lambda_last": path.steps[-1].lam,
            "lambda_max_estimate": path.lambda_max_estimate,
            "n_unconverged_steps": sum(not step.converged for step in path.steps[1:]),
            # the groups that left at an unconverged step rank this and below (None: every step converged)
            "unconverged_from_rank": min((step.n_selected + 1 for step in path.steps[1:] if not step.converged), default=None),
            # the top ranks, whose steps were solved to --tol (walk.EXACT_UP_TO); None: a stream's path
            # (its solves measure no optimality and are not solved to --tol)
            "ranks_solved_to_tol": EXACT_UP_TO if any(math.isfinite(step.optimality) for step in path.steps[1:]) else None,
            # the largest optimality measure (gradient mapping relative to lambda) of a path step; None: not measured
            "worst_optimality": _largest_finite(step.optimality for step in path.steps[1:]),
        },
        "columns": {column.name: {"kind": column.kind, "treatment": column.reason} for column in encoder.columns},
        "reading": None if data.reading is None else data.reading.to_dict(),  # kinds, ignored columns, dropped rows, warnings
        "seed": config.seed,
        "config": config.to_dict(),
        # what glselect chose where config says null or auto (the fit has set torch's threads by now)
        "resolved": {
            "threads": torch.get_num_threads(),
            "device": str(data.device),
            # how idle OpenMP threads wait (the command line sets PASSIVE on a busy machine: glselect.cli.openmp)
            "openmp_wait": os.environ.get("OMP_WAIT_POLICY", "default"),
        },
        "versions": {"glselect": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "confirmed_by": selection.confirmed_by,
    }


def summary_document(facts: SummaryFacts, parts: Sequence[Part]) -> dict[str, Any]:
    """``summary.json`` for a fit in memory or streamed: the fit's own fields and its parts' fragments, in ``FIELDS`` order.

    ``parts``: the selection stages' parts, and any other fragment the fit adds (its timings, a
    stream's reading); a field no part gave is written as null unless it is written only when given.

    Raises
    ------
    ValueError
        A part gives a field ``FIELDS`` does not define, or the document does not pass ``check_summary``
        (a bug: what is written must be what a reader accepts).
    """
    values = _fit_fields(facts)
    for part in parts:
        values.update(part.summary)
    unknown = sorted(set(values) - {entry.key for entry in FIELDS})
    if unknown:
        raise ValueError(f"summary.json has no field(s) {', '.join(unknown)}: define them in outputs/summary.FIELDS")
    document = {entry.key: values.get(entry.key) for entry in FIELDS if entry.key in values or not entry.optional_write}
    try:  # as the file will be read: the writer's JSON (NaN written as null)
        check_summary(json.loads(dump_json(document)), Path("summary.json"))
    except GlselectError as err:
        raise ValueError(f"the summary a fit wrote would not be read back: {err}") from err
    return document


def _largest_finite(values: Iterable[float]) -> float | None:
    finite = [value for value in values if math.isfinite(value)]
    return max(finite) if finite else None
