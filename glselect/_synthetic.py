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


def make_mixed_table(n_samples: int = 600, seed: int = 0) -> pd.DataFrame:
    """A messy table with a known answer: ``y`` depends on the categorical ``colour`` and on ``dose``.

    Also present: a noise number with missing cells, a 40-level noise category, a boolean with
    missing cells, an all-unique ID, a date, and a constant column.
    """
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", "amber"], size=n_samples)
    dose = rng.normal(size=n_samples)
    noise = rng.normal(size=n_samples)
    noise[rng.random(n_samples) < 0.15] = np.nan
    flag = pd.array(rng.random(n_samples) < 0.5, dtype="boolean")
    flag[rng.random(n_samples) < 0.1] = pd.NA
    effect = pd.Series(colour).map({"red": 2.0, "green": -1.5, "blue": 0.5, "amber": -1.0}).to_numpy()
    return pd.DataFrame(
        {
            "customer_id": [f"C{index:06d}" for index in rng.permutation(n_samples)],
            "signup": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n_samples), unit="D"),
            "colour": colour,
            "city": rng.choice([f"city_{k:02d}" for k in range(40)], size=n_samples),
            "dose": dose,
            "noise": noise,
            "flag": flag,
            "batch": "B1",
            "y": effect + 0.8 * dose + 0.3 * rng.normal(size=n_samples),
        }
    )


def make_survival(
    n_samples: int, n_features: int = 8, n_true: int = 3, *, nonlinear: bool = False, censoring: float = 0.3, seed: int = 0
) -> pd.DataFrame:
    """Censored times with exponential hazards ``h(t | x) = exp(f(x))`` that depend on ``x0 .. x{n_true-1}`` only.

    Linear: ``f(x) = sum_j b_j x_j`` with ``b = 1, -0.9, 0.8, -0.7, 0.6, ...`` (alternating signs, shrinking).
    Non-linear (``n_true`` >= 3): ``f(x) = 1.2 x0 x1 + 0.8 (x2^2 - 1)``, plus ``sin(2 x3)`` and the linear
    terms above for any further true columns: effects a linear Cox model misses or sees only in part.
    Columns are standard normal. Censoring times are exponential, their rate set so that about
    ``censoring`` of the rows are censored. Returns the ``x`` columns, ``time`` and ``event`` (1 or 0).
    """
    if n_true > n_features or (nonlinear and n_true < 3):
        raise ValueError("need n_true <= n_features, and n_true >= 3 for the non-linear hazard")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    coefficients = np.array([(1.0 - 0.1 * j) * (-1) ** j for j in range(n_true)])
    if nonlinear:
        log_hazard = 1.2 * X[:, 0] * X[:, 1] + 0.8 * (X[:, 2] ** 2 - 1)
        if n_true > 3:
            log_hazard += np.sin(2 * X[:, 3]) + X[:, 4:n_true] @ coefficients[4:]
    else:
        log_hazard = X[:, :n_true] @ coefficients
    event_time = rng.exponential(size=n_samples) / np.exp(log_hazard)
    unit = rng.exponential(size=n_samples)
    # the censoring rate that censors about the asked share of these rows, by bisection on its logarithm
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(unit / np.exp(middle) < event_time) < censoring:
            low = middle
        else:
            high = middle
    censor_time = unit / np.exp((low + high) / 2)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    df["time"] = np.minimum(event_time, censor_time)
    df["event"] = (event_time <= censor_time).astype(np.int64)
    return df
