"""Relaxed scores warm-start from the last relaxed refit: fewer iterations, the same answer, and a
resumed walk starts where an uninterrupted one would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import glselect.path.problem as problem_module
from glselect.config import ModelConfig, PathConfig
from glselect.path.checkpoint import load_checkpoint, save_checkpoint
from glselect.path.problem import Problem, Settings
from glselect.path.walk import LambdaPath, PathState, _relaxed_start, fit_path
from tests.conftest import make_linear_table

COLUMNS = ["a", "b", "c", "n1", "n2", "n3", "n4", "n5"]


def _linear_problem(n: int = 400) -> Problem:
    table = make_linear_table()
    extra = np.random.default_rng(1).standard_normal((n - len(table), len(COLUMNS))) if n > len(table) else None
    X = table[COLUMNS].to_numpy()
    y = table["y"].to_numpy()
    if extra is not None:
        X = np.vstack([X, extra])
        y = np.concatenate([y, 3 * extra[:, 0] - 2 * extra[:, 1] + 0.5 * extra[:, 2]])
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    split = int(0.7 * n)
    settings = Settings(ModelConfig(hidden=(8,)), path=PathConfig(max_steps=40))
    train, val = (X_t[:split], y_t[:split]), (X_t[split:], y_t[split:])
    return Problem.from_arrays(train, val, np.arange(8), np.ones(8, dtype=np.int64), "regression", settings)


def _relaxed_runs(monkeypatch) -> list[tuple[int, int]]:
    """Record (columns read, iterations) of every relaxed run."""
    runs: list[tuple[int, int]] = []
    original = problem_module.Problem.train

    def train(self, model, kind="train", key=0, neuron_penalty=0.0):
        result = original(self, model, kind, key, neuron_penalty)
        if kind == "relax":
            runs.append((model.first_weight.shape[1], result.n_iters))
        return result

    monkeypatch.setattr(problem_module.Problem, "train", train)
    return runs


def _scores(path: LambdaPath) -> list[float]:
    return [step.relaxed_val_loss for step in path.steps]


def test_a_relaxed_run_starts_from_the_last_relaxed_refit_when_it_read_every_column() -> None:
    problem = _linear_problem()
    model = problem.new_model()
    relaxed = problem.new_model()
    with torch.no_grad():
        relaxed.first_weight.fill_(0.5)
    state = PathState.__new__(PathState)
    state.relaxed_state, state.relaxed_columns = relaxed.state_dict(), np.array([True] * 4 + [False] * 4)
    inside = _relaxed_start(model, state, np.array([True, True, False, False, False, False, False, False]))
    assert torch.equal(inside.first_weight, relaxed.first_weight)
    # a column the last refit did not read (a group came back): the penalised network instead
    outside = _relaxed_start(model, state, np.array([True, False, False, False, True, False, False, False]))
    assert outside is model


def test_warm_started_relaxed_scores_take_fewer_iterations_and_choose_the_same_support(monkeypatch) -> None:
    problem = _linear_problem()
    runs = _relaxed_runs(monkeypatch)
    warm = fit_path(problem)
    warm_runs = list(runs)
    runs.clear()
    monkeypatch.setattr("glselect.path.walk._relaxed_start", lambda model, state, keep: model)
    cold = fit_path(problem)
    cold_runs = list(runs)
    assert len(warm_runs) == len(cold_runs) >= 3
    # the first relaxed run has nothing to start from; the later ones start relaxed
    assert warm_runs[0] == cold_runs[0]
    assert sum(n for _, n in warm_runs[1:]) < sum(n for _, n in cold_runs[1:])

    def best_support(path: LambdaPath) -> set[int]:
        scores = np.array(_scores(path)[1:])
        step = path.steps[1 + int(np.nanargmin(scores))]
        return set(np.flatnonzero(step.group_norms).tolist())

    assert {0, 1} <= best_support(warm) == best_support(cold)


def test_a_walk_resumed_from_a_checkpoint_scores_as_an_uninterrupted_one(tmp_path: Path) -> None:
    """The checkpoint holds the last relaxed refit, so the resumed walk's next relaxed run starts
    where the uninterrupted walk's did: the same scores, to the bit."""
    problem = _linear_problem()
    saved: list[int] = []

    def keep_one(state: PathState) -> None:
        if state.relaxed_state is not None and not saved:
            save_checkpoint(tmp_path / "checkpoint", state, "run")
            saved.append(len(state.steps))

    full = fit_path(problem, on_checkpoint=keep_one)
    resumed_state = load_checkpoint(tmp_path / "checkpoint", "run")
    assert resumed_state is not None and resumed_state.relaxed_columns is not None
    resumed = fit_path(problem, resume=resumed_state)
    assert saved and len(full.steps) == len(resumed.steps) > saved[0]
    np.testing.assert_array_equal(_scores(full), _scores(resumed))
