"""What a selection stage is: one of a few protocols, each returning a ``Part``.

A fit's selection is a plan (``plan.py``) of stages run in order on one ``Fit``:

- ``ScoreSteps``: score the path's steps (cross-validation); the chooser reads the scores;
- ``Choose``: pick the selected groups and refit them (the rule, the redundancy-aware top k, knockoffs);
- ``Refine``: take a selection and return a better one (confirmation, the all-relevant rounds);
- ``Measure``: measure every group for the ranked tables (stability, permutation importance).

Whatever a stage adds to the outputs comes back in its ``Part``: named per-group columns for
``groups.csv`` and ``importances.csv``, a fragment of ``summary.json``, and its own time. Ranking,
the summary, the report and the printed table read lists of parts, so a new stage is one file
here and one line in the plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # the stages' own modules import this one
    from glselect.config import RunConfig
    from glselect.data.source import Rows
    from glselect.path.problem import Problem
    from glselect.path.walk import LambdaPath
    from glselect.select.choose import Selection, StepScores

# Called as each stage's unit of work starts: (stage, number done, total), e.g. ("cv fold", 2, 5)
StageCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Progress:
    """Where stages report the work they start (for a progress display); silent without a callback."""

    on_stage: StageCallback | None = None

    def announce(self, stage: str) -> None:
        """``stage``, one piece of work, starts."""
        if self.on_stage is not None:
            self.on_stage(stage, 0, 1)

    def counter(self, name: str, total: int) -> Callable[[int], None] | None:
        """A callback for the ``total`` units of ``name`` (folds, draws, subsamples); None when silent."""
        on_stage = self.on_stage
        if on_stage is None:
            return None
        return lambda done: on_stage(name, done, total)


@dataclass(frozen=True)
class Fit:
    """What every stage reads: the problem, its path, the run's settings, the test rows, where to report."""

    problem: Problem
    path: LambdaPath
    config: RunConfig
    test: Rows
    progress: Progress = field(default_factory=Progress)

    @property
    def group_names(self) -> list[str]:
        return list(self.problem.data.group_index.names)


@dataclass(frozen=True)
class Part:
    """What one stage adds to a fit's outputs.

    ``group_columns``: per group (in group order, float (n_groups,)), columns of ``groups.csv``; a
    table column (``importances.csv``) copies its group's value unless ``column_values`` measures
    it on its own (``{column name: {table column: value}}``, ``unread`` for the columns not in it).
    ``summary``: fields of ``summary.json`` (see ``outputs/summary.py``). ``rank_key``: per group, a
    sort key the ranking reads after "selected" (the all-relevant round that found it), shown in the
    ranked tables as ``rank_column`` (blank for unselected groups).
    ``result``: the stage's own result (``CrossValidation``, ``KnockoffSelection``, ``Stability``).
    """

    stage: str
    group_columns: dict[str, np.ndarray] = field(default_factory=dict)
    column_values: dict[str, dict[str, float]] = field(default_factory=dict)
    unread: float = np.nan
    summary: dict[str, Any] = field(default_factory=dict)
    rank_key: np.ndarray | None = None
    rank_column: str = "round"  # the ranked tables' column that shows rank_key for the selected groups
    result: Any = None
    seconds: float = 0.0


def blank_part(stage: str, columns: tuple[str, ...], n_groups: int) -> Part:
    """The part of a stage that did not run: its columns blank (NaN), nothing in the summary."""
    return Part(stage, group_columns={name: np.full(n_groups, np.nan) for name in columns})


class ScoreSteps(Protocol):
    """Scores the path's steps; None when it scores nothing (the chooser then reads the validation rows)."""

    name: str

    def score(self, fit: Fit) -> tuple[StepScores | None, Part]: ...


class Choose(Protocol):
    """Picks the selected groups and refits them: the selection later stages refine."""

    name: str

    def choose(self, fit: Fit, scores: StepScores | None) -> tuple[Selection, Part]: ...


class Refine(Protocol):
    """Turns a selection into a better one."""

    name: str

    def refine(self, fit: Fit, selection: Selection) -> tuple[Selection, Part]: ...


class Measure(Protocol):
    """Measures every group (and table column) for the ranked tables."""

    name: str
    columns: tuple[str, ...]

    def measure(self, fit: Fit, selection: Selection) -> Part: ...


def timed(run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args)``, its part (alone, or second of a pair) stamped with the seconds it took: each
    stage measures its own time."""
    started = time.perf_counter()
    outcome = run(*args)
    seconds = time.perf_counter() - started
    if isinstance(outcome, Part):
        return replace(outcome, seconds=seconds)
    value, part = outcome
    return value, replace(part, seconds=seconds)
