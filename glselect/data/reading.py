"""What reading the table found, said once: each column's kind, the columns left out and why, the rows
dropped for a missing target, and warnings about what was read but looks doubtful.

``read_report`` builds it from the merged column statistics and the fitted encoder, so an in-memory, a
streamed and a torchrun fit of one table report the same; ``summary.json`` keeps it under "reading"
and the command line prints it on stderr.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from glselect.data.encoder import Encoder
from glselect.data.io import ENCODING_NAMES
from glselect.data.names import likely_typo_of
from glselect.data.stats import StreamStats
from glselect.data.target import plain_value

SMALL_CLASS_ROWS = 10  # a class with fewer rows is learned from a handful of examples and scored on fewer
MIN_ROWS_FOR_ID = 20  # with fewer rows, whole unique numbers say little about a column being an ID
LISTED = 5  # names shown in one warning before "..."
MOSTLY_EMPTY = 0.9  # a used column missing in this share of the rows or more is warned about
TYPO_RATIO = 5  # a small class looks like a typo of a label with at least this many times its rows


@dataclass(frozen=True)
class ReadReport:
    """The facts of reading one table (see the module docstring)."""

    n_rows: int  # rows with a target
    n_rows_dropped_missing_target: int
    kinds: dict[str, int]  # columns per kind, in the order kinds first appear
    ignored: dict[str, str]  # column -> why it is not used
    warnings: tuple[str, ...]
    notes: dict[str, Any] = field(default_factory=dict)  # from the file: encoding, trailing_empty_rows, dates
    mostly_empty: dict[str, float] = field(default_factory=dict)  # used column -> share of rows missing (>= MOSTLY_EMPTY)

    def to_dict(self) -> dict[str, Any]:
        """The keys ``summary.json`` keeps under "reading"; ``encoding``, ``trailing_empty_rows_dropped``,
        ``dates`` and ``mostly_empty`` only when there is something to say."""
        report = {
            "rows": self.n_rows,
            "rows_dropped_missing_target": self.n_rows_dropped_missing_target,
            "kinds": dict(self.kinds),
            "ignored": dict(self.ignored),
            "warnings": list(self.warnings),
        }
        if "encoding" in self.notes:
            report["encoding"] = self.notes["encoding"]
        if self.notes.get("trailing_empty_rows"):
            report["trailing_empty_rows_dropped"] = self.notes["trailing_empty_rows"]
        if self.notes.get("dates"):
            report["dates"] = dict(self.notes["dates"])
        if self.mostly_empty:
            report["mostly_empty"] = dict(self.mostly_empty)
        return report

    def with_warning(self, warning: str) -> ReadReport:
        return ReadReport(
            self.n_rows,
            self.n_rows_dropped_missing_target,
            self.kinds,
            self.ignored,
            (*self.warnings, warning),
            self.notes,
            self.mostly_empty,
        )


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


def _typos(encoder: Encoder, stats: StreamStats) -> dict[Any, Any]:
    """``{label: intended label}``: small text classes within a typo of a class with many times their rows."""
    target, counts = encoder.target, stats.target.counts
    if target.task not in ("binary", "multiclass") or not counts:
        return {}
    typos = {}
    for label in target.classes:
        if not isinstance(label, str) or counts[label] >= SMALL_CLASS_ROWS:
            continue
        others = [other for other in target.classes if isinstance(other, str) and counts[other] >= TYPO_RATIO * counts[label]]
        intended = likely_typo_of(label, others)
        if intended is not None:
            typos[label] = intended
    return typos


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"


def _typo_warning(encoder: Encoder, stats: StreamStats, typos: dict[Any, Any]) -> str | None:
    """A class label that looks like a typo of another: name both, and what it did to the task. The data is left as it is."""
    if not typos:
        return None
    target, counts = encoder.target, stats.target.counts
    listed = ", ".join(
        f"{label!r} ({_rows(counts[label])}) looks like a typo of {intended!r}" for label, intended in list(typos.items())[:LISTED]
    )
    n_classes = len(target.classes)
    effect = (
        f", and makes the target multiclass ({n_classes} classes instead of 2)"
        if target.task == "multiclass" and n_classes - len(typos) == 2
        else ""
    )
    return (
        f"target '{target.name}': {listed}{' ...' if len(typos) > LISTED else ''}{effect}; "
        f"correct {'the label' if len(typos) == 1 else 'the labels'} in the file, or drop {'its' if len(typos) == 1 else 'their'} rows"
    )


def _mostly_empty(encoder: Encoder, stats: StreamStats) -> dict[str, float]:
    """Used columns missing in at least ``MOSTLY_EMPTY`` of the rows, with that share (floored to 4 places)."""
    shares = {}
    for column in encoder.columns:
        column_stats = stats.columns.get(column.name)
        if column.kind == "ignored" or column_stats is None or not column_stats.n_rows:
            continue
        share = column_stats.n_missing / column_stats.n_rows
        if share >= MOSTLY_EMPTY:
            shares[column.name] = math.floor(share * 10_000) / 10_000
    return shares


def _mostly_empty_warning(shares: dict[str, float]) -> str | None:
    if not shares:
        return None
    listed = ", ".join(f"{name!r} ({math.floor(share * 100)}% missing)" for name, share in list(shares.items())[:LISTED])
    return (
        f"mostly empty column(s): {listed}{' ...' if len(shares) > LISTED else ''}: what they add rests on the few rows that have "
        "a value, and on which rows are empty; fill them in, or pass --drop for any that should not be used"
    )


def _small_class_warning(encoder: Encoder, stats: StreamStats, typos: dict[Any, Any] | None = None) -> str | None:
    target = encoder.target
    if target.task not in ("binary", "multiclass") or not stats.target.counts:
        return None
    small = [
        (label, stats.target.counts[label])
        for label in target.classes
        if stats.target.counts[label] < SMALL_CLASS_ROWS and label not in (typos or {})
    ]
    if not small:
        return None
    listed = ", ".join(f"{plain_value(label)!r}: {count} row{'s' if count != 1 else ''}" for label, count in small[:LISTED]) + (
        " ..." if len(small) > LISTED else ""
    )
    return (
        f"target '{target.name}' has small classes ({listed}): their metrics rest on a few held-out rows; "
        "collect more rows of them or merge them into other classes"
    )


def read_report(stats: StreamStats, encoder: Encoder, n_missing_target: int) -> ReadReport:
    """The report of one table from its merged statistics (all ranks), its fitted encoder, and the rows
    left out for a missing target (the in-memory fit drops them before its statistics pass)."""
    kinds = Counter(column.kind for column in encoder.columns)
    typos = _typos(encoder, stats)
    mostly_empty = _mostly_empty(encoder, stats)
    warnings = [
        warning
        for warning in (
            _typo_warning(encoder, stats, typos),
            _small_class_warning(encoder, stats, typos),
            _id_warning(encoder, stats),
            _mostly_empty_warning(mostly_empty),
        )
        if warning
    ]
    return ReadReport(
        n_rows=stats.target.n_rows - stats.target.n_missing,
        n_rows_dropped_missing_target=n_missing_target,
        kinds=dict(kinds),
        ignored={column.name: column.reason for column in encoder.columns if column.kind == "ignored"},
        warnings=tuple(warnings),
        notes=dict(stats.notes),
        mostly_empty=mostly_empty,
    )


def report_lines(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(facts, warnings)``: the lines a person reads on stderr, from ``ReadReport.to_dict()``."""
    kinds = ", ".join(f"{count} {kind}" for kind, count in report["kinds"].items())
    facts = [f"read {report['rows']} rows; columns: {kinds}"]
    if report.get("encoding"):
        facts.append(f"read the file as {ENCODING_NAMES.get(report['encoding'], report['encoding'])} text: it is not UTF-8")
    if report.get("trailing_empty_rows_dropped"):
        facts.append(f"dropped {report['trailing_empty_rows_dropped']} empty rows at the end of the file")
    if report["rows_dropped_missing_target"]:
        facts.append(f"dropped {report['rows_dropped_missing_target']} rows with a missing target")
    if report.get("dates"):
        facts.append("read as dates: " + ", ".join(f"{name!r} ({written})" for name, written in report["dates"].items()))
    facts += [f"ignored '{name}': {reason}" for name, reason in report["ignored"].items()]
    return facts, list(report["warnings"])
