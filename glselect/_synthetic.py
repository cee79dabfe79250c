"""Seeded generators of tables with a known answer, for tests, docs and ``sample_data/``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_friedman1(n_samples: int, n_features: int = 10, noise: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Friedman #1: ``y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise``.

    Columns ``x0 .. x{n_features-1}`` are uniform on [0, 1]; only x0..x4 matter.
    """
    if n_features < 5:
        raise ValueError("Friedman #1 needs at least 5 features")
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n_samples, n_features))
    y = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
        + noise * rng.standard_normal(n_samples)
    )
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    df["y"] = y
    return df
