"""Shared fixtures and helpers: a seeded rng, a fixed torch seed, a tiny table with a known answer, and the
helpers more than one test file uses (test files import from here, never from each other)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from glselect._synthetic import make_friedman1
from glselect.cli.app import app
from glselect.config import RunConfig
from glselect.data.encoder import Encoder
from glselect.model.prox import group_norms
from glselect.path.walk import LambdaPath, PathStep


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


# the command line: a fit through CliRunner, the exact message of bad input, one sample value per option

# --tol 0.1: each step solved to a tenth of lambda, not the default hundredth (about half the path's
# iterations on these tables); the tests that are about the solve's exactness keep the default
FAST = ["--hidden", "8", "--max-iters-per-lambda", "40", "--tol", "0.1", "--quiet"]
ARTIFACTS = {"summary.json", "importances.csv", "groups.csv", "path.csv", "path_norms.parquet", "model.safetensors", "model.json"}


def invoke(*args: str):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_user_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == f"error: {message}"


# One value per option, none of them the default: (command-line arguments, the config value they must give).
# Adding an option to glselect.options.OPTIONS needs a line here, and then the CLI and the selector are tested with it.
SAMPLES: dict[str, tuple[list[str], object]] = {
    "target": (["-t", "label"], "label"),
    "time": (["--time", "t"], "t"),
    "event": (["--event-column", "e"], "e"),
    "groups": (["--groups", "map.csv"], Path("map.csv")),
    "out": (["-o", "elsewhere"], Path("elsewhere")),
    "task": (["--task", "binary"], "binary"),
    "features": (["--features", "a", "--features", "b"], ("a", "b")),
    "drop": (["--drop", "d", "--exclude", "e"], ("d", "e")),
    "categorical": (["--categorical", "c"], ("c",)),
    "sep": (["--sep", "tab"], "\t"),
    "decimal": (["--decimal", ","], ","),
    "max_levels": (["--max-levels", "5"], 5),
    "hidden": (["--hidden", "8,4"], (8, 4)),
    "neuron_penalty": (["--neuron-penalty", "0.01"], 0.01),
    "l1_ratio": (["--l1-ratio", "0.5"], 0.5),
    "screen_pairs": (["--no-screen-pairs"], False),
    "rule": (["--rule", "min"], "min"),
    "max_features": (["--max-features", "2"], 2),
    "max_correlation": (["--max-correlation", "0.9"], 0.9),
    "goal": (["--goal", "all-relevant"], "all-relevant"),
    "cv": (["--cv", "3"], 3),
    "confirm": (["--confirm", "2"], 2.0),
    "fdr": (["--fdr", "0.1"], 0.1),
    "knockoff_draws": (["--knockoff-draws", "3"], 3),
    "fdr_offset": (["--fdr-offset", "0"], 0),
    "class_weight": (["--class-weight", "balanced"], "balanced"),
    "permutation_repeats": (["--permutation-repeats", "2"], 2),
    "stability": (["--stability", "2"], 2),
    "stability_threshold": (["--stability-threshold", "0.9"], 0.9),
    "stability_q": (["--stability-q", "3"], 3),
    "min_features": (["--min-features", "1"], 1),
    "lambda_step": (["--lambda-step", "1.5"], 1.5),
    "lambda_start": (["--lambda-start", "0.01"], 0.01),
    "max_iters_per_lambda": (["--max-iters-per-lambda", "20"], 20),
    "max_steps": (["--max-steps", "30"], 30),
    "tol": (["--tol", "0.05"], 0.05),
    "relax_iters": (["--relax-iters", "20"], 20),
    "max_iters": (["--max-iters", "200"], 200),
    "val_fraction": (["--val-fraction", "0.25"], 0.25),
    "test_fraction": (["--test-fraction", "0.15"], 0.15),
    "seed": (["--seed", "7"], 7),
    "threads": (["--threads", "2"], 2),
    "force": (["--force"], True),
    "resume": (["--resume"], True),
    "device": (["--device", "cpu"], "cpu"),
    "stream": (["--no-stream"], False),
    "memory_budget": (["--memory-budget", "2GB"], 2 << 30),
    "batch_size": (["--batch-size", "64"], 64),
    "learning_rate": (["--learning-rate", "0.05"], 0.05),
    "epochs_per_lambda": (["--epochs-per-lambda", "0.5"], 0.5),
    "max_epochs": (["--max-epochs", "2"], 2.0),
}


def config_value(config: RunConfig, field: str) -> object:
    value: object = config
    for name in field.split("."):
        value = getattr(value, name)
    return value


# streaming: a Parquet file, a table whose answer is plain, and the fit options that keep a streamed fit short

STREAM_FAST = ["--batch-size", "128", "--learning-rate", "0.02", "--max-epochs", "2", "--max-steps", "25"]


def write_parquet(df: pd.DataFrame, path: Path, row_group_size: int = 500) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size)
    return path


def strong_linear_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """y depends on a, b, c; n1..n5 are noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "c", "n1", "n2", "n3", "n4", "n5"]})
    df["y"] = 3 * df["a"] - 2 * df["b"] + 1.5 * df["c"] + 0.5 * rng.standard_normal(n)
    return df


# encoders: equal documents, numbers to 1e-9


def _split_numbers(value, numbers: list):
    """``value`` with every float replaced by None, collecting the floats in order."""
    if isinstance(value, float):
        numbers.append(value)
        return None
    if isinstance(value, dict):
        return {key: _split_numbers(item, numbers) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_numbers(item, numbers) for item in value]
    return value


def assert_rank_follows_the_shown_keys(table: pd.DataFrame) -> None:
    """``rank`` of importances.csv or groups.csv is 1, 2, ... in the order docs/outputs.md states: selected
    first, then ``round`` (the all-relevant round; blank for unselected), then ``importance`` descending."""
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    found_in = 0.0 * table["rank"]  # no rank key: every group's is the same
    if "round" in table.columns:
        found_in = pd.to_numeric(table["round"], errors="coerce").astype(float).fillna(np.inf)
    keys = list(zip(~table["selected"].astype(bool), found_in, -table["importance"]))
    assert keys == sorted(keys)


def assert_same_encoder(ours: Encoder, theirs: Encoder) -> None:
    """Equal ``to_dict`` documents: names, kinds, reasons and levels exactly, numbers to 1e-9."""
    our_numbers: list[float] = []
    their_numbers: list[float] = []
    assert _split_numbers(ours.to_dict(), our_numbers) == _split_numbers(theirs.to_dict(), their_numbers)
    assert our_numbers == pytest.approx(their_numbers, rel=1e-9, abs=1e-12)


# the convex case (no hidden layer): a standardised linear problem and its KKT violations

GROUP_IDS = np.array([0, 1, 2, 0, 2, 2, 3, 4])  # a+n1, b, c+n2+n3, n4, n5 over columns a b c n1 n2 n3 n4 n5
N_COLUMNS = np.bincount(GROUP_IDS)


def _problem(linear_table, task):
    X = linear_table[["a", "b", "c", "n1", "n2", "n3", "n4", "n5"]].to_numpy()
    X = (X - X.mean(0)) / X.std(0)
    y = linear_table["y"].to_numpy()
    y = (y > 0).astype(np.float64) if task == "binary" else (y - y.mean()) / y.std()
    return torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)


def kkt_violations(model, X, y, loss_fn, lam, penalty):
    """Relative KKT violation of every group, and the largest absolute bias gradient."""
    loss = loss_fn(model(X), y)
    grad_W, grad_b = torch.autograd.grad(loss, [model.first_weight, model.layers[0].bias])
    W = model.first_weight.detach()
    grad_norms = group_norms(grad_W, penalty.group_ids, penalty.n_groups)
    norms = group_norms(W, penalty.group_ids, penalty.n_groups)
    violations = []
    for g in range(penalty.n_groups):
        threshold = lam * float(penalty.weights[g])
        columns = penalty.group_ids == g
        if norms[g] == 0:
            # a zero group: its gradient must be inside the ball of radius lam * sqrt(d_g)
            violations.append(max(0.0, float(grad_norms[g]) - threshold) / threshold)
        else:
            # a non-zero group: grad_g = -lam * sqrt(d_g) * W_g / ||W_g||
            residual = grad_W[:, columns] + threshold * W[:, columns] / norms[g]
            violations.append(float(torch.linalg.vector_norm(residual)) / threshold)
    return np.array(violations), float(grad_b.abs().max())


# a lambda path with given counts and validation losses, for the choice of a step


def _path(counts, losses, ses):
    steps = tuple(
        PathStep(
            lam=0.1 * i,
            n_selected=n,
            group_norms=np.r_[np.ones(n), np.zeros(6 - n)],
            train_loss=0.0,
            val_loss=loss,
            objective=0.0,
            n_iters=1,
            converged=True,
            relaxed_val_loss=loss,
            relaxed_val_se=se,
        )
        for i, (n, loss, se) in enumerate(zip(counts, losses, ses))
    )
    return LambdaPath(steps=steps, dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)


PATH = _path(
    counts=[6, 5, 4, 3, 2, 1, 0],
    losses=[0.50, 0.30, 0.20, 0.21, 0.24, 0.60, 1.00],
    ses=[0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.10],
)


def knockoff_table(n: int, seed: int, n_true: int, strength: float, p: int = 16) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    frame["y"] = X[:, :n_true] @ np.full(n_true, strength) + rng.standard_normal(n)
    return frame


def numbers_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "c"]})
    df["y"] = 2 * df["a"] + df["b"] + 0.3 * rng.standard_normal(n)
    return df


def report_table(n: int = 240) -> pd.DataFrame:
    df = numbers_table(n, seed=2)
    df["row_id"] = np.arange(1000, 1000 + n)  # an integer ID used as a number
    df["note"] = "same"  # constant: ignored
    df["kind"] = np.where(np.arange(n) % 2 == 0, "u", "v")
    df.loc[[4, 9, 11], "y"] = np.nan  # three rows without a target
    return df


def split_frame(df: pd.DataFrame, n_parts: int) -> list[pd.DataFrame]:
    return [df.iloc[rows] for rows in np.array_split(np.arange(len(df)), n_parts)]
