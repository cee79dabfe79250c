"""Checkpoints and divergence: a resumed path ends as an uninterrupted one, a column support round-trips, and divergence is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from glselect import distributed
from glselect.config import ModelConfig, PathConfig, RunConfig, StreamConfig, TrainConfig
from glselect.data.stream import StreamData
from glselect.errors import GlselectError
from glselect.path.problem import Problem, Settings
from glselect.path.walk import fit_path
from glselect.pipeline import make_problem
from tests.conftest import strong_linear_table, write_parquet

CPU = torch.device("cpu")


def test_divergence_is_reported_not_returned(linear_table):
    X = torch.tensor(linear_table[["a", "b", "c"]].to_numpy() * 1e25, dtype=torch.float32)  # overflows float32 sums
    y = torch.tensor(linear_table["y"].to_numpy(), dtype=torch.float32)
    settings = Settings(ModelConfig(hidden=(4,)), TrainConfig(max_iters=20), PathConfig(max_steps=3))
    with pytest.raises(GlselectError, match="training diverged"):
        fit_path(Problem.from_arrays((X, y), (X, y), np.arange(3), np.ones(3, dtype=np.int64), "regression", settings))


def test_a_streamed_path_resumed_from_a_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    """Each solver run reads the mini-batches its key names, so a resumed stream reads what an
    uninterrupted one would have read from there on: the same lambdas and the same norms."""
    import copy

    from glselect.path.walk import fit_path

    path = write_parquet(strong_linear_table(1200), tmp_path / "data.parquet", row_group_size=200)
    config = RunConfig(
        table=path,
        target="y",
        model=ModelConfig(hidden=(4,)),
        path=PathConfig(max_steps=8),
        stream=StreamConfig(batch_size=128, max_epochs=1),
    )
    problem = make_problem(StreamData.open(config, CPU, distributed.SINGLE), config)
    states = []
    full = fit_path(problem, on_checkpoint=lambda state: states.append(copy.deepcopy(state)))
    resumed = fit_path(problem, resume=copy.deepcopy(states[3]))
    assert len(full.steps) == len(resumed.steps) > 4
    for a, b in zip(full.steps, resumed.steps):
        assert a.lam == b.lam
        assert np.array_equal(a.group_norms, b.group_norms)


def test_column_support_round_trips_through_a_checkpoint_and_a_resumed_path_ends_the_same(tmp_path: Path, linear_table) -> None:
    from glselect.config import ModelConfig, PathConfig
    from glselect.path.checkpoint import load_checkpoint, save_checkpoint
    from glselect.path.problem import Problem, Settings
    from glselect.path.walk import fit_path
    from tests.conftest import GROUP_IDS, N_COLUMNS, _problem

    X, y = _problem(linear_table, "regression")
    settings = Settings(ModelConfig(hidden=(), l1_ratio=0.5), path=PathConfig(max_steps=6, relax_iters=10))
    problem = Problem.from_arrays((X[:200], y[:200]), (X[200:], y[200:]), GROUP_IDS, N_COLUMNS, "regression", settings)

    def keep_third(state) -> None:
        if len(state.steps) == 3:
            save_checkpoint(tmp_path / "checkpoint", state, "run")

    full = fit_path(problem, on_checkpoint=keep_third)
    resumed = fit_path(problem, resume=load_checkpoint(tmp_path / "checkpoint", "run"))
    assert len(full.steps) == len(resumed.steps) == 7
    for a, b in zip(full.steps, resumed.steps):
        assert np.array_equal(a.column_support, b.column_support) and np.array_equal(a.group_norms, b.group_norms)
    # some step has a column out inside a kept group: the support is not the groups' alone
    assert any((step.column_mask(GROUP_IDS) != (step.group_norms[GROUP_IDS] > 0)).any() for step in full.steps)
