"""Renderables built from results: the ranked table and the metrics line shown after a fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from glselect.text import plural


def _fmt(value: float | None) -> str:
    # NaN (e.g. R^2 of a constant) and null (summary.json's NaN, e.g. the AUC of one class) print as n/a
    return f"{value:.4g}" if isinstance(value, (int, float)) and value == value else "n/a"


def top_features_table(features: pd.DataFrame, top: int) -> Table:
    """The ``top`` highest-ranked columns: rank, name, group (when there are groups), selected,
    path survival, dense norm, permutation importance ± its spread and, when stability selection
    ran, the selection frequency. Kept narrow enough for an 80-column terminal (a CI log)."""
    table = Table(title=f"Top {min(top, len(features))} of {plural(len(features), 'column')}", title_justify="left")
    shown = features.head(top)
    has_groups = bool((shown["group"] != shown["feature"]).any())
    # out dirs written before a measure existed lack its column: show what is there
    def measure(name: str) -> pd.Series:  # blank cells: not computed
        values = features[name] if name in features.columns else pd.Series(np.nan, index=features.index)
        return pd.to_numeric(values, errors="coerce").head(top)

    permutation, permutation_std, stability = measure("permutation"), measure("permutation_std"), measure("stability")
    has_permutation = bool(permutation.notna().any())
    has_stability = bool(stability.notna().any())
    columns = [("rank", "right"), ("feature", "left")] + ([("group", "left")] if has_groups else [])
    # short headers: the README's output-file section says what each one is
    columns += [("sel", "center"), ("survival λ", "right"), ("dense", "right")]
    columns += [("perm ±sd", "right")] if has_permutation else []
    columns += [("stab", "right")] if has_stability else []
    for header, justify in columns:
        # names wrap rather than end in '…': 'customer_lifetime_value_2023' and '..._2024' must stay apart
        overflow = "fold" if header in ("feature", "group") else "ellipsis"
        table.add_column(header, justify=justify, overflow=overflow)  # type: ignore[arg-type]
    for row, mean, spread, frequency in zip(shown.itertuples(index=False), permutation, permutation_std, stability):
        cells = [str(row.rank), escape(str(row.feature))]
        if has_groups:
            cells.append(escape(str(row.group)) if row.group != row.feature else "")
        cells += ["[green]yes[/]" if row.selected else "[dim]no[/]", f"{row.importance:.3g}", f"{row.dense_norm:.3g}"]
        if has_permutation:
            cells.append(f"{mean:.3g}±{spread:.2g}" if mean else "0")
        if has_stability:
            cells.append(f"{frequency:.2f}")
        table.add_row(*cells)
    return table


def metrics_lines(summary: dict[str, Any]) -> list[str]:
    """One line each for the selection and the dense-vs-pruned held-out metrics."""
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    pairs = ", ".join(f"{name} {_fmt(dense[name])} → {_fmt(pruned.get(name))}" for name in dense)
    sizes = summary["sizes"]
    scored_by = summary.get("scored_by", "validation")
    # a streamed fit scores a bounded sample of its test rows
    n_scored = summary.get("streaming", {}).get("test_rows_scored", sizes["test_rows"])
    lines = [
        f"selected {summary['n_selected_features']} of {plural(sizes['columns'], 'column')} "
        f"({summary['n_selected_groups']} of {plural(sizes['groups'], 'group')}) by rule {summary['rule']} "
        f"({scored_by}) at λ={summary['lambda']:.3g}",
        f"held-out test rows ({n_scored}), dense → pruned: {pairs}",
    ]
    unconfirmed = summary.get("unconfirmed_groups")
    if unconfirmed:
        confirmed_by = summary.get("confirmed_by") or "validation"
        tested = (
            "the refit's validation loss" if confirmed_by == "validation"
            else f"the held-out loss of {confirmed_by.removeprefix('cross-fit')} cross-fitted refits"
        )
        lines.append(
            f"left out of the chosen step: {', '.join(unconfirmed)} (shuffling "
            f"{'it' if len(unconfirmed) == 1 else 'each'} did not raise {tested} enough; see --confirm)"
        )
    interacting = summary.get("interacting_pairs")
    if interacting:  # what the dense network was pointed at before training (path/interactions.py)
        lines.append(
            "interacting pairs given units before the dense fit: "
            + ", ".join(f"{pair['columns'][0]} × {pair['columns'][1]} (t {pair['t']:.3g})" for pair in interacting)
        )
    rounds = summary.get("all_relevant_rounds")
    if rounds:  # what the minimal set left out and later rounds found without it (select/relevant.py)
        lines.append(
            "added by later rounds (all-relevant): "
            + "; ".join(f"round {k}: {', '.join(names)}" for k, names in enumerate(rounds, start=1))
        )
    stability = summary.get("stability")
    if stability:
        lines.append(
            f"stability ({2 * stability['pairs']} half-samples, q={stability['q']}): "
            f"{plural(len(stability['stable_groups']), 'group')} selected in at least {stability['threshold']:.0%} of them; "
            f"expected false selections among them <= {stability['expected_false_bound']:.3g}"
        )
    streaming = summary.get("streaming") or {}
    speed = streaming.get("rows_per_second_per_epoch")
    if speed:  # whole epochs of reading, encoding and training: what a user waits for, per row
        lines.append(
            f"streamed {speed['median']:,} rows/s per epoch (median of {plural(streaming['epochs_timed'], 'whole epoch')}, "
            f"{speed['min']:,} to {speed['max']:,})"
        )
    return lines
