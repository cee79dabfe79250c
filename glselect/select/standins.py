"""What could stand in for each selected group, and which left-out groups carry signal of their own.

A small set that predicts as well as all columns raises the next question: which columns are
interchangeable with the ones chosen, and which only look relevant because they echo one? For
the saved selection (its refit model) every group left out gets at most one role, measured on
the validation rows the refit never trained on:

- **substitute** for a selected group ``s``: the model keeps its held-out loss (the loss the
  smallest-set search compares sets by, the Brier score for classes; within ``NOISE_SE`` paired
  standard errors) when ``s``'s columns are replaced by their linear
  prediction from the candidate and the other selected groups. An exact copy of ``s``, or a
  column that with the others determines it (make_classification's ``r = a + b`` beside ``b``),
  passes. Where no candidate does alone, the candidates are tried together (``a`` and ``b``
  for a selected ``r = a + b``): if they pass, each is a substitute, all together. The
  prediction is fitted on one half of the rows and scored on the other (both ways), so the test
  does not reward overfitting; it is linear, so a column that determines ``s`` only
  through a curve is not found (a refit per pair would, at a refit's cost per candidate).
- **own signal**: the candidate, with its linear part on the selected groups' columns taken out,
  is associated with what the model still gets wrong (the gradient of each row's loss with
  respect to the outputs: the residual for squared error, one-hot minus probabilities for
  classes, the Cox score for survival). A score test, t above a Bonferroni bound over every test
  made at family-wise ``moments.FAMILY_ALPHA``: such a group would improve the set, but the set
  is already as good as all columns within the noise.
- **proxy** of ``s``: correlated with it (``CORRELATED``), neither a substitute nor with signal
  of its own: it only echoes ``s``. ``--goal all-relevant`` never selects a proxy.

Candidates for substitute and proxy are, per selected group, the ``PER_GROUP`` left-out groups
most correlated with it (the largest |r| between their columns) at ``CORRELATED`` or above; a
left-out group that is a linear combination of the set's columns (``COMBINATION_R2``) is also
tried against every selected group, however little it correlates with each. Every left-out
group gets the own-signal test. Everything is a forward pass and a least-squares solve
on the validation rows: no refit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from glselect.data.source import Rows
from glselect.path.moments import bonferroni_bound
from glselect.path.problem import Problem
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection
from glselect.select.smallest import compare, selection_row_losses

CORRELATED = 0.5  # |r| from which a left-out group is a candidate substitute or proxy of a selected one
PER_GROUP = 3  # candidates per selected group, the most correlated first
# A left-out group the selected set predicts this well (cross-fitted R^2 of its linear prediction
# from the set's columns) is a linear combination of them: it is tried as a substitute for every
# selected group, not only the ones it correlates with (make_classification's redundant columns
# can correlate with no selected group at CORRELATED and still replace one).
COMBINATION_R2 = 0.99
PRODUCT_CELLS = 1 << 22  # the own-signal test's products are formed this many at a time
MIN_ROWS = 20  # fewer validation rows: no stand-in is named (half of them fit each prediction)
# A replacement whose mean loss differs from the model's by less than this share of it keeps the
# loss whatever the paired standard error: an exact copy's prediction is exact, and what is left
# is float32 rounding of the network's outputs, whose paired standard error is as small (measured
# on make_classification: +2e-9 +- 3e-9 for an exact combination of the set, which half a
# standard error then failed, so the copy was named a proxy).
ROUNDING = 1e-6
SUBSTITUTE, PROXY, OWN_SIGNAL = "substitute", "proxy", "own signal"


@dataclass(frozen=True)
class StandIns:
    """Per left-out group, its role and the selected group it stands in for (-1: none)."""

    role: dict[int, str] = field(default_factory=dict)
    stands_in_for: dict[int, int] = field(default_factory=dict)
    own_t: np.ndarray | None = None  # per group: the own-signal test's |t| (0 for selected groups)
    together: frozenset[int] = frozenset()  # selected groups whose substitutes stand in only all together

    def of_role(self, role: str) -> list[int]:
        return sorted(g for g, r in self.role.items() if r == role)


def standardised(X: np.ndarray) -> np.ndarray:
    """``X``'s columns centred and scaled to unit length (a column with no spread stays 0)."""
    centred = X - X.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    return centred / np.where(scale > 0, scale, 1.0)


def correlation_with(scaled: np.ndarray, group_ids: np.ndarray, group: int, n_groups: int) -> np.ndarray:
    """Per group: the largest |r| between one of its columns and one of ``group``'s, from the
    ``standardised`` rows (only that group's rows of the correlation matrix are formed: a wide
    table has thousands of columns)."""
    r = np.abs(scaled[:, group_ids == group].T @ scaled).max(axis=0)
    by_group = np.zeros(n_groups)
    np.maximum.at(by_group, group_ids, r)
    return by_group


def _with_intercept(Z: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((Z.shape[0], 1)), Z])


def cross_fitted_prediction(Z: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``T``'s linear prediction from ``Z`` (both rows), each half of the rows predicted by a
    least-squares fit on the other half."""
    n = Z.shape[0]
    halves = (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1)
    predicted = np.empty_like(T)
    for fitted, scored in (halves, halves[::-1]):
        coefficients, *_ = np.linalg.lstsq(_with_intercept(Z[fitted]), T[fitted], rcond=None)
        predicted[scored] = _with_intercept(Z[scored]) @ coefficients
    return predicted


def residualised(Z: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``T`` minus its least-squares prediction from ``Z`` (with an intercept), on the same rows."""
    design = _with_intercept(Z)
    coefficients, *_ = np.linalg.lstsq(design, T, rcond=None)
    return T - design @ coefficients


def column_t(candidates: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Per column of ``candidates``: the largest |t| over ``gradient``'s columns of the mean product
    of the two (rows are the observations), a few columns at a time (rows x columns x outputs)."""
    n, n_outputs = gradient.shape
    width = max(1, PRODUCT_CELLS // max(n * n_outputs, 1))
    t = np.zeros(candidates.shape[1])
    for start in range(0, candidates.shape[1], width):
        products = candidates[:, start : start + width, None] * gradient[:, None, :]  # rows, columns, outputs
        mean = products.mean(axis=0)
        sd = products.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t[start : start + width] = np.where(sd > 0, np.abs(mean) / (sd / math.sqrt(n)), 0.0).max(axis=1, initial=0.0)
    return t


class Evaluator:
    """The selection's refit on the validation rows: per-row losses, with some columns replaced."""

    def __init__(self, problem: Problem, selection: Selection) -> None:
        self.problem, self.selection = problem, selection
        self.X = problem.val.X.detach().double().cpu().numpy()
        self.model_columns = np.flatnonzero(selection.feature_mask)

    def row_losses(self, X: np.ndarray) -> np.ndarray:
        """Each validation row's loss with ``X`` (every encoded column) in place of its columns, as the
        smallest-set search compares sets (``Datafit.comparison_row_loss``: the Brier score for classes),
        so that a substitute keeps the loss by the same measure the set was chosen by."""
        val = self.problem.val
        rows = Rows(torch.as_tensor(X, dtype=val.X.dtype, device=val.X.device), val.y)
        return selection_row_losses(self.selection, rows, self.problem.datafit.comparison_row_loss)

    def gradient(self) -> np.ndarray:
        """Per row and output, minus the gradient of the row's loss with respect to the model's outputs."""
        val = self.problem.val
        inputs = val.X[:, torch.as_tensor(self.model_columns, dtype=torch.int64, device=val.X.device)]
        with torch.enable_grad():
            outputs = self.selection.model(inputs).detach().requires_grad_(True)
            self.problem.datafit.row_loss(outputs, val.y).sum().backward()
        assert outputs.grad is not None
        return -outputs.grad.double().cpu().numpy().reshape(len(val), -1)


def find_stand_ins(problem: Problem, selection: Selection) -> StandIns:
    """The role of every left-out group (see the module docstring); nothing on too few rows or an empty set."""
    selected = np.flatnonzero(selection.group_mask)
    n_groups = selection.group_mask.size
    if selected.size == 0 or len(problem.val) < MIN_ROWS:
        return StandIns()
    evaluator = Evaluator(problem, selection)
    X, group_ids = evaluator.X, problem.group_ids
    left_out = np.flatnonzero(~selection.group_mask & np.isin(np.arange(n_groups), group_ids))
    in_set = np.isin(group_ids, selected)
    own_t = np.zeros(n_groups)
    gradient = evaluator.gradient()
    Z_set = X[:, in_set]
    # every left-out column at once (one least-squares solve, one pass of products): a wide table
    # leaves out thousands of groups; a group's t is its columns' largest
    left_columns = np.isin(group_ids, left_out)
    np.maximum.at(own_t, group_ids[left_columns], column_t(residualised(Z_set, X[:, left_columns]), gradient))
    bound = bonferroni_bound(max(1, int(left_columns.sum()) * gradient.shape[1]))
    role: dict[int, str] = {int(g): OWN_SIGNAL for g in left_out if own_t[g] > bound}
    stands_in_for: dict[int, int] = {}
    joint: set[int] = set()
    needs: dict[int, bool] = {}  # per selected group: whether the model needs it (the others do not predict it)
    base = evaluator.row_losses(X)
    scaled = standardised(X)
    for s in selected:
        correlation = correlation_with(scaled, group_ids, int(s), n_groups)
        candidates = [g for g in left_out if correlation[g] >= CORRELATED]
        candidates = sorted(candidates, key=lambda g: -correlation[g])[:PER_GROUP]
        s_columns = group_ids == s
        others = in_set & ~s_columns
        # a group the model does not need (the others predict it well enough) has no substitute:
        # anything would "keep the loss" in its place
        needed = not _keeps_loss(evaluator, base, s_columns, others)
        free = [int(g) for g in candidates if role.get(int(g)) != SUBSTITUTE]  # not standing in for another group

        alone = [group for group in free if needed and _keeps_loss(evaluator, base, s_columns, others | (group_ids == group))]
        # no candidate alone, but together (make_classification's r = a + b selected, a and b left out)
        together = (
            free
            if needed and not alone and len(free) > 1 and _keeps_loss(evaluator, base, s_columns, others | np.isin(group_ids, free))
            else []
        )
        for group in alone + together:
            role[group], stands_in_for[group] = SUBSTITUTE, int(s)
        if together:
            joint.add(int(s))
        for group in free:
            if group not in role:
                role[group], stands_in_for[group] = PROXY, int(s)
        needs[int(s)] = needed
    combinations = _combinations(Z_set, X, group_ids, left_out)
    for g in left_out:
        if role.get(int(g)) in (SUBSTITUTE, OWN_SIGNAL) or not combinations[int(g)]:
            continue
        correlation = correlation_with(scaled, group_ids, int(g), n_groups)
        for s in sorted(selected, key=lambda group: -correlation[group]):
            s_columns = group_ids == s
            if needs[int(s)] and _keeps_loss(evaluator, base, s_columns, (in_set & ~s_columns) | (group_ids == g)):
                role[int(g)], stands_in_for[int(g)] = SUBSTITUTE, int(s)
                break
    return StandIns(role, stands_in_for, own_t, frozenset(joint))


def _combinations(Z: np.ndarray, X: np.ndarray, group_ids: np.ndarray, groups: np.ndarray) -> dict[int, bool]:
    """Per group of ``groups``: whether every one of its columns (of ``X``) is (almost) a linear
    combination of ``Z``'s, a cross-fitted R^2 of at least ``COMBINATION_R2`` (one solve for all)."""
    columns = np.isin(group_ids, groups)
    T = X[:, columns]
    spread = ((T - T.mean(0)) ** 2).sum(0)
    residual = ((T - cross_fitted_prediction(Z, T)) ** 2).sum(0)
    r2 = np.where(spread > 0, 1.0 - residual / np.where(spread > 0, spread, 1.0), 0.0)
    every = np.ones(int(group_ids.max(initial=-1)) + 1, dtype=bool)
    np.logical_and.at(every, group_ids[columns], r2 >= COMBINATION_R2)
    return {int(g): bool(every[g]) for g in groups}


def _keeps_loss(evaluator: Evaluator, base: np.ndarray, columns: np.ndarray, predictors: np.ndarray) -> bool:
    """Whether the model keeps its held-out loss ``base`` with ``columns`` replaced by their
    prediction from the ``predictors`` columns (both bool masks over encoded columns)."""
    X = evaluator.X
    replaced = X.copy()
    replaced[:, columns] = cross_fitted_prediction(X[:, predictors], X[:, columns])
    return keeps_loss(evaluator.row_losses(replaced), base)


def keeps_loss(rows: np.ndarray, base: np.ndarray) -> bool:
    """Whether per-row losses ``rows`` keep the model's ``base`` ones: within ``NOISE_SE`` paired
    standard errors, or within ``ROUNDING`` of their mean."""
    return compare(rows, base, negligible=ROUNDING * abs(float(base.mean()))).as_good


def stand_ins_document(stand_ins: StandIns, names: list[str], selection: Selection) -> dict[str, Any]:
    """summary.json's ``stand_ins``: per selected group its substitutes and proxies, and the groups with signal of their own."""
    per_group = {
        names[s]: {
            "substitutes": [names[g] for g in stand_ins.of_role(SUBSTITUTE) if stand_ins.stands_in_for[g] == s],
            "together": bool(s in stand_ins.together),  # the substitutes stand in all together, not one by one
            "proxies": [names[g] for g in stand_ins.of_role(PROXY) if stand_ins.stands_in_for[g] == s],
        }
        for s in np.flatnonzero(selection.group_mask)
    }
    return {"selected": per_group, "own_signal": [names[g] for g in stand_ins.of_role(OWN_SIGNAL)]}


class StandInsStage:
    """Names, for the saved selection, what could stand in for each selected group (see the module docstring)."""

    name = "stand-ins"
    kind = "refine"
    columns = ("stand_in", "stand_in_for")

    def refine(self, fit: Fit, selection: Selection) -> tuple[Selection, Part]:
        fit.progress.announce("stand-ins")
        found = find_stand_ins(fit.problem, selection)
        names = fit.group_names
        n_groups = len(names)
        role = np.array([found.role.get(g, "") for g in range(n_groups)], dtype=object)
        target = np.array([names[found.stands_in_for[g]] if g in found.stands_in_for else "" for g in range(n_groups)], dtype=object)
        return selection, Part(
            self.name,
            group_columns={"stand_in": role, "stand_in_for": target},
            summary={"stand_ins": stand_ins_document(found, names, selection)},
        )
