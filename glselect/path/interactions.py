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

import numpy as np
import torch

from glselect import distributed
from glselect.model.datafits import Datafit
from glselect.model.mlp import GroupLassoMLP
from glselect.path.moments import MAX_SAMPLE_ROWS, MIN_SAMPLE_ROWS, bonferroni_bound, column_chunks, sample_means, squared_t

SCREEN_MACS = 2e10  # multiply-adds per screen: about a second on one core
MIN_SCREEN_ROWS = MIN_SAMPLE_ROWS  # fewer sampled rows than this: no screen
MAX_SCREEN_ROWS = MAX_SAMPLE_ROWS  # rows sampled at most
MAX_SCREEN_BATCHES = 64  # a stream's mini-batches read at most
BLOCK_FLOATS = 1 << 24  # the (block x p) products are computed this many floats at a time
UNITS_PER_PAIR = 4  # ReLU(+-(x_i + x_j)), ReLU(+-(x_i - x_j))
SEEDED_SHARE = 2  # at most 1 / SEEDED_SHARE of the first hidden layer's units are given to pairs


@dataclass(frozen=True)
class InteractingPair:
    """Two encoded columns (of the problem screened) whose product moves the target."""

    first: int
    second: int
    t: float  # the largest |t| over the target's outputs


def screen_pairs(
    rows: tuple[torch.Tensor, torch.Tensor],
    group_ids: np.ndarray,
    datafit: Datafit,
    max_pairs: int,
    context: distributed.Context,
) -> tuple[InteractingPair, ...]:
    """The at most ``max_pairs`` strongest pairs beyond the Bonferroni bound, strongest first.

    ``rows``: this rank's sample of training rows (encoded X, target y), already cut to
    ``screen_rows``; every rank must call this (the sums are all-reduced). No pairs for a datafit
    whose outputs the screen cannot read (``Datafit.pair_screen``: survival).
    """
    X, y = rows
    if not datafit.pair_screen or max_pairs <= 0:
        return ()
    n_features = X.shape[1]
    R = datafit.target_outputs(y)
    chunks = column_chunks(n_features, len(X), BLOCK_FLOATS)
    n_rows, means, output_means = sample_means(X, R, chunks, context)
    n_pairs = R.shape[1] * n_features * (n_features - 1) / 2  # the tests the bound is corrected for
    if n_rows < MIN_SCREEN_ROWS or n_pairs < 1:
        return ()
    # centred in float64, multiplied in float32 (a t statistic needs two or three digits), a few
    # columns at a time: a float64 copy of the whole sample would double what the screen holds
    X = torch.cat([(X[:, chunk].double() - means[chunk]).float() for chunk in chunks], dim=1)
    R = (R - output_means).float()
    bound = bonferroni_bound(n_pairs)  # any pair of independent noise columns taken, over all pairs
    group_of = torch.as_tensor(group_ids, device=X.device)
    shared_groups = np.unique(group_ids).size < n_features
    squares = X * X
    block = max(1, min(n_features, BLOCK_FLOATS // max(n_features, 1)))
    found: dict[tuple[int, int], float] = {}
    for start in range(0, n_features, block):
        stop = min(n_features, start + block)
        # rows: the block's columns i; columns: every j >= start (each pair once, below)
        t2_max: torch.Tensor | None = None
        for k in range(R.shape[1]):
            r = R[:, k : k + 1]
            sums = X[:, start:stop].T @ (r * X[:, start:])
            square_sums = squares[:, start:stop].T @ ((r * r) * squares[:, start:])
            sums = distributed.all_reduce_sum(sums.cpu(), context).to(X.device)
            square_sums = distributed.all_reduce_sum(square_sums.cpu(), context).to(X.device)
            t2 = squared_t(sums, square_sums, n_rows)  # a constant column's product counts as t = 0
            t2_max = t2 if t2_max is None else torch.maximum(t2_max, t2)
        assert t2_max is not None
        t2_max[:, : stop - start].triu_(1)  # j > i within the block's own columns
        if shared_groups:
            # never two columns of one group: the levels of one categorical column "interact"
            # through the column itself, and the path keeps or drops a group whole anyway
            t2_max.masked_fill_(group_of[start:stop, None] == group_of[None, start:], 0.0)
        width = n_features - start
        strongest = torch.topk(t2_max.flatten(), min(max_pairs, t2_max.numel()))
        for value, flat in zip(strongest.values.tolist(), strongest.indices.tolist()):
            if value > bound * bound:
                found[(start + flat // width, start + flat % width)] = math.sqrt(value)
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))[:max_pairs]
    return tuple(InteractingPair(first, second, t) for (first, second), t in ranked)


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
