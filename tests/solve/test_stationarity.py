"""On a ReLU network a penalised run also converges when the smallest convex combination of the
gradient mappings at its last iterates is within tol (solve/stationarity.py): the measure that
vanishes at a minimum on the units' kinks, where no single point's mapping does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from glselect.config import PathConfig
from glselect.data.source import Rows
from glselect.model.metrics import loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective, make_penalty
from glselect.solve import fista
from glselect.solve.base import LambdaSolve
from glselect.solve.stationarity import SAMPLES, min_norm_weights
from tests.solve.test_to_tolerance import _relu_problem


def test_the_smallest_combination_of_opposite_vectors_is_their_midpoint() -> None:
    vectors = np.array([[1.0, 2.0, -1.0], [-1.0, -2.0, 1.0]])
    weights = min_norm_weights(vectors @ vectors.T)
    assert weights == pytest.approx([0.5, 0.5], abs=1e-9)
    assert np.linalg.norm(weights @ vectors) == pytest.approx(0.0, abs=1e-8)


def test_the_smallest_combination_matches_a_search_over_the_simplex() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 5)) + np.array([0.5, 0.0, 0.0, 0.0, 0.0])
    weights = min_norm_weights(vectors @ vectors.T)
    assert weights.min() >= 0.0 and weights.sum() == pytest.approx(1.0)
    grid = np.linspace(0.0, 1.0, 401)
    searched = min(
        np.linalg.norm(np.array([a, b, 1.0 - a - b]) @ vectors) for a, b in itertools.product(grid, grid) if a + b <= 1.0 + 1e-12
    )
    assert np.linalg.norm(weights @ vectors) == pytest.approx(searched, abs=1e-3)
    assert np.linalg.norm(weights @ vectors) <= searched + 1e-9


def _solver(hidden: tuple[int, ...] = (4,)) -> tuple[fista.ProximalGradient, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(80, 6, generator=generator)
    y = X[:, 0] - X[:, 1] + 0.1 * torch.randn(80, generator=generator)
    group_ids = np.arange(6) // 2
    torch.manual_seed(0)
    model = GroupLassoMLP(6, hidden, 1)
    penalty = make_penalty(group_ids, np.bincount(group_ids), model.first_weight.shape[0], torch.float32)
    solver = fista.ProximalGradient(model, Rows(X, y), Objective(loss_function("regression"), penalty, 1.0))
    solver.set_lambda(0.05)
    return solver, solver._x.clone()


def test_mappings_that_cancel_at_one_point_measure_zero_and_far_apart_measure_nothing() -> None:
    solver, x = _solver()
    samples = solver._sample_buffers()
    mapping = torch.randn(x.numel(), generator=torch.Generator().manual_seed(1))
    for slot in range(SAMPLES):  # the iterates straddle a kink: the mapping flips sign from one to the next
        samples.put(slot, mapping if slot % 2 else -mapping, x)
    solver._samples = samples
    assert solver._sampled_optimality(SAMPLES) == pytest.approx(0.0, abs=1e-6)
    far = x + 10.0 * fista.SAMPLE_RADIUS * torch.linalg.vector_norm(x)
    samples.put(0, -mapping, far)  # one of them lies far from the newest: the combination speaks for no single point
    assert solver._sampled_optimality(SAMPLES) == float("inf")


def test_the_sampled_measure_is_at_most_the_newest_points_own() -> None:
    solver, x = _solver()
    samples = solver._sample_buffers()
    generator = torch.Generator().manual_seed(2)
    for slot in range(SAMPLES):
        samples.put(slot, torch.randn(x.numel(), generator=generator) + 1.0, x)
    solver._samples = samples
    newest = samples.gradients[SAMPLES - 1]
    first = solver._sizes[0]
    own = max(float(solver.objective_parts.penalty.norms(newest[:first].view(solver._shapes[0])).max()), float(newest[first:].norm()))
    assert solver._sampled_optimality(SAMPLES) <= own / 0.05 + 1e-6


def test_a_network_without_hidden_units_is_measured_at_one_point() -> None:
    solver, _ = _solver(hidden=())
    solver.run(5, 0.01)
    assert solver._samples is None


def test_at_a_float32_stationary_point_the_sampled_measure_is_far_below_the_single_points(monkeypatch) -> None:
    """The case the measure is for: a ReLU network's solve ends where no proximal step lowers the
    objective any more, yet the gradient mapping there is several times tol; the combination of
    the last iterates' mappings is far smaller."""
    problem = _relu_problem(PathConfig(max_iters_per_lambda=50, tol=0.01))
    model = problem.new_model()
    problem.train(model)
    results = {}
    for name, sample_from in (("single point", -1.0), ("sampled", fista.SAMPLE_FROM)):
        monkeypatch.setattr(fista, "SAMPLE_FROM", sample_from)  # -1: never looks at the samples
        trained = type(model)(model.n_inputs, model.hidden, model.n_outputs)
        trained.load_state_dict(model.state_dict())
        results[name], _ = problem.solve_lambda(trained, LambdaSolve(0.01, np.ones(8, dtype=bool), to_tolerance=True), 1.0, key=0)
    single, sampled = results["single point"], results["sampled"]
    assert single.converged and single.optimality > 3 * 0.01  # ended as stationary, short of tol by its own measure
    assert sampled.optimality < single.optimality / 2


def test_the_host_and_a_device_look_at_the_samples_after_the_same_trials(monkeypatch) -> None:
    """Reading every iteration (a CPU) or once per block (a GPU) gives the same iterates, bit for
    bit, also where the sampled measure ends a run."""
    looks: list[float] = []
    measure = fista.ProximalGradient._sampled_optimality

    def counted(self, n_accepted):
        looks.append(measure(self, n_accepted))
        return looks[-1]

    monkeypatch.setattr(fista.ProximalGradient, "_sampled_optimality", counted)
    problem = _relu_problem(PathConfig())
    outcomes = []
    for read_every in (1, 3, fista.READ_EVERY):
        torch.manual_seed(0)
        model = problem.new_model()
        objective = Objective(loss_function("regression"), problem.penalty(model.first_weight.shape[0]), 1.0)
        solver = fista.ProximalGradient(model, problem.rows.rows, objective, read_every=read_every)
        results = []
        for lam in (0.01, 0.03):
            solver.set_lambda(lam)
            results.append(solver.run(max_iters=400, tol=0.02))
        outcomes.append((results, [p.detach().clone() for p in model.parameters()]))
    assert any(value <= 0.02 for value in looks)  # the samples ended a run
    for results, weights in outcomes[1:]:
        assert results == outcomes[0][0]
        assert all(torch.equal(a, b) for a, b in zip(weights, outcomes[0][1], strict=True))
