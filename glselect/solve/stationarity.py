"""How close a run at a ReLU network's kinks is to stationary: the smallest convex combination of
the gradient mappings at its last few iterates (Goldstein's epsilon-subdifferential, as gradient
sampling methods measure it).

A hidden ReLU unit makes the loss piecewise smooth: where a training row sits on a unit's kink the
gradient jumps by that row's share, about ``|x| |v| / n``. A minimum often lies on such kinks, and
there the gradient mapping at any single point stays at the size of a jump however long the solver
runs (measured on a 1,200-row, 4-class problem: 0.03 to 0.05 of lambda for 1,000 iterations, also
in float64 with an exact line search, whose step then fell to 1e-9). What vanishes at such a point
is the distance from zero to the convex hull of the gradient mappings of nearby points: the
iterates on either side of the kink pull in opposite directions and a combination cancels.
"""

from __future__ import annotations

import numpy as np

# gradient mappings kept (the last accepted iterates of one run) and the projected-gradient
# iterations that find the smallest combination of them (accelerated; converges in a few dozen for
# so few points)
SAMPLES = 8
MIN_NORM_ITERS = 60


def min_norm_weights(gram: np.ndarray) -> np.ndarray:
    """The weights ``a`` on the simplex minimising ``a @ gram @ a``: the smallest point of the convex
    hull of the vectors whose Gram matrix is ``gram`` (accelerated projected gradient)."""
    k = gram.shape[0]
    scale = float(np.trace(gram)) or 1.0
    gram = gram / scale
    lipschitz = float(np.linalg.eigvalsh(gram)[-1]) or 1.0
    weights = np.full(k, 1.0 / k)
    previous, momentum = weights, 1.0
    for _ in range(MIN_NORM_ITERS):
        next_momentum = (1.0 + (1.0 + 4.0 * momentum * momentum) ** 0.5) / 2.0
        point = weights + (momentum - 1.0) / next_momentum * (weights - previous)
        previous, weights = weights, _onto_simplex(point - gram @ point / lipschitz)
        momentum = next_momentum
    return weights


def _onto_simplex(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection of ``v`` onto the probability simplex."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    index = np.arange(1, v.size + 1)
    rho = index[u - cumulative / index > 0][-1]
    return np.maximum(v - cumulative[rho - 1] / rho, 0.0)
