"""Pairs of columns that act on the target only together, found before training and given units.

Why: a pure interaction (an XOR of two signs, a product) has no first-order signal, so a network
started at random among thousands of columns fits noise long before it finds the pair, and the
path, which can only keep what the dense model uses, then ranks the pair with the noise
(measured: XOR among 2,000 columns on 4,000 rows, the empty model in every seed). The pair does
show in a second moment: for a centred target r, ``mean(r * x_i * x_j)`` is far from zero for an
interacting pair and about zero for independent noise. So each pair of columns from different
groups gets a t statistic (the mean over rows of ``r * x_i * x_j``, centred columns, over its
standard error), and the pairs beyond a Bonferroni bound are given a few hidden units of the
dense network's first layer (reading ``x_i + x_j`` and ``x_i - x_j`` with both signs), from which
a ReLU network forms the product at once. Everything else stays as initialised; the path then
keeps or drops the pair like any other group, so a chance pair costs nothing but a few units.

Cost: two products of ``rows x p^2 / 2`` multiply-adds per target output over a sample of the
training rows, bounded by ``SCREEN_MACS`` (rows are cut to fit; below ``MIN_SCREEN_ROWS`` rows the
screen is skipped: it could not tell a pair from chance among that many). The sample is held in
float32 three times (columns, centred, squared): at most ``MAX_SCREEN_ROWS`` rows, and fewer as
columns grow (about 300 MB at the worst width, some 400 columns). A stream reads up to
``MAX_SCREEN_BATCHES`` mini-batches of its own; under torchrun every rank sums its share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from glselect import distributed
from glselect.model.datafits import Datafit
from glselect.model.mlp import GroupLassoMLP
from glselect.path.moments import (
    FAMILY_ALPHA,
    MAX_SAMPLE_ROWS,
    MIN_SAMPLE_ROWS,
    SPREAD_TOLERANCE,
    bonferroni_bound,
    column_chunks,
    sample_means,
    squared_t,
)

SCREEN_MACS = 2e10  # multiply-adds per screen: about a second on one core
MIN_SCREEN_ROWS = MIN_SAMPLE_ROWS  # fewer sampled rows than this: no screen
MAX_SCREEN_ROWS = MAX_SAMPLE_ROWS  # rows sampled at most
MAX_SCREEN_BATCHES = 64  # a stream's mini-batches read at most
BLOCK_FLOATS = 1 << 24  # the (block x p) products are computed this many floats at a time
UNITS_PER_PAIR = 4  # ReLU(+-(x_i + x_j)), ReLU(+-(x_i - x_j))
PRE_TEST_MARGIN = 0.99  # the division-free pre-test's slack: far beyond float32 rounding
DUPLICATE_CORRELATION = 0.95  # |corr| above which two columns are one measurement twice, not a pair
SEEDED_SHARE = 2  # at most 1 / SEEDED_SHARE of the first hidden layer's units are given to pairs


@dataclass(frozen=True)
class InteractingPair:
    """Two encoded columns (of the problem screened) whose product moves the target."""

    first: int
    second: int
    t: float  # the largest |t| over the target's outputs


@dataclass(frozen=True)
class DuplicatePair:
    """Two encoded columns beyond the bound that are near-copies of each other: no units, only named."""

    first: int
    second: int
    correlation: float  # their Pearson correlation on the screened rows, |r| > DUPLICATE_CORRELATION
    t: float


@dataclass(frozen=True)
class PairScreen:
    """What a screen found: the pairs to give units, strongest first, and the near-duplicates it passed over."""

    pairs: tuple[InteractingPair, ...] = ()
    duplicates: tuple[DuplicatePair, ...] = ()


def screen_pairs(
    rows: tuple[torch.Tensor, torch.Tensor],
    group_ids: np.ndarray,
    datafit: Datafit,
    max_pairs: int,
    context: distributed.Context,
    categorical_ids: np.ndarray | None = None,
) -> PairScreen:
    """The at most ``max_pairs`` strongest pairs beyond the Bonferroni bound, strongest first.

    ``rows``: this rank's sample of training rows (encoded X, target y), already cut to
    ``screen_rows``; every rank must call this (the sums are all-reduced). No pairs for a datafit
    whose outputs the screen cannot read (``Datafit.pair_screen``: survival).

    Two kinds of pair beyond the bound are not given units:

    - near-copies (``|corr| > DUPLICATE_CORRELATION``): ``r * x_i * x_j`` of two copies of one
      measurement is ``r * x_i^2``, which moves whenever the target bends with that measurement;
      they are returned as ``duplicates`` (at most ``max_pairs``, strongest first);
    - a one-hot level of a categorical column (``categorical_ids[j]``: the categorical's index, -1
      for any other column) with another column, unless the categorical as a whole passes
      ``categorical_gate`` against that column: a rare level's t is far from normal, and among
      hundreds of levels one reaches t 9 by chance.
    """
    X, y = rows
    if not datafit.pair_screen or max_pairs <= 0:
        return PairScreen()
    n_features = X.shape[1]
    R = datafit.target_outputs(y)
    chunks = column_chunks(n_features, len(X), BLOCK_FLOATS)
    n_rows, means, output_means = sample_means(X, R, chunks, context)
    n_pairs = R.shape[1] * n_features * (n_features - 1) / 2  # the tests the bound is corrected for
    if n_rows < MIN_SCREEN_ROWS or n_pairs < 1:
        return PairScreen()
    # centred in float64, multiplied in float32 (a t statistic needs two or three digits), a few
    # columns at a time: a float64 copy of the whole sample would double what the screen holds
    X = torch.cat([(X[:, chunk].double() - means[chunk]).float() for chunk in chunks], dim=1)
    R = (R - output_means).float()
    bound = bonferroni_bound(n_pairs)  # any pair of independent noise columns taken, over all pairs
    group_of = torch.as_tensor(group_ids, device=X.device)
    shared_groups = np.unique(group_ids).size < n_features
    squares = X * X
    norms = distributed.all_reduce_sum(squares.sum(0).double().cpu(), context).to(X.device).sqrt()
    has_levels = categorical_ids is not None and bool((np.asarray(categorical_ids) >= 0).any())
    gate = categorical_gate(X, R, categorical_ids, n_rows, context) if categorical_ids is not None and has_levels else None
    block = max(1, min(n_features, BLOCK_FLOATS // max(n_features, 1)))
    found: dict[tuple[int, int], float] = {}
    copies: dict[tuple[int, int], tuple[float, float]] = {}
    for start in range(0, n_features, block):
        stop = min(n_features, start + block)
        first, second, t2 = _beyond_bound(X, squares, R, start, stop, n_rows, bound, context)
        # each pair once (j > i); never two columns of one group: the levels of one categorical
        # column "interact" through the column itself, and the path keeps or drops a group whole anyway
        keep = second > first
        if shared_groups:
            keep &= group_of[first] != group_of[second]
        if gate is not None:
            keep &= gate.allows(first, second)
        first, second, t2 = first[keep], second[keep], t2[keep]
        # the correlation of the pairs beyond the bound alone (every rank holds the same pairs)
        gram = distributed.all_reduce_sum(_products(X, first, second).cpu(), context).to(X.device)
        correlation = gram / (norms[first] * norms[second]).clamp_min(1e-300)
        is_copy = correlation.abs() > DUPLICATE_CORRELATION
        for i, j, r, value in zip(first[is_copy].tolist(), second[is_copy].tolist(), correlation[is_copy].tolist(), t2[is_copy].tolist()):
            copies[(i, j)] = (r, math.sqrt(value))
        first, second, t2 = first[~is_copy], second[~is_copy], t2[~is_copy]
        # the block's strongest max_pairs, ties in index order
        values = t2.tolist()
        for k in sorted(range(len(values)), key=lambda k: -values[k])[:max_pairs]:
            found[(int(first[k]), int(second[k]))] = math.sqrt(values[k])
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    if gate is not None:
        # one pair per categorical and column: the units of its strongest level let the network
        # read the interaction, and the path keeps or drops the categorical whole anyway
        unit = [-1 - c if c >= 0 else j for j, c in enumerate(gate.unit_of.tolist())]  # a categorical's levels: one key
        seen: set[tuple[int, int]] = set()
        kept = []
        for (i, j), t in ranked:
            if (unit[i], unit[j]) not in seen:
                seen.add((unit[i], unit[j]))
                kept.append(((i, j), t))
        ranked = kept
    ranked = ranked[:max_pairs]
    duplicates = sorted(copies.items(), key=lambda item: (-item[1][1], item[0]))[:max_pairs]
    return PairScreen(
        tuple(InteractingPair(i, j, t) for (i, j), t in ranked),
        tuple(DuplicatePair(i, j, correlation, t) for (i, j), (correlation, t) in duplicates),
    )


def _beyond_bound(
    X: torch.Tensor,
    squares: torch.Tensor,
    R: torch.Tensor,
    start: int,
    stop: int,
    n_rows: float,
    bound: float,
    context: distributed.Context,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pairs (i in ``start:stop``, j >= ``start``) whose |t| passes ``bound`` for some output of
    ``R``: their columns ``(first, second)`` (int64) and their largest t^2 over the outputs, in
    order of (first, second).

    Only those pairs' t^2 is computed. ``t^2 = s^2 / (q - s^2 / n) > b^2`` is
    ``s^2 (1 + b^2 / n) > b^2 q`` where the spread is positive, a test without a division; taken
    ``PRE_TEST_MARGIN`` looser over the whole block, it leaves the few pairs whose exact t^2
    (``squared_t``, the statistic the screen always read) is then taken. On wide tables the
    elementwise passes over every pair's t^2 were most of the screen's time (200 x 10,000: 5 s).
    """
    width = X.shape[1] - start
    loose = PRE_TEST_MARGIN * bound * bound / (1 + bound * bound / n_rows)
    flats, values = [], []
    for k in range(R.shape[1]):
        r = R[:, k : k + 1]
        sums = X[:, start:stop].T @ (r * X[:, start:])
        square_sums = squares[:, start:stop].T @ ((r * r) * squares[:, start:])
        sums = distributed.all_reduce_sum(sums.cpu(), context).to(X.device).flatten()
        square_sums = distributed.all_reduce_sum(square_sums.cpu(), context).to(X.device).flatten()
        flat = torch.nonzero(sums * sums > loose * square_sums).flatten()
        t2 = squared_t(sums[flat], square_sums[flat], n_rows)  # a constant column's product counts as t = 0
        passed = t2 > bound * bound
        flats.append(flat[passed])
        values.append(t2[passed])
    flat, inverse = torch.unique(torch.cat(flats), return_inverse=True)
    t2_max = torch.zeros(flat.shape, dtype=X.dtype, device=X.device).scatter_reduce_(0, inverse, torch.cat(values), reduce="amax")
    return start + torch.div(flat, width, rounding_mode="floor"), start + flat % width, t2_max


def _products(X: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """float64 (pairs,): the sum over ``X``'s rows of ``X[:, first[k]] * X[:, second[k]]``, about
    ``BLOCK_FLOATS`` cells at a time (a table of many copies can put millions of pairs past the bound)."""
    step = max(1, BLOCK_FLOATS // max(len(X), 1))
    parts = [(X[:, first[at : at + step]] * X[:, second[at : at + step]]).sum(0).double() for at in range(0, first.numel(), step)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64, device=X.device)


@dataclass(frozen=True)
class CategoricalGate:
    """Which (categorical, column) pairs passed the group test: ``passes[c, j]`` for the categorical
    ``unit_of[i] = c`` (-1: column i is no level) and the encoded column j."""

    unit_of: torch.Tensor  # int64 (n_features,)
    passes: torch.Tensor  # bool (n_categoricals, n_features)

    def allows(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """bool, shape of ``first``: whether the pair (``first[k]``, ``second[k]``) of encoded columns may be taken."""
        first_unit, second_unit = self.unit_of[first], self.unit_of[second]
        by_first = torch.where(first_unit >= 0, self.passes[first_unit.clamp_min(0), second], True)
        by_second = torch.where(second_unit >= 0, self.passes[second_unit.clamp_min(0), first], True)
        return by_first & by_second


def categorical_gate(
    X: torch.Tensor, R: torch.Tensor, categorical_ids: np.ndarray, n_rows: float, context: distributed.Context
) -> CategoricalGate:
    """The group test of each categorical column against every encoded column, on centred ``X`` and ``R``.

    A categorical splits the rows into cells (one per level, and one for rows with none of its
    levels). Whether column j interacts with it is whether the mean of ``z = r * x_j`` differs
    between cells: a one-way analysis of variance of ``z`` over the cells, its F statistic on
    (cells - 1, rows - cells) degrees of freedom beyond the bound at ``FAMILY_ALPHA``, Bonferroni
    over every categorical, column and output. The variance within cells is pooled over all rows,
    so a level of a few rows weighs as little as it should; the per-level t of the pair screen
    does not, and among hundreds of levels one of them reaches t 9 by chance. Every rank must call
    this (the sums are all-reduced).
    """
    ids = torch.as_tensor(np.asarray(categorical_ids), dtype=torch.int64, device=X.device)
    present = torch.unique(ids[ids >= 0])
    unit_of = torch.full_like(ids, -1)
    n_features = X.shape[1]
    cells, cell_unit = [], []
    for unit, categorical in enumerate(present.tolist()):
        columns = (ids == categorical).nonzero().flatten()
        unit_of[columns] = unit
        # a centred, standardised 0/1 level is positive exactly on its rows
        levels = (X[:, columns] > 0).float()
        cells += [levels, (levels.sum(1, keepdim=True) == 0).float()]
        cell_unit += [unit] * (len(columns) + 1)
    in_cell = torch.cat(cells, dim=1)
    cell_of = torch.as_tensor(cell_unit, device=X.device)
    counts = distributed.all_reduce_sum(in_cell.sum(0).double().cpu(), context).to(X.device)
    n_units = present.numel()
    n_cells = torch.zeros(n_units, dtype=torch.float64, device=X.device).index_add_(0, cell_of, (counts > 0).double())
    df_between, df_within = (n_cells - 1)[:, None], (n_rows - n_cells)[:, None]
    z_bound = -NormalDist().inv_cdf(FAMILY_ALPHA / (R.shape[1] * n_units * n_features))
    passes = torch.zeros((n_units, n_features), dtype=torch.bool, device=X.device)
    # the same column slices on every rank (their sums are all-reduced slice by slice), whatever its rows
    chunks = column_chunks(n_features, MAX_SCREEN_ROWS, BLOCK_FLOATS)
    for k in range(R.shape[1]):
        r = R[:, k : k + 1]
        for chunk in chunks:
            Z = r * X[:, chunk]
            sums = torch.cat([in_cell.T @ Z, Z.sum(0, keepdim=True), (Z * Z).sum(0, keepdim=True)]).double()
            sums = distributed.all_reduce_sum(sums.cpu(), context).to(X.device)
            cell_sums, total, total_squares = sums[:-2], sums[-2], sums[-1]
            offset = total.square() / n_rows
            cell_squares = torch.where(counts[:, None] > 0, cell_sums.square() / counts.clamp_min(1)[:, None], 0.0)
            between = torch.zeros((n_units, cell_sums.shape[1]), dtype=torch.float64, device=X.device).index_add_(0, cell_of, cell_squares)
            between = (between - offset).clamp_min(0.0)
            within = (total_squares - offset - between).clamp_min(0.0)
            spread = total_squares - offset
            tested = (df_between >= 1) & (df_within >= 1) & (within > SPREAD_TOLERANCE[torch.float32][0] * spread)
            F = (between / df_between.clamp_min(1)) / (within / df_within.clamp_min(1)).clamp_min(1e-300)
            passes[:, chunk] |= tested & (f_to_normal(F, df_between, df_within) > z_bound)
    return CategoricalGate(unit_of, passes)


def f_to_normal(F: torch.Tensor, df1: torch.Tensor, df2: torch.Tensor) -> torch.Tensor:
    """The standard normal deviate of an F statistic's upper tail (Paulson's cube-root approximation)."""
    a, b = 2 / (9 * df1.clamp_min(1)), 2 / (9 * df2.clamp_min(1))
    u = F.clamp_min(0.0) ** (1 / 3)
    return ((1 - b) * u - (1 - a)) / torch.sqrt(a + b * u * u)


def screen_rows(n_features: int, n_outputs: int) -> int:
    """Rows a screen samples so that it costs at most ``SCREEN_MACS`` (at most ``MAX_SCREEN_ROWS``)."""
    per_row = 2 * n_outputs * max(n_features, 1) ** 2
    return int(min(MAX_SCREEN_ROWS, SCREEN_MACS // per_row))


def max_pairs_for(model: GroupLassoMLP) -> int:
    """Pairs the first hidden layer has room for (none for the linear model)."""
    if not model.hidden:
        return 0
    return model.hidden[0] // SEEDED_SHARE // UNITS_PER_PAIR


def give_units(model: GroupLassoMLP, pairs: tuple[InteractingPair, ...]) -> None:
    """Point ``UNITS_PER_PAIR`` first-layer units at each pair, in place.

    Each such unit reads only its pair, with the first layer's mean row norm (so no unit starts
    louder than the random ones); the rest of the network is left as initialised.
    """
    if not pairs:
        return
    weight = model.first_weight
    with torch.no_grad():
        scale = float(weight.norm(dim=1).mean()) / math.sqrt(2.0)
        unit = 0
        for pair in pairs[: max_pairs_for(model)]:
            for sign_first, sign_second in ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)):
                weight[unit].zero_()
                weight[unit, pair.first] = sign_first * scale
                weight[unit, pair.second] = sign_second * scale
                unit += 1
