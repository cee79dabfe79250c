"""Rules a CI data-quality job can gate on, evaluated from the out dir alone."""

from __future__ import annotations

from dataclasses import dataclass

from glselect.data.names import did_you_mean
from glselect.errors import GlselectError
from glselect.outputs.load import Results


@dataclass(frozen=True)
class RuleResult:
    rule: str  # e.g. "expect age"
    passed: bool
    detail: str  # what was found


def _known_columns(results: Results, names: list[str], option: str) -> None:
    known = list(results.features["feature"])
    unknown = [name for name in names if name not in set(known)]
    if unknown:
        raise GlselectError(
            f"{option} names column(s) that the fit in '{results.out_dir}' never saw: {', '.join(map(repr, unknown))}",
            hint=did_you_mean(unknown, known),
        )


def run_checks(
    results: Results,
    *,
    expect: list[str],
    forbid: list[str],
    max_share: float | None,
    baseline: Results | None,
    min_overlap: float | None,
    fail_on_leakage: bool = False,
) -> list[RuleResult]:
    """Evaluate every rule asked for, in a fixed order.

    - ``expect``: each column must be selected.
    - ``forbid``: each column must not be selected (an ID, a leaking column).
    - ``max_share``: no group may carry more than this share of the total importance (path
      survival), an alarm for a column that leaks the target.
    - ``baseline`` + ``min_overlap``: the selected columns' Jaccard overlap with the baseline
      out dir's must be at least this (the selection has not drifted).
    - ``fail_on_leakage``: the fit found no group that alone predicts the target almost perfectly
      (``summary.json``'s ``leakage``; a fit that did not measure it passes, and says so).

    Raises
    ------
    GlselectError
        No rule was asked for, a column is unknown, a share is outside (0, 1], or a baseline is
        given without ``min_overlap`` or the other way round.
    """
    if not (expect or forbid or max_share is not None or baseline is not None or min_overlap is not None or fail_on_leakage):
        raise GlselectError(
            "no rule to check", hint="pass --expect, --forbid, --max-share, --fail-on-leakage or --baseline with --min-overlap"
        )
    if (baseline is None) != (min_overlap is None):
        raise GlselectError("--baseline and --min-overlap go together")
    for name, value in (("--max-share", max_share), ("--min-overlap", min_overlap)):
        if value is not None and not 0 < value <= 1:
            raise GlselectError(f"{name} must be in (0, 1], got {value}")
    _known_columns(results, expect, "--expect")
    _known_columns(results, forbid, "--forbid")
    selected = set(results.summary["selected_features"])
    outcomes = [RuleResult(f"expect {name}", name in selected, "selected" if name in selected else "not selected") for name in expect]
    outcomes += [RuleResult(f"forbid {name}", name not in selected, "selected" if name in selected else "not selected") for name in forbid]
    if max_share is not None:
        total = float(results.groups["importance"].sum())
        top = results.groups.iloc[0]
        share = float(top["importance"]) / total if total > 0 else 0.0
        outcomes.append(RuleResult(f"max-share {max_share:g}", share <= max_share, f"largest: group '{top['group']}' carries {share:.3f}"))
    if baseline is not None and min_overlap is not None:
        before = set(baseline.summary["selected_features"])
        union = selected | before
        overlap = len(selected & before) / len(union) if union else 1.0
        changes = sorted(selected - before)[:3], sorted(before - selected)[:3]
        outcomes.append(
            RuleResult(
                f"min-overlap {min_overlap:g} with {baseline.out_dir}",
                overlap >= min_overlap,
                f"overlap {overlap:.3f}; new: {', '.join(changes[0]) or '-'}; gone: {', '.join(changes[1]) or '-'}",
            )
        )
    if fail_on_leakage:
        outcomes.append(leakage_rule(results.summary.get("leakage")))
    return outcomes


def leakage_rule(leaks: object) -> RuleResult:
    """``--fail-on-leakage``: fails when ``summary.json``'s ``leakage`` lists a group."""
    if not isinstance(leaks, list):  # null: too few validation rows, or a fit from before the field
        return RuleResult("no leakage", True, "not measured by this fit (fewer than 100 validation rows, or an older glselect)")
    if not leaks:
        return RuleResult("no leakage", True, "no group alone predicts the target almost perfectly")
    found = "; ".join(f"'{leak.get('group')}' ({leak.get('metric')} {leak.get('score')})" for leak in leaks if isinstance(leak, dict))
    return RuleResult("no leakage", False, f"group(s) alone predict the target almost perfectly: {found}")
