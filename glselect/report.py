"""Renderables built from results: the ranked table and the metrics line shown after a fit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value == value else "n/a"  # NaN (e.g. R^2 of a constant) prints as n/a


def top_features_table(features: pd.DataFrame, top: int) -> Table:
    """The ``top`` highest-ranked columns: rank, name, group, selected, path survival, dense norm."""
    table = Table(title=f"Top {min(top, len(features))} of {len(features)} columns", title_justify="left")
    for header, justify in (("rank", "right"), ("feature", "left"), ("group", "left"), ("selected", "center"),
                            ("importance (λ)", "right"), ("dense norm", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in features.head(top).itertuples(index=False):
        table.add_row(
            str(row.rank),
            escape(str(row.feature)),
            escape(str(row.group)) if row.group != row.feature else "",
            "[green]yes[/]" if row.selected else "[dim]no[/]",
            _fmt(row.importance),
            _fmt(row.dense_norm),
        )
    return table


def metrics_lines(summary: dict[str, Any]) -> list[str]:
    """One line each for the selection and the dense-vs-pruned held-out metrics."""
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    pairs = ", ".join(f"{name} {_fmt(dense[name])} → {_fmt(pruned[name])}" for name in dense)
    sizes = summary["sizes"]
    # a streamed fit scores a bounded sample of its test rows
    n_scored = summary.get("streaming", {}).get("test_rows_scored", sizes["test_rows"])
    return [
        f"selected {summary['n_selected_features']} of {sizes['columns']} columns "
        f"({summary['n_selected_groups']} of {sizes['groups']} groups) by rule {summary['rule']} at λ={summary['lambda']:.3g}",
        f"held-out test rows ({n_scored}), dense → pruned: {pairs}",
    ]
