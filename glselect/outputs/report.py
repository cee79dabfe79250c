"""Renderables built from results: the ranked table and the metrics line shown after a fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from glselect.text import plural


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a summary field may be null (not computed)."""
    return value if isinstance(value, dict) else {}


def _fmt(value: float | None) -> str:
    # NaN (e.g. R^2 of a constant) and null (summary.json's NaN, e.g. the AUC of one class) print as n/a
    return f"{value:.4g}" if isinstance(value, (int, float)) and value == value else "n/a"


@dataclass(frozen=True)
class MeasureCell:
    """A column of the printed table (and the HTML report's ranked table) from importances.csv columns a stage wrote."""

    header: str  # short: the README's output-file section says what each one is
    columns: tuple[str, ...]  # the importances.csv columns it reads; shown when the first has a value
    show: Callable[..., str]  # the cell, from one value per column


# the measures a stage may add, in the order they are shown; a new one is one line here
MEASURE_CELLS = (
    MeasureCell("perm ±sd", ("permutation", "permutation_std"), lambda mean, spread: f"{mean:.3g}±{spread:.2g}" if mean else "0"),
    MeasureCell("stab", ("stability",), lambda frequency: f"{frequency:.2f}"),
)
MEASURE_COLUMNS = tuple(name for cell in MEASURE_CELLS for name in cell.columns)
# the stages' rank keys (``Part.rank_column``) the rank follows after "selected", shown after "sel"
RANK_COLUMNS = ("round",)
NOT_POSITIVE_MARK = "!"  # after the permutation cell of a selected column whose mean is at or below zero


def top_features_table(features: pd.DataFrame, top: int) -> Table:
    """The ``top`` highest-ranked columns: rank, name, group (when there are groups), selected, the
    rank keys of ``RANK_COLUMNS`` the fit wrote (the all-relevant round), path survival, dense norm
    and each measure of ``MEASURE_CELLS`` the fit computed (permutation importance ± its spread,
    marked ``NOT_POSITIVE_MARK`` for a selected column at or below zero; the stability selection
    frequency). The rank follows the columns from "sel" to "survival λ". Kept narrow enough for an
    80-column terminal (a CI log)."""
    table = Table(title=f"Top {min(top, len(features))} of {plural(len(features), 'column')}", title_justify="left")
    shown = features.head(top)
    # blank: a column that is its own group, or an ignored column (which has no group)
    group_cells = [
        "" if pd.isna(group) or str(group) in ("", str(feature)) else str(group) for group, feature in zip(shown["group"], shown["feature"])
    ]
    has_groups = any(group_cells)

    # out dirs written before a measure existed lack its column: show what is there
    def measure(name: str) -> pd.Series:  # blank cells: not computed
        values = features[name] if name in features.columns else pd.Series(np.nan, index=features.index)
        return pd.to_numeric(values, errors="coerce").head(top)

    cells = [(cell, [measure(name) for name in cell.columns]) for cell in MEASURE_CELLS]
    cells = [(cell, values) for cell, values in cells if bool(values[0].notna().any())]
    keys = [(name, measure(name)) for name in RANK_COLUMNS if name in features.columns]
    keys = [(name, values) for name, values in keys if bool(values.notna().any())]
    flagged = features["perm_not_positive"].head(top).astype(bool) if "perm_not_positive" in features.columns else None
    stand_in_cells = _stand_in_cells(shown)
    columns = [("rank", "right"), ("feature", "left")] + ([("group", "left")] if has_groups else [])
    columns += [("sel", "center"), *((name, "right") for name, _ in keys), ("survival λ", "right"), ("dense", "right")]
    columns += [(cell.header, "right") for cell, _ in cells]
    columns += [("stands in", "left")] if any(stand_in_cells) else []
    for header, justify in columns:
        # names wrap rather than end in '…': 'customer_lifetime_value_2023' and '..._2024' must stay apart
        overflow = "fold" if header in ("feature", "group") else "ellipsis"
        table.add_column(header, justify=justify, overflow=overflow)  # type: ignore[arg-type]
    for index, row in enumerate(shown.itertuples(index=False)):
        row_cells = [str(row.rank), escape(str(row.feature))]
        if has_groups:
            row_cells.append(escape(group_cells[index]))
        row_cells.append("[green]yes[/]" if row.selected else "[dim]no[/]")
        row_cells += ["" if pd.isna(values.iloc[index]) else f"{values.iloc[index]:.0f}" for _, values in keys]
        row_cells += [f"{row.importance:.3g}", f"{row.dense_norm:.3g}"]
        for cell, values in cells:
            shown_cell = cell.show(*(series.iloc[index] for series in values))
            if cell.columns[0] == "permutation" and flagged is not None and flagged.iloc[index]:
                shown_cell = f"[yellow]{shown_cell} {NOT_POSITIVE_MARK}[/]"
            row_cells.append(shown_cell)
        if any(stand_in_cells):
            row_cells.append(escape(stand_in_cells[index]))
        table.add_row(*row_cells)
    return table


def _stand_in_cells(shown: pd.DataFrame) -> list[str]:
    """Per shown row, its stand-in role (select/standins.py): "for X" (a substitute for the
    selected X), "echoes X" (a proxy), "own signal"; blank for none or an out dir without the column."""
    if "stand_in" not in shown.columns:
        return [""] * len(shown)
    cells = []
    for role, target in zip(shown["stand_in"], shown["stand_in_for"]):
        role, target = ("" if pd.isna(role) else str(role)), ("" if pd.isna(target) else str(target))
        cells.append({"substitute": f"for {target}", "proxy": f"echoes {target}", "own signal": "own signal"}.get(role, ""))
    return cells


def step_changes(summary: dict[str, Any], at_step: int) -> list[tuple[str, str, int]]:
    """What later stages did to the chosen step's ``at_step`` groups, as (stage, verb, count) for
    each that changed them: the stage that left groups out (the smallest-set search, or
    confirmation) and all-relevant's additions (its rounds and the stand-ins it selects)."""
    n_left_out = len(summary.get("unconfirmed_groups") or [])
    n_added = max(summary["n_selected_groups"] - (at_step - n_left_out), 0)
    dropper = "the smallest-set search" if summary.get("as_good_as_all") else "confirmation"
    return [(stage, verb, n) for stage, verb, n in ((dropper, "left out", n_left_out), ("all-relevant", "added", n_added)) if n]


def refined_from_step(summary: dict[str, Any]) -> str | None:
    """How the selection differs from the groups non-zero at its step, when it does: "confirmation kept
    8", or what confirmation left out and the all-relevant rounds added; None when they are the same."""
    at_step = as_object(summary.get("path")).get("groups_at_step")
    n_selected = summary["n_selected_groups"]
    if not isinstance(at_step, int) or at_step == n_selected:
        return None
    changes = step_changes(summary, at_step)
    if len(changes) == 1 and changes[0][1] == "left out":
        return f"{changes[0][0]} kept {n_selected}"
    described = [f"{stage} {verb} {n}" for stage, verb, n in changes]
    return ", ".join([*described, f"{n_selected} selected"]) if described else f"{n_selected} of them selected"


def selection_line(summary: dict[str, Any]) -> str:
    """What was selected and how: "selected 4 of 9 columns (4 of 9 groups) by rule 1se (validation) at
    λ=0.0246"; when later stages changed the step's groups, the step and what they did, so that the
    count does not read as the step's: "selected 8 of 30 columns (8 of 30 groups): the step at λ=0
    (30 groups) by rule 1se (validation), confirmation kept 8"."""
    sizes = summary["sizes"]
    selected = (
        f"selected {summary['n_selected_features']} of {plural(sizes['columns'], 'column')} "
        f"({summary['n_selected_groups']} of {plural(sizes['groups'], 'group')})"
    )
    rule = f"by rule {summary['rule']} ({summary.get('scored_by', 'validation')})"
    refined = refined_from_step(summary)
    if refined is None:
        return f"{selected} {rule} at λ={summary['lambda']:.3g}"
    at_step = summary["path"]["groups_at_step"]
    return f"{selected}: the step at λ={summary['lambda']:.3g} ({plural(at_step, 'group')}) {rule}, {refined}"


def metrics_lines(summary: dict[str, Any]) -> list[str]:
    """One line each for the selection and the dense-vs-pruned held-out metrics."""
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    pairs = ", ".join(f"{name} {_fmt(dense[name])} → {_fmt(pruned.get(name))}" for name in dense)
    sizes = summary["sizes"]
    # a streamed fit scores a bounded sample of its test rows
    n_scored = summary.get("streaming", {}).get("test_rows_scored", sizes["test_rows"])
    lines = [selection_line(summary), f"held-out test rows ({n_scored}), dense → pruned: {pairs}"]
    return lines + [line for line in (describe(summary) for describe in SUMMARY_LINES) if line]


def fit_warnings(summary: dict[str, Any]) -> list[str]:
    """What the user should know about how the fit went, beyond its result, one line each: a group
    that leaks the target, an empty --fdr selection, a path that stopped with groups still in, steps
    that did not converge. ``fit`` prints them on stderr and the HTML report lists them with the
    reading's warnings (``run_warnings``)."""
    warnings = [leak_warning(leak) for leak in summary.get("leakage") or [] if isinstance(leak, dict)]
    fdr_warning = as_object(summary.get("fdr")).get("warning")  # why --fdr selected nothing (select/knockoffs.py)
    if isinstance(fdr_warning, str):
        warnings.append(fdr_warning)
    path = as_object(summary.get("path"))
    n_unconverged, n_steps = path.get("n_unconverged_steps") or 0, (path.get("n_steps") or 1) - 1
    if path.get("complete") is False:
        warnings.append(
            f"the path stopped after {plural(n_steps, 'lambda')} with groups still non-zero; the ranking of those groups is unresolved"
        )
    if n_unconverged:
        config = summary.get("config") or {}
        if summary.get("streaming"):
            epochs = config.get("stream", {}).get("epochs_per_lambda")
            warnings.append(
                f"{n_unconverged} of {plural(n_steps, 'path step')} did not converge ({epochs} epochs per lambda); "
                "raise --epochs-per-lambda; the ranking of groups that left at those steps is less certain"
            )
        elif _touches_the_exact_ranks(path):
            path_config = config.get("path", {})
            budget = path_config.get("max_iters_per_lambda")
            worst = path.get("worst_optimality")
            reached = f", the furthest {worst:.2g} x lambda" if isinstance(worst, (int, float)) else ""
            from_rank = path.get("unconverged_from_rank")
            affected = f"the order of the groups ranked {from_rank} and below" if from_rank else "the order of the groups that left there"
            warnings.append(
                f"{n_unconverged} of {plural(n_steps, 'path step')} stopped short of --tol {path_config.get('tol')} "
                f"(stalled, or past {budget} iterations per lambda{reached}): {affected} is less certain; "
                "raise --max-iters-per-lambda"
            )
    return warnings


def _touches_the_exact_ranks(path: dict[str, Any]) -> bool:
    """Whether a step that stopped short of --tol decides the order of the top ranks, which the path
    solves to --tol (``ranks_solved_to_tol``). Below them the steps run to a budget by design
    (walk.EXACT_UP_TO): path.csv's ``optimality`` and summary.json's ``unconverged_from_rank`` say how
    far they got; the answer and its ranking do not rest on them."""
    from_rank, exact_ranks = path.get("unconverged_from_rank"), path.get("ranks_solved_to_tol")
    if not isinstance(exact_ranks, int) or not isinstance(from_rank, int):
        return True  # a summary without the field (an older fit): as before
    return from_rank <= exact_ranks


def leak_warning(leak: dict[str, Any]) -> str:
    """The line for one entry of ``summary.json``'s ``leakage`` (select/leakage.py)."""
    return (
        f"group '{leak.get('group')}' alone predicts the target almost perfectly ({leak.get('metric')} {_fmt(leak.get('score'))} "
        "on the validation rows): it may copy the target or be computed from it; drop it (--drop) unless its values "
        "are known before the target's"
    )


def table_warnings(features: pd.DataFrame) -> list[str]:
    """What the ranked table says the user should know: the selected columns whose permutation
    importance is at or below zero (``perm_not_positive``), named in rank order."""
    if "perm_not_positive" not in features.columns:
        return []
    flagged = [str(name) for name in features.loc[features["perm_not_positive"].astype(bool), "feature"]]
    if not flagged:
        return []
    return [
        f"{plural(len(flagged), 'selected column')} with a permutation importance at or below zero (shuffling "
        f"{'it' if len(flagged) == 1 else 'each'} did not raise the test loss; marked {NOT_POSITIVE_MARK} in the table): "
        + ", ".join(flagged)
    ]


def run_warnings(summary: dict[str, Any]) -> list[str]:
    """Every warning the fit printed: the reading's (doubtful columns, small classes, ...), then ``fit_warnings``."""
    warnings = as_object(summary.get("reading")).get("warnings")
    return ([str(line) for line in warnings] if isinstance(warnings, list) else []) + fit_warnings(summary)


def as_good_line(summary: dict[str, Any]) -> str | None:
    as_good = summary.get("as_good_as_all")
    if not as_good:  # --goal auto's search (select/smallest.py)
        return None
    folds = as_good["compared_on"].removeprefix("cross-fit")
    where = "the validation rows" if as_good["compared_on"] == "validation" else f"{folds} cross-fitted folds"
    reference = f"the best model seen ({plural(as_good['reference_groups'], 'group')})"
    against = as_good.get("against_all") or {}
    dense = (
        f"; against all {against['groups']}: {against['loss_difference']:+.3g} ± {against['standard_error']:.2g}"
        if against and against["groups"] != as_good["reference_groups"]
        else ""
    )
    by = as_good.get("compared_by", "loss")  # absent from summaries written before it was recorded
    measured = f"(difference {as_good['loss_difference']:+.3g} ± {as_good['standard_error']:.2g}{dense}, on {where})"
    dropped = f"; dropped from the path's step: {', '.join(as_good['dropped'])}" if as_good["dropped"] else ""
    if as_good["as_good"]:
        return (
            f"as good as all columns: the smallest set whose held-out {by} is within {as_good['noise_se']:g} paired standard error "
            f"of {reference} {measured}{dropped}"
        )
    return (
        f"not shown as good as all columns: no set the search tried came within {as_good['noise_se']:g} paired standard error "
        f"of {reference} {measured}{dropped}"
    )


def stand_ins_line(summary: dict[str, Any]) -> str | None:
    stand_ins = summary.get("stand_ins")
    if not stand_ins:  # select/standins.py
        return None
    parts = []
    for group, found in stand_ins["selected"].items():
        if found["substitutes"] and found.get("together"):
            parts.append(f"{' and '.join(found['substitutes'])} together could stand in for {group}")
        elif found["substitutes"]:
            parts.append(f"{' or '.join(found['substitutes'])} could stand in for {group}")
        if found["proxies"]:
            parts.append(f"{', '.join(found['proxies'])} only echo{'es' if len(found['proxies']) == 1 else ''} {group}")
    if stand_ins["own_signal"]:
        parts.append(f"signal of their own, not needed: {', '.join(stand_ins['own_signal'])}")
    return "stand-ins: " + "; ".join(parts) if parts else None


def _unconfirmed_line(summary: dict[str, Any]) -> str | None:
    unconfirmed = summary.get("unconfirmed_groups")
    if not unconfirmed or summary.get("as_good_as_all"):  # the search's own line names its drops
        return None
    confirmed_by = summary.get("confirmed_by") or "validation"
    tested = (
        "the refit's validation loss"
        if confirmed_by == "validation"
        else f"the held-out loss of {confirmed_by.removeprefix('cross-fit')} cross-fitted refits"
    )
    return (
        f"left out of the chosen step: {', '.join(unconfirmed)} (shuffling "
        f"{'it' if len(unconfirmed) == 1 else 'each'} did not raise {tested} enough; see --confirm)"
    )


def _interacting_line(summary: dict[str, Any]) -> str | None:
    interacting = summary.get("interacting_pairs")
    if not interacting:  # what the dense network was pointed at before training (path/interactions.py)
        return None
    return "interacting pairs given units before the dense fit: " + ", ".join(
        f"{pair['columns'][0]} × {pair['columns'][1]} (t {pair['t']:.3g})" for pair in interacting
    )


def _duplicates_line(summary: dict[str, Any]) -> str | None:
    duplicates = summary.get("duplicate_pairs")
    if not duplicates:  # near-copies the pair screen took for one measurement twice (path/interactions.py)
        return None
    return "near-duplicate columns, not an interacting pair (no units given): " + ", ".join(
        f"{pair['columns'][0]} ≈ {pair['columns'][1]} (corr {pair['correlation']:.3f})" for pair in duplicates
    )


def _rounds_line(summary: dict[str, Any]) -> str | None:
    rounds = summary.get("all_relevant_rounds")
    if not rounds:  # what the minimal set left out and later rounds found without it (select/relevant.py)
        return None
    return "added by later rounds (all-relevant): " + "; ".join(f"round {k}: {', '.join(names)}" for k, names in enumerate(rounds, start=1))


def _stability_line(summary: dict[str, Any]) -> str | None:
    stability = summary.get("stability")
    if not stability:
        return None
    return (
        f"stability ({2 * stability['pairs']} half-samples, q={stability['q']}): "
        f"{plural(len(stability['stable_groups']), 'group')} selected in at least {stability['threshold']:.0%} of them; "
        f"expected false selections among them <= {stability['expected_false_bound']:.3g}"
    )


def _streaming_line(summary: dict[str, Any]) -> str | None:
    streaming = summary.get("streaming") or {}
    speed = streaming.get("rows_per_second_per_epoch")
    if not speed:  # whole epochs of reading, encoding and training: what a user waits for, per row
        return None
    return (
        f"streamed {speed['median']:,} rows/s per epoch (median of {plural(streaming['epochs_timed'], 'whole epoch')}, "
        f"{speed['min']:,} to {speed['max']:,})"
    )


# a line each for what a stage (or a stream) adds to summary.json, in the order they are printed
SUMMARY_LINES: tuple[Callable[[dict[str, Any]], str | None], ...] = (
    as_good_line,
    stand_ins_line,
    _unconfirmed_line,
    _interacting_line,
    _duplicates_line,
    _rounds_line,
    _stability_line,
    _streaming_line,
)
