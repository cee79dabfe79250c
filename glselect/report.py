"""Renderables built from results: the ranked table and the metrics line shown after a fit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value == value else "n/a"  # NaN (e.g. R^2 of a constant) prints as n/a


def top_features_table(features: pd.DataFrame, top: int) -> Table:
    """The ``top`` highest-ranked columns: rank, name, group, selected, path survival, dense norm,
    permutation importance (± its spread) and, when stability selection ran, the selection frequency."""
    table = Table(title=f"Top {min(top, len(features))} of {len(features)} columns", title_justify="left")
    # out dirs written before a measure existed lack its column: show what is there
    has_permutation = "permutation" in features.columns
    has_stability = "stability" in features.columns and features["stability"].notna().any()
    columns = [("rank", "right"), ("feature", "left"), ("group", "left"), ("selected", "center"),
               ("importance (λ)", "right"), ("dense norm", "right")]
    columns += [("permutation ± sd", "right")] if has_permutation else []
    columns += [("stability", "right")] if has_stability else []
    for header, justify in columns:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in features.head(top).itertuples(index=False):
        cells = [
            str(row.rank),
            escape(str(row.feature)),
            escape(str(row.group)) if row.group != row.feature else "",
            "[green]yes[/]" if row.selected else "[dim]no[/]",
            _fmt(row.importance),
            _fmt(row.dense_norm),
        ]
        if has_permutation:
            cells.append(f"{_fmt(row.permutation)} ± {_fmt(row.permutation_std)}" if row.permutation else "0")
        if has_stability:
            cells.append(_fmt(row.stability))
        table.add_row(*cells)
    return table


def metrics_lines(summary: dict[str, Any]) -> list[str]:
    """One line each for the selection and the dense-vs-pruned held-out metrics."""
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    pairs = ", ".join(f"{name} {_fmt(dense[name])} → {_fmt(pruned[name])}" for name in dense)
    sizes = summary["sizes"]
    scored_by = summary.get("scored_by", "validation")
    lines = [
        f"selected {summary['n_selected_features']} of {sizes['columns']} columns "
        f"({summary['n_selected_groups']} of {sizes['groups']} groups) by rule {summary['rule']} "
        f"({scored_by}) at λ={summary['lambda']:.3g}",
        f"held-out test rows ({sizes['test_rows']}), dense → pruned: {pairs}",
    ]
    stability = summary.get("stability")
    if stability:
        lines.append(
            f"stability ({2 * stability['pairs']} half-samples, q={stability['q']}): "
            f"{len(stability['stable_groups'])} groups selected in at least {stability['threshold']:.0%} of them; "
            f"expected false selections among them <= {stability['expected_false_bound']:.3g}"
        )
    return lines
