"""Shared fixtures: a seeded rng, a fixed torch seed, and a tiny table with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect._synthetic import make_friedman1


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _torch_seed() -> None:
    # one thread, as glselect itself uses for small tables: results then do not depend on test order
    torch.set_num_threads(1)
    torch.manual_seed(0)


def make_linear_table() -> pd.DataFrame:
    """300 rows: y depends on a, b (strongly) and c (weakly); n1..n5 are noise."""
    generator = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({name: generator.standard_normal(n) for name in ["a", "b", "c", "n1", "n2", "n3", "n4", "n5"]})
    df["y"] = 3 * df["a"] - 2 * df["b"] + 0.5 * df["c"] + 0.5 * generator.standard_normal(n)
    return df


@pytest.fixture
def linear_table() -> pd.DataFrame:
    return make_linear_table()


@pytest.fixture
def tiny_friedman() -> pd.DataFrame:
    return make_friedman1(600, 12, noise=0.5, seed=3)


@pytest.fixture
def write_table(tmp_path: Path):
    """Save a DataFrame as CSV (or Parquet, by suffix) under tmp_path and return its path."""

    def _write(df: pd.DataFrame, name: str = "data.csv") -> Path:
        path = tmp_path / name
        if name.endswith(".parquet"):
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        return path

    return _write
