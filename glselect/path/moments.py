"""First moments of a sample of training rows, and the t statistic the screens read from them.

Both the pair screen (``interactions.py``) and the all-relevant gate (``select/relevant.py``)
measure a column's association with the target's outputs on centred data: they read the same
outputs (``Datafit.target_outputs``: the value, each class's indicator, a survival martingale
residual), the same means
summed over every rank's rows, the same column slicing that keeps a float64 copy of a wide
sample from being made at once, the same t statistic of a mean product, and the same
Bonferroni bound over the tests they make.
"""

from __future__ import annotations

from statistics import NormalDist

import torch

from glselect import distributed

FAMILY_ALPHA = 0.01  # family-wise chance that a screen takes anything on a table of pure noise
MIN_SAMPLE_ROWS = 100  # fewer sampled rows than this: no screen (too few for a t statistic to mean much)
MAX_SAMPLE_ROWS = 65_536  # rows a screen samples at most
# (no-spread tolerance, floor of the spread) per dtype of the sums: a product whose spread is
# below tolerance x its square sum (a constant column) has t = 0; the float32 pair screen cannot
# resolve as small a spread as the float64 gate
SPREAD_TOLERANCE = {torch.float32: (1e-6, 1e-30), torch.float64: (1e-9, 1e-300)}


def bonferroni_bound(n_tests: float) -> float:
    """The |t| a test must pass so that ``n_tests`` two-sided tests take anything by chance with
    probability at most ``FAMILY_ALPHA`` (normal approximation)."""
    return -NormalDist().inv_cdf(FAMILY_ALPHA / (2 * n_tests))


def squared_t(sums: torch.Tensor, square_sums: torch.Tensor, n_rows: float) -> torch.Tensor:
    """t^2 of the mean of a product from its sum and its sum of squares over ``n_rows`` rows:
    ``t^2 = n mean^2 / variance = sums^2 / (square_sums - sums^2 / n)``, 0 for a product with no spread."""
    tolerance, floor = SPREAD_TOLERANCE[sums.dtype]
    squared = sums.square()
    spread = square_sums - squared / n_rows
    return torch.where(spread > tolerance * square_sums, squared / spread.clamp_min(floor), torch.zeros_like(sums))


def column_chunks(n_features: int, n_rows: int, cells: int) -> list[slice]:
    """Column slices of about ``cells`` cells of an ``n_rows``-row sample each."""
    width = max(1, cells // max(n_rows, 1))
    return [slice(start, min(n_features, start + width)) for start in range(0, n_features, width)]


def sample_means(
    X: torch.Tensor, R: torch.Tensor, chunks: list[slice], context: distributed.Context
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Rows over every rank, and the float64 means of ``X``'s columns (on ``X``'s device) and of
    ``R``'s outputs (on ``R``'s device) over them; every rank must call this."""
    column_sums = torch.cat([X[:, chunk].double().sum(0) for chunk in chunks]).cpu()
    firsts = torch.cat([torch.tensor([float(len(X))], dtype=torch.float64), column_sums, R.sum(0).cpu()])
    firsts = distributed.all_reduce_sum(firsts, context)
    n_rows = float(firsts[0])
    n_features = X.shape[1]
    scale = max(n_rows, 1.0)
    return n_rows, (firsts[1 : 1 + n_features] / scale).to(X.device), (firsts[1 + n_features :] / scale).to(R.device)
