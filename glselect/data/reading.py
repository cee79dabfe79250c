"""What reading the table found, said once: each column's kind, the columns left out and why, the rows
dropped for a missing target, and warnings about what was read but looks doubtful.

``read_report`` builds it from the merged column statistics and the fitted encoder, so an in-memory, a
streamed and a torchrun fit of one table report the same; ``summary.json`` keeps it under "reading"
and the command line prints it on stderr.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from glselect.data.encoder import Encoder
from glselect.data.stats import StreamStats
from glselect.data.target import plain_value

SMALL_CLASS_ROWS = 10  # a class with fewer rows is learned from a handful of examples and scored on fewer
MIN_ROWS_FOR_ID = 20  # with fewer rows, whole unique numbers say little about a column being an ID
LISTED = 5  # names shown in one warning before "..."


@dataclass(frozen=True)
class ReadReport:
    """The facts of reading one table (see the module docstring)."""

    n_rows: int  # rows with a target
    n_rows_dropped_missing_target: int
    kinds: dict[str, int]  # columns per kind, in the order kinds first appear
    ignored: dict[str, str]  # column -> why it is not used
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.n_rows,
            "rows_dropped_missing_target": self.n_rows_dropped_missing_target,
            "kinds": dict(self.kinds),
            "ignored": dict(self.ignored),
            "warnings": list(self.warnings),
        }

    def with_warning(self, warning: str) -> ReadReport:
        return ReadReport(self.n_rows, self.n_rows_dropped_missing_target, self.kinds, self.ignored, (*self.warnings, warning))


def _listed(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names[:LISTED]) + (" ..." if len(names) > LISTED else "")


def _id_warning(encoder: Encoder, stats: StreamStats) -> str | None:
    """Numeric columns of whole numbers that never repeat and nearly fill their range: row numbers or IDs."""
    suspects = []
    for column in encoder.columns:
        column_stats = stats.columns.get(column.name)
        if column.kind != "numeric" or column_stats is None or not column_stats.is_whole_and_unique:
            continue
        n_present = column_stats.n_rows - column_stats.n_missing
        if n_present >= MIN_ROWS_FOR_ID and column_stats.high - column_stats.low + 1 <= 2 * n_present:
            suspects.append(column.name)
    if not suspects:
        return None
    return (
        f"column(s) {_listed(suspects)} look like integer IDs (whole numbers, each value once, nearly consecutive) "
        "and are used as numbers; pass --drop for any that only identify rows"
    )


def _small_class_warning(encoder: Encoder, stats: StreamStats) -> str | None:
    target = encoder.target
    if target.task not in ("binary", "multiclass") or not stats.target.counts:
        return None
    small = [(label, stats.target.counts[label]) for label in target.classes if stats.target.counts[label] < SMALL_CLASS_ROWS]
    if not small:
        return None
    listed = ", ".join(f"{plain_value(label)!r}: {count} row{'s' if count != 1 else ''}" for label, count in small[:LISTED]) + (" ..." if len(small) > LISTED else "")
    return (
        f"target '{target.name}' has small classes ({listed}): their metrics rest on a few held-out rows; "
        "collect more rows of them or merge them into other classes"
    )


def read_report(stats: StreamStats, encoder: Encoder, n_missing_target: int) -> ReadReport:
    """The report of one table from its merged statistics (all ranks), its fitted encoder, and the rows
    left out for a missing target (the in-memory fit drops them before its statistics pass)."""
    kinds = Counter(column.kind for column in encoder.columns)
    warnings = [warning for warning in (_small_class_warning(encoder, stats), _id_warning(encoder, stats)) if warning]
    return ReadReport(
        n_rows=stats.target.n_rows - stats.target.n_missing,
        n_rows_dropped_missing_target=n_missing_target,
        kinds=dict(kinds),
        ignored={column.name: column.reason for column in encoder.columns if column.kind == "ignored"},
        warnings=tuple(warnings),
    )


def report_lines(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(facts, warnings)``: the lines a person reads on stderr, from ``ReadReport.to_dict()``."""
    kinds = ", ".join(f"{count} {kind}" for kind, count in report["kinds"].items())
    facts = [f"read {report['rows']} rows; columns: {kinds}"]
    if report["rows_dropped_missing_target"]:
        facts.append(f"dropped {report['rows_dropped_missing_target']} rows with a missing target")
    facts += [f"ignored '{name}': {reason}" for name, reason in report["ignored"].items()]
    return facts, list(report["warnings"])
