"""The solver's hot loop reads nothing back from the device: every decision of an iteration is a
tensor, and the loop looks at its ``done`` flag once per ``READ_EVERY`` iterations (what it does off
the CPU; on the CPU it reads every iteration by default, which the tests here override, and the
iterates are the same either way).

On the CPU the reads are counted by wrapping every Tensor method that hands a value to Python,
per solve and inside the methods that make up one iteration over a whole path; on a GPU (skipped
without one) the same path runs with every iteration under ``torch.cuda.set_sync_debug_mode("error")``,
which raises on any synchronising call.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from glselect.config import ModelConfig, PathConfig, TrainConfig
from glselect.data.source import Rows
from glselect.model.metrics import loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective, make_penalty
from glselect.path.problem import Problem, Settings
from glselect.path.walk import fit_path
from glselect.solve import fista
from glselect.solve.base import LambdaSolve
from glselect.solve.fista import BACKTRACK_ALLOWANCE, READ_EVERY, ProximalGradient
from glselect.solve.screening import solve_screened, too_many_departures

HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@contextlib.contextmanager
def counted_host_reads():
    """Count calls of every Tensor method that copies a value to the host, for the block's duration."""
    counts = {"reads": 0}
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counting(original):
        def wrapper(self, *args, **kwargs):
            counts["reads"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _data(n_rows=120, n_columns=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # correlated columns: a solve takes many iterations before it is stationary
    X = torch.randn(n_rows, 1, generator=generator) + 0.3 * torch.randn(n_rows, n_columns, generator=generator)
    y = 2 * X[:, 0] - X[:, 1] + torch.tanh(X[:, 2]) + 0.1 * torch.randn(n_rows, generator=generator)
    group_ids = np.arange(n_columns) // 2  # six groups of two columns
    return X, y, group_ids, np.bincount(group_ids)


@pytest.mark.parametrize(("hidden", "neuron_penalty"), [((), 0.0), ((4,), 0.01)])
def test_a_solve_reads_the_device_once_per_block_of_iterations(hidden, neuron_penalty):
    X, y, group_ids, n_encoded = _data()
    X, y = X.double(), y.double()  # float64: the solve runs long before rounding stalls it
    model = GroupLassoMLP(X.shape[1], hidden, 1).double()
    fan_out = model.first_weight.shape[0]
    penalty = make_penalty(group_ids, n_encoded, fan_out, torch.float64)
    solver = ProximalGradient(
        model, Rows(X, y), Objective(loss_function("regression"), penalty, 1.0, neuron_penalty), read_every=READ_EVERY
    )
    solver.set_lambda(0.02)
    # a stop test that never holds still runs every iteration: its tensor must not be read either
    stop = too_many_departures(penalty, np.ones(penalty.n_groups, dtype=bool), penalty.n_groups)
    with counted_host_reads() as counts:
        result = solver.run(max_iters=160, tol=-1.0, stop=stop)  # tol -1: only stationarity ends it
    assert result.n_iters >= 6 * READ_EVERY and not result.stopped
    # one look per block after the first (the one that ends it included), one combined read at the end
    assert counts["reads"] <= int(result.n_iters * (1 + BACKTRACK_ALLOWANCE)) // READ_EVERY + 2
    assert np.isfinite(result.objective)


def test_a_screened_solve_reads_per_block_and_per_working_set_not_per_iteration(monkeypatch):
    monkeypatch.setattr(fista, "default_read_every", lambda device: READ_EVERY)  # what a GPU gets
    X, y, group_ids, n_encoded = _data(n_columns=40)
    model = GroupLassoMLP(X.shape[1], (), 1)
    penalty = make_penalty(group_ids, n_encoded, 1, torch.float32)
    objective = Objective(loss_function("regression"), penalty, 1.0)
    working = np.zeros(penalty.n_groups, dtype=bool)
    working[:3] = True  # only the first groups start in: the KKT check must add any other that is needed
    with counted_host_reads() as counts:
        result, _ = solve_screened(model, Rows(X, y), objective, LambdaSolve(0.05, working), 1.0, (400, -1.0))
    assert result.n_iters >= 6 * READ_EVERY
    # the block reads of each working-set solve, plus a handful per solve (result, step, KKT check)
    assert counts["reads"] <= 3 * (int(result.n_iters * (1 + BACKTRACK_ALLOWANCE)) // READ_EVERY + 8)


@pytest.mark.parametrize(("hidden", "neuron_penalty"), [((), 0.0), ((4,), 0.01)])
def test_how_often_the_loop_reads_changes_no_iterate(hidden, neuron_penalty):
    """Reading every iteration (the CPU default: decisions taken in Python, the gradient reused
    after a rejected trial) and reading once per block (a GPU's: decisions as tensor masks) give
    the same weights, bit for bit, and the same results."""
    X, y, group_ids, n_encoded = _data()
    outcomes = []
    for read_every in (1, 3, READ_EVERY):
        torch.manual_seed(0)
        model = GroupLassoMLP(X.shape[1], hidden, 1)
        penalty = make_penalty(group_ids, n_encoded, model.first_weight.shape[0], torch.float32)
        objective = Objective(loss_function("regression"), penalty, 1.0, neuron_penalty)
        solver = ProximalGradient(model, Rows(X, y), objective, read_every=read_every)
        results = []
        for lam in (0.01, 0.05):  # the step and the weights carry over from one lambda to the next
            solver.set_lambda(lam)
            for _ in range(3):  # and between runs at one lambda (training in chunks)
                results.append(solver.run(max_iters=40, tol=1e-6))
        outcomes.append((results, [p.detach().clone() for p in model.parameters()], solver.step))
    first_results, first_weights, first_step = outcomes[0]
    assert any(result.n_iters > 20 for result in first_results)
    assert (model.first_weight == 0).any(dim=0).any()  # the prox zeroed some columns
    for results, weights, step in outcomes[1:]:
        assert results == first_results and step == first_step
        assert all(torch.equal(a, b) for a, b in zip(weights, first_weights, strict=True))


def test_an_iteration_that_settles_early_in_a_block_changes_nothing_after_it():
    """Iterations past ``done`` inside a block are no-ops: the result is the weights at convergence."""
    X, y, group_ids, n_encoded = _data()
    penalty = make_penalty(group_ids, n_encoded, 1, torch.float32)
    weights = []
    for max_iters in (400, 800):
        torch.manual_seed(0)
        model = GroupLassoMLP(X.shape[1], (), 1)
        solver = ProximalGradient(model, Rows(X, y), Objective(loss_function("regression"), penalty, 1.0), read_every=READ_EVERY)
        solver.set_lambda(0.05)
        result = solver.run(max_iters=max_iters, tol=1e-6)
        assert result.converged and result.n_iters < 400
        weights.append(model.first_weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


# the work of one iteration off the CPU: a trial step, then its decision as tensor masks; the
# look at ``done`` once per block lives in ``run`` and is counted by the tests above
PER_ITERATION = ("_trial", "_settle_on_device")


def _small_path(X, y, group_ids, n_encoded):
    settings = Settings(
        ModelConfig(hidden=(4,)), TrainConfig(max_iters=60), PathConfig(max_steps=4, max_iters_per_lambda=40, relax_iters=10)
    )
    problem = Problem.from_arrays((X[:300], y[:300]), (X[300:], y[300:]), group_ids, n_encoded, "regression", settings)
    return fit_path(problem)


def test_a_path_reads_nothing_back_inside_an_iteration(monkeypatch):
    """A whole path (dense fit, walk, relaxed refits) with the solver as it runs off the CPU: the
    methods that make up an iteration never hand a value to Python; the reads are per block and
    per solve (the two tests above bound those)."""
    monkeypatch.setattr(fista, "default_read_every", lambda device: READ_EVERY)  # what a GPU gets
    calls = dict.fromkeys(PER_ITERATION, 0)
    reads_inside = []
    with counted_host_reads() as counts:
        for name in PER_ITERATION:
            method = getattr(ProximalGradient, name)

            def counting(self, *args, _method=method, _name=name, **kwargs):
                before = counts["reads"]
                try:
                    return _method(self, *args, **kwargs)
                finally:
                    calls[_name] += 1
                    if counts["reads"] != before:
                        reads_inside.append(f"{_name}: {counts['reads'] - before} reads")

            monkeypatch.setattr(ProximalGradient, name, counting)
        path = _small_path(*_data(n_rows=400))
    assert len(path.steps) >= 2 and all(step.n_iters > 0 for step in path.steps)
    assert calls["_settle_on_device"] >= 100, calls  # the blocked loop really ran, many iterations
    assert not reads_inside, reads_inside[:5]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_path_on_the_gpu_never_synchronises_inside_an_iteration(monkeypatch):
    """The same on a GPU, where a read is a synchronisation: every iteration runs under
    ``torch.cuda.set_sync_debug_mode("error")``, which raises on any synchronising call."""
    X, y, group_ids, n_encoded = _data(n_rows=400)
    calls = dict.fromkeys(PER_ITERATION, 0)
    for name in PER_ITERATION:
        method = getattr(ProximalGradient, name)

        def strict(self, *args, _method=method, _name=name, **kwargs):
            calls[_name] += 1
            torch.cuda.set_sync_debug_mode("error")
            try:
                return _method(self, *args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        monkeypatch.setattr(ProximalGradient, name, strict)
    path = _small_path(X.cuda(), y.cuda(), group_ids, n_encoded)
    assert len(path.steps) >= 2 and all(step.n_iters > 0 for step in path.steps)
    assert calls["_settle_on_device"] >= 100, calls  # on a GPU the loop runs blocked by default


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_hosts_momentum_weights_are_the_devices_bit_for_bit(dtype) -> None:
    """The host looks FISTA's momentum weights up (``momentum_weight``); the device computes them
    with 0-d tensors, whose float32 sqrt is not NumPy's correctly rounded one: the table must hold
    the tensors' values exactly, past the length it is first built to."""
    fista._MOMENTUM.pop(dtype, None)
    t = torch.ones((), dtype=dtype)
    for k in range(300):
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
        assert fista.momentum_weight(k, dtype) == float((t - 1.0) / t_next), k
        t = t_next
    assert fista.momentum_weight(0, dtype) == 0.0  # a (re)start takes a plain proximal step
