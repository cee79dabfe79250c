"""Leakage: a group that alone predicts the target almost perfectly.

A column that copies the target, or is computed from it (a refund flag beside "churned", a
discharge date beside "length of stay"), is selected first and makes the fit look better than
any model can be once the column is gone. This stage scores each group alone, cheaply, and lists
the groups whose score is near perfect: ``summary.json``'s ``leakage``, a warning line of the fit,
and ``glselect check --fail-on-leakage``.

The score of one candidate (an encoded column, or for a group of several columns a fixed random
projection of them, which gives each level of a one-hot group its own value) is that of a
neighbour guess: each held-out row's target is read off the two training rows whose candidate
values bracket its own (interpolated between them for a number, the nearer one's for a class).
No shape is assumed, so ``y = x``, ``y = x^2``, a step or a lookup table all score about 1, while
an honest predictor's noise enters the guess twice (the held-out row's and its neighbours'): a
column that explains a share R^2 of the target scores about ``1 - 1.5 (1 - R^2)`` to ``1 - 2 (1 - R^2)``.
The measure is the task's own: R^2 (regression), balanced accuracy (classes: a constant guess
of the majority class scores 1 / classes, however rare the others), Harrell's concordance of the
neighbour's time (survival). A group's score is the best of its candidates.

The guesses read a sample of the training rows (``path.start.screen_sample``: evenly spaced rows
in memory, the first mini-batches of a stream, every rank's share gathered, so every rank holds
the same sample) and are scored on the validation rows (the same on every rank). The same seed
and table give the same sample, projection and scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from glselect import distributed
from glselect.path.problem import Problem
from glselect.path.start import screen_sample
from glselect.select.base import Fit, Part
from glselect.select.choose import Selection

# A copy of the target, or a function of it, scores about 1 on a sample of this size (its training
# neighbours have nearly the same value, so nearly the same target); an honest predictor scores
# about 1 - 1.5 (1 - R^2) to 1 - 2 (1 - R^2), so one that explains 99% of the target (R^2 0.99) stays
# under the bar: only a column that explains more than about 99.4% of it is flagged.
THRESHOLD = 0.99
MAX_ROWS = 2000  # training rows the guesses read, and validation rows they are scored on, at most
SAMPLE_CELLS = 1 << 23  # the sample holds at most this many encoded cells (32 MB): a wide table samples fewer rows
# fewer validation (or sampled) rows than this: not checked (``leakage`` is null). On 100 rows of
# two even classes 0.99 allows one miss: a guess that misses 6% of rows gets there 1.5% of the time.
MIN_ROWS = 100
BLOCK_CELLS = 1 << 22  # candidates are scored this many (rows x candidates) cells at a time
MAX_PAIRS = 20_000  # survival: comparable pairs of validation rows the concordance reads at most
PROJECTION_SEED = 104_729  # the groups' projections and the pairs: fixed, so a rerun gives the same scores
METRICS = {"regression": "r2", "binary": "balanced_accuracy", "multiclass": "balanced_accuracy", "survival": "c_index"}


@dataclass(frozen=True)
class Leak:
    """A group whose guess alone scores at least ``THRESHOLD`` in ``metric`` on the validation rows."""

    group: str
    score: float
    metric: str


def group_scores(problem: Problem) -> np.ndarray | None:
    """Per group (float64 (n_groups,)): the score of its best candidate alone (see the module docstring).

    None when it cannot be measured: fewer than ``MIN_ROWS`` validation or sampled rows, or a
    validation target with no spread (one class, one value, no comparable pair).
    """
    metric = METRICS[problem.datafit.name]
    wanted = min(MAX_ROWS, SAMPLE_CELLS // max(problem.n_features, 1))
    if wanted < MIN_ROWS or len(problem.val) < MIN_ROWS:
        return None
    X, y = screen_sample(problem, wanted)
    gathered = distributed.all_gather_objects((X.cpu(), y.cpu()), problem.data.context)
    X_train = torch.cat([part[0] for part in gathered])
    y_train = torch.cat([part[1] for part in gathered]).double()
    if len(y_train) < MIN_ROWS:
        return None
    val = problem.val
    picked = torch.linspace(0, len(val) - 1, min(len(val), wanted), device=val.y.device).round().long()
    X_val, y_val = val.X.index_select(0, picked).cpu(), val.y.index_select(0, picked).cpu().double()
    score = _scorer(metric, y_val)
    targets = y_train.abs() if metric == "c_index" else y_train  # survival: the guess is a time (y = +-(1 + time))
    if score is None:
        return None
    train, owner = _candidates(X_train, problem.group_ids)
    held_out = _candidates(X_val, problem.group_ids)[0]
    n_candidates = len(owner)
    per_block = max(1, BLOCK_CELLS // (len(y_train) + len(y_val)))
    scores = np.empty(n_candidates)
    for start in range(0, n_candidates, per_block):
        block = slice(start, min(start + per_block, n_candidates))
        guesses = _neighbour_guesses(train[:, block].double(), targets, held_out[:, block].double(), metric != "balanced_accuracy")
        scores[block] = score(guesses)
    best = np.full(problem.n_groups, -np.inf)
    np.maximum.at(best, owner, scores)
    return best


def find_leaks(problem: Problem, group_names: list[str]) -> list[Leak] | None:
    """The groups whose score alone is at least ``THRESHOLD``, best first; None when not measured."""
    scores = group_scores(problem)
    if scores is None:
        return None
    metric = METRICS[problem.datafit.name]
    order = np.argsort(-scores, kind="stable")
    return [Leak(group_names[g], round(float(scores[g]), 4), metric) for g in order if scores[g] >= THRESHOLD]


def _candidates(X: torch.Tensor, group_ids: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The candidates of ``X``'s rows (float32 (rows, candidates)): for each group of two or more
    columns its columns' sum weighted by fixed random weights (a one-hot group's levels get distinct
    values), then every encoded column; and the group of each candidate."""
    weights = torch.from_numpy(np.random.default_rng(PROJECTION_SEED).standard_normal(group_ids.size))
    multi = np.flatnonzero(np.bincount(group_ids) > 1)
    projected = torch.zeros((len(X), int(group_ids.max(initial=-1)) + 1), dtype=torch.float64)
    projected.index_add_(1, torch.from_numpy(group_ids).long(), X.double() * weights)
    candidates = torch.cat([projected[:, torch.from_numpy(multi).long()].float(), X.float()], dim=1)
    return candidates, np.concatenate([multi, group_ids])


def _neighbour_guesses(train: torch.Tensor, y_train: torch.Tensor, held_out: torch.Tensor, interpolate: bool) -> torch.Tensor:
    """Per candidate and held-out row (candidates, held-out rows): the target read off the two training
    rows whose values of the candidate bracket the held-out row's, interpolated linearly between them
    (``interpolate``: a smooth function is then followed closely even where the sample is sparse), or
    that of the nearer of the two (class labels). A value seen in the sample takes the target of
    its first row in the sample's sorted order; one beyond the sample's range, the line through its
    last two rows (or the nearer end's label)."""
    ordered = torch.sort(train, dim=0, stable=True)
    values, rows = ordered.values.T.contiguous(), ordered.indices.T.contiguous()
    queries = held_out.T.contiguous()
    # beyond the sample's range the two rows at its end bracket the query, and the line through them extends
    right = torch.searchsorted(values, queries).clamp(1, values.shape[1] - 1)
    left = right - 1
    low, high = values.gather(1, left), values.gather(1, right)
    width = high - low
    # the share of the way from the left row to the right one (outside 0..1 beyond the range); 1 where they coincide
    toward_right = torch.where(width > 0, (queries - low) / width.clamp(min=1e-300), torch.ones_like(width))
    y_left, y_right = y_train[rows.gather(1, left)], y_train[rows.gather(1, right)]
    if interpolate:
        return y_left + toward_right * (y_right - y_left)
    return torch.where(toward_right >= 0.5, y_right, y_left)


def _scorer(metric: str, y: torch.Tensor) -> Callable[[torch.Tensor], np.ndarray] | None:
    """The task's score of guesses (candidates, rows) against ``y``, per candidate; None when ``y`` cannot rank a guess."""
    if metric == "r2":
        total = float(((y - y.mean()) ** 2).sum())
        if total <= 0:
            return None
        return lambda guesses: (1 - ((guesses - y) ** 2).sum(dim=1) / total).numpy()
    if metric == "balanced_accuracy":
        classes = torch.unique(y)
        if len(classes) < 2:
            return None
        members = [y == label for label in classes]
        return lambda guesses: torch.stack([(guesses[:, rows] == y[rows]).double().mean(dim=1) for rows in members]).mean(dim=0).numpy()
    # survival: y = +-(1 + time), the sign the event; a pair is comparable when its first row's event came first
    time, event = y.abs(), y > 0
    first, second = torch.nonzero(event[:, None] & (time[:, None] < time[None, :]), as_tuple=True)
    if len(first) == 0:
        return None
    if len(first) > MAX_PAIRS:
        keep = torch.randperm(len(first), generator=torch.Generator().manual_seed(PROJECTION_SEED))[:MAX_PAIRS]
        first, second = first[keep], second[keep]

    def concordance(guesses: torch.Tensor) -> np.ndarray:
        earlier, later = guesses[:, first], guesses[:, second]  # guessed times: the earlier event should have the shorter
        return ((earlier < later).double() + 0.5 * (earlier == later).double()).mean(dim=1).numpy()

    return concordance


class LeakageCheck:
    """Every fit: the groups that alone predict the target almost perfectly (``summary.json``'s ``leakage``)."""

    name = "leakage"
    kind = "measure"
    columns: tuple[str, ...] = ()  # a summary field, no column of the ranked tables

    def measure(self, fit: Fit, selection: Selection) -> Part:
        leaks = find_leaks(fit.problem, fit.group_names)
        return Part(self.name, summary={"leakage": None if leaks is None else [asdict(leak) for leak in leaks]})
