"""The selection as a plan: the options resolved once into the stages a fit runs, in order.

Three tables say everything about how the selection options combine:

- ``STAGES``: every stage, in the order it runs, and when the options ask for it;
- ``CONFLICTS``: combinations that are errors (two options that each choose the set their own way);
- ``OVERRIDES``: documented precedences, an option that turns other stages off (``--max-features``
  turns off cross-validation and confirmation: the set is the K groups that survive longest, so
  there is no lambda to score and no group to drop).

A new stage is one file in ``select/`` (a class following one of ``base.py``'s protocols) and one
line in ``STAGES`` (and, when it adds columns to the ranked tables, its name in ``COLUMN_ORDER``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from glselect.config import RunConfig, SelectionConfig
from glselect.errors import GlselectError
from glselect.select.base import Fit, Part, blank_part, timed
from glselect.select.choose import Selection, StepScores
from glselect.select.confirm import Confirm
from glselect.select.crossval import CrossValidate
from glselect.select.knockoffs import Knockoffs
from glselect.select.leakage import LeakageCheck
from glselect.select.permutation import PermutationImportance
from glselect.select.redundancy import TopK
from glselect.select.refit import RuleChoice
from glselect.select.relevant import AllRelevant
from glselect.select.smallest import SmallestAsGood
from glselect.select.stability import StabilitySelection
from glselect.select.standins import StandInsStage

__all__ = ["COLUMN_ORDER", "CONFLICTS", "OVERRIDES", "STAGES", "Conflict", "Override", "Plan", "resolve"]


@dataclass(frozen=True)
class Step:
    """One line of the plan: a stage and whether the run's options ask for it."""

    stage: Any  # a ScoreSteps, Choose, Refine or Measure (base.py); its ``kind`` says which
    asked: Callable[[RunConfig], bool]


# every stage, in the order a fit runs them (scoring, one choice, refinements, measures)
STAGES: tuple[Step, ...] = (
    Step(CrossValidate(), lambda config: bool(config.selection.cv)),
    Step(Knockoffs(), lambda config: config.selection.fdr is not None),
    Step(TopK(), lambda config: config.selection.max_features is not None and config.selection.max_correlation < 1),
    Step(SmallestAsGood(), lambda config: config.selection.goal in ("auto", "all-relevant")),
    Step(RuleChoice(), lambda config: config.selection.goal == "minimal" or config.selection.max_features is not None),
    Step(Confirm(), lambda config: config.selection.confirm > 0 and config.selection.goal == "minimal"),
    Step(StandInsStage(), lambda config: config.selection.goal in ("auto", "all-relevant")),
    Step(AllRelevant(), lambda config: config.selection.goal == "all-relevant"),
    Step(StabilitySelection(), lambda config: bool(config.importance.stability_pairs)),
    Step(PermutationImportance(), lambda config: config.importance.permutation_repeats > 0),  # 0: its columns stay blank
    Step(LeakageCheck(), lambda config: True),
)
# the stages that add columns to groups.csv and importances.csv, in the files' column order (a
# stage that did not run leaves its columns blank, so every out dir has the same columns)
COLUMN_ORDER = ("stand-ins", "permutation", "stability", "knockoffs")


@dataclass(frozen=True)
class Conflict:
    """Options that cannot be given together: ``message`` says which and what to do."""

    applies: Callable[[SelectionConfig], bool]
    message: str


# checked in this order when a fit starts (not in SelectionConfig, so that every option can still be
# given on its own to the config: the CLI's option table is tested that way); the first that applies is raised
CONFLICTS: tuple[Conflict, ...] = (
    Conflict(
        lambda s: s.fdr is not None and s.max_features is not None,
        "--fdr and --max-features both choose the selected set: give one of them",
    ),
    Conflict(
        lambda s: s.fdr is not None and bool(s.cv),
        "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv",
    ),
    Conflict(
        lambda s: s.fdr is not None and s.fdr_offset == 0 and s.knockoff_draws > 1,
        "--fdr-offset 0 (plain knockoff) is for one draw: only knockoff+'s e-values can be averaged over --knockoff-draws; "
        "give one of them",
    ),
    Conflict(
        lambda s: s.goal == "all-relevant" and s.fdr is not None,
        "--goal all-relevant and --fdr ask different questions: knockoffs test each group given all the others, "
        "so a redundant copy is never selected; give one of them",
    ),
    Conflict(
        lambda s: s.goal == "all-relevant" and s.max_features is not None,
        "--goal all-relevant and --max-features both choose the selected set: give one of them",
    ),
)


@dataclass(frozen=True)
class Override:
    """A documented precedence: when ``given`` applies, the stages named in ``turns_off`` do not run."""

    given: str  # the option as a user writes it
    applies: Callable[[SelectionConfig], bool]
    turns_off: tuple[str, ...]
    why: str


OVERRIDES: tuple[Override, ...] = (
    Override(
        "--fdr",
        lambda s: s.fdr is not None,
        ("rule", "smallest", "top-k", "confirmation", "all-relevant", "stand-ins"),
        "the knockoff selection chooses the set and bounds its false discovery rate; --goal auto asks the minimal question alone",
    ),
    Override(
        "--max-features",
        lambda s: s.max_features is not None,
        ("cross-validation", "smallest", "confirmation", "all-relevant", "stand-ins"),
        "the set is the K groups that survive longest: no lambda to score, no group to drop; --goal auto asks the minimal question alone",
    ),
    Override(
        "--max-features with --max-correlation under 1",
        lambda s: s.max_features is not None and s.max_correlation < 1,
        ("rule",),
        "the redundancy-aware top k chooses the K groups instead of the path's own K survivors",
    ),
)


def check_conflicts(config: SelectionConfig) -> None:
    """Raise the first of ``CONFLICTS`` that applies to ``config``.

    Raises
    ------
    GlselectError
        Two options that cannot be given together.
    """
    for conflict in CONFLICTS:
        if conflict.applies(config):
            raise GlselectError(conflict.message)


def turned_off(config: SelectionConfig) -> frozenset[str]:
    """The stages ``OVERRIDES`` turn off for ``config``."""
    return frozenset(name for override in OVERRIDES if override.applies(config) for name in override.turns_off)


@dataclass(frozen=True)
class Plan:
    """The stages a fit runs, in order (see the module docstring)."""

    stages: tuple[Any, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def select(self, fit: Fit) -> tuple[Selection, list[Part]]:
        """Score the path's steps, choose and refit a selection, refine it; each stage's part, in order."""
        scores: StepScores | None = None
        selection: Selection | None = None
        parts: list[Part] = []
        for stage in self.stages:
            if stage.kind == "score":
                scores, part = timed(stage.score, fit)
            elif stage.kind == "choose":
                selection, part = timed(stage.choose, fit, scores)
            elif stage.kind == "refine":
                selection, part = timed(stage.refine, fit, selection)
            else:
                continue
            parts.append(part)
        assert selection is not None  # every plan has one chooser: the rule unless an override replaced it
        return selection, parts

    def measure(self, fit: Fit, selection: Selection) -> list[Part]:
        """Each measuring stage's part for the saved ``selection``, in order."""
        return [timed(stage.measure, fit, selection) for stage in self.stages if stage.kind == "measure"]

    def column_parts(self, parts: Sequence[Part], n_groups: int) -> list[Part]:
        """The parts that add columns to the ranked tables, in ``COLUMN_ORDER``; blank for stages that did not run."""
        by_name = {part.stage: part for part in parts}
        columns_of = {step.stage.name: step.stage.columns for step in STAGES if hasattr(step.stage, "columns")}
        return [by_name.get(name) or blank_part(name, columns_of[name], n_groups) for name in COLUMN_ORDER]


def resolve(config: RunConfig) -> Plan:
    """The plan for ``config``: its conflicts checked, the stages it asks for less those an override turns off.

    Raises
    ------
    GlselectError
        A combination of options in ``CONFLICTS``.
    """
    check_conflicts(config.selection)
    off = turned_off(config.selection)
    return Plan(tuple(step.stage for step in STAGES if step.asked(config) and step.stage.name not in off))


def result_of(parts: Sequence[Part], stage: str) -> Any:
    """The ``result`` of the part ``stage`` made; None when it did not run."""
    return next((part.result for part in parts if part.stage == stage), None)
