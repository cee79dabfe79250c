"""What a user should know about how a fit went, beyond its result: one line each, from ``summary.json``.

The command line prints these as 'warning: ...' lines; the scikit-learn selector raises them as
``GlselectWarning``. The reading report's own warnings (tiny classes, a likely typo class, mostly
empty columns) are in ``summary["reading"]["warnings"]``, printed as soon as the table is read.
"""

from __future__ import annotations

from typing import Any

from glselect.text import plural


def fit_warnings(summary: dict[str, Any]) -> list[str]:
    """The path's warnings: it stopped with groups still in, or some of its steps did not converge."""
    warnings = []
    path = summary.get("path") or {}
    n_steps = (path.get("n_steps") or 1) - 1
    if path.get("complete") is False:
        warnings.append(
            f"the path stopped after {plural(n_steps, 'lambda')} with groups still non-zero; the ranking of those groups is unresolved"
        )
    n_unconverged = path.get("n_unconverged_steps") or 0
    if n_unconverged:
        config = summary.get("config") or {}
        if summary.get("streaming"):
            budget = f"{config.get('stream', {}).get('epochs_per_lambda')} epochs per lambda"
            remedy = "raise --epochs-per-lambda"
        else:
            budget = f"max iterations {config.get('path', {}).get('max_iters_per_lambda')} per lambda"
            remedy = "raise --max-iters-per-lambda"
        warnings.append(
            f"{n_unconverged} of {plural(n_steps, 'path step')} did not converge ({budget}); {remedy}, or lower "
            "--lambda-step towards 1 so each step starts nearer its solution; the ranking of groups that left "
            "at those steps is less certain"
        )
    return warnings


def all_warnings(summary: dict[str, Any]) -> list[str]:
    """The reading report's warnings, then the path's."""
    return [*((summary.get("reading") or {}).get("warnings") or []), *fit_warnings(summary)]
