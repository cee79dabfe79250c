"""The reading report of a fit on stderr: the column kinds, what was left out and why, and warnings."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from glselect.cli.console import one_line, stderr

MAX_FACT_LINES = 12  # a wide table's ignored columns are listed in summary.json, not all on the terminal


def print_reading(report: dict[str, Any] | None, quiet: bool) -> None:
    """The reading report (``summary.json``'s "reading"), printed as soon as the table is read: facts unless
    ``quiet``, warnings always (as the path's own warning is)."""
    from glselect.data.reading import report_lines  # once a table is read: --help stays free of pandas and torch

    if not report:
        return
    facts, warnings = report_lines(report)
    if not quiet:
        shown = facts[:MAX_FACT_LINES]
        if len(facts) > len(shown):
            shown.append(f'... {len(facts) - len(shown)} more ignored columns: see "reading" in summary.json')
        for line in shown:
            stderr.print(escape(one_line(line)), soft_wrap=True, highlight=False)
    for warning in warnings:
        stderr.print(f"[yellow]warning:[/] {escape(one_line(warning))}", soft_wrap=True, highlight=False)
