"""The correctness anchor: with no hidden layer the problem is convex group lasso, so the solver's
solutions must meet the KKT conditions, with exact zeros for the groups that are out."""

import math

import numpy as np
import pytest
import torch

from glselect.config import ModelConfig, PathConfig, TrainConfig
from glselect.data.source import Rows
from glselect.model.metrics import loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.model.penalties import make_penalty
from glselect.model.prox import group_norms
from glselect.path.problem import Problem, Settings
from glselect.path.start import zero_kkt_lambdas
from glselect.path.walk import fit_path
from glselect.solve.base import Budget, LambdaSolve
from glselect.solve.fista import ProximalGradient
from glselect.solve.screening import solve_screened
from glselect.solve.train import mean_loss, train_early_stopped
from tests.conftest import GROUP_IDS, N_COLUMNS, _problem, kkt_violations


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_solutions_meet_group_lasso_kkt_conditions(linear_table, task):
    X, y = _problem(linear_table, task)
    loss_fn = loss_function(task)
    model = GroupLassoMLP(X.shape[1], (), 1).double()
    penalty = make_penalty(GROUP_IDS, N_COLUMNS, 1, torch.float64)
    lambda_max = float(zero_kkt_lambdas(Problem.from_arrays((X, y), (X, y), GROUP_IDS, N_COLUMNS, task), model).max())
    solver = ProximalGradient(model, Rows(X, y), Objective(loss_fn, penalty, max_norm=1.0))
    n_zero_seen = 0
    for fraction in (0.02, 0.1, 0.3, 0.6):
        lam = fraction * lambda_max
        solver.set_lambda(lam)
        solver.run(max_iters=20000, tol=1e-13)
        violations, bias_gradient = kkt_violations(model, X, y, loss_fn, lam, penalty)
        assert violations.max() < 1e-3, (fraction, violations)
        assert bias_gradient < 1e-5
        norms = group_norms(model.first_weight.detach(), penalty.group_ids, penalty.n_groups)
        zero_groups = (norms == 0).nonzero().flatten()
        for g in zero_groups:
            # exact zeros: every weight of the group is 0.0, not merely small
            assert torch.count_nonzero(model.first_weight.detach()[:, penalty.group_ids == g]) == 0
        n_zero_seen += len(zero_groups)
    assert n_zero_seen > 0  # the lambdas above do zero some groups, so both KKT branches were checked


def test_path_steps_meet_kkt_conditions(linear_table):
    X, y = _problem(linear_table, "regression")
    rows = np.arange(len(y))
    train, val = (X[rows % 4 != 0], y[rows % 4 != 0]), (X[rows % 4 == 0], y[rows % 4 == 0])
    settings = Settings(
        ModelConfig(hidden=()),
        TrainConfig(max_iters=200),
        PathConfig(max_steps=5, max_iters_per_lambda=20000, tol=1e-13, relax_iters=10),
    )
    path = fit_path(Problem.from_arrays(train, val, GROUP_IDS, N_COLUMNS, "regression", settings))
    model = path.final_model
    assert len(path.steps) == 6  # the dense step and five lambdas
    penalty = make_penalty(GROUP_IDS, N_COLUMNS, 1, torch.float64)
    loss_fn = loss_function("regression")
    last = path.steps[-1]
    violations, _ = kkt_violations(model, *train, loss_fn, last.lam, penalty)
    assert violations.max() < 1e-3
    # every step of the path is the unique (convex) solution at its lambda: an independent
    # solve from zero weights, checked against the KKT conditions, gives the same group norms
    for step in path.steps[1:]:
        fresh = GroupLassoMLP(X.shape[1], (), 1).double()
        with torch.no_grad():
            fresh.first_weight.zero_()
        solver = ProximalGradient(fresh, Rows(*train), Objective(loss_fn, penalty, max_norm=1.0))
        solver.set_lambda(step.lam)
        solver.run(max_iters=20000, tol=1e-13)
        assert kkt_violations(fresh, *train, loss_fn, step.lam, penalty)[0].max() < 1e-3
        fresh_norms = fresh.group_norms(penalty.group_ids, penalty.n_groups).numpy()
        assert np.array_equal(fresh_norms > 0, step.group_norms > 0)
        assert fresh_norms == pytest.approx(step.group_norms, rel=1e-3, abs=1e-4 * step.group_norms.max())


def sparse_group_kkt_violations(model, X, y, loss_fn, lam, penalty):
    """Relative KKT violations of the sparse group lasso, one per group and one per column, and
    which branch each column met: 'group' (its group is zero), 'column' (zero in a non-zero
    group) or 'active'."""
    loss = loss_fn(model(X), y)
    (grad_W,) = torch.autograd.grad(loss, [model.first_weight])
    W = model.first_weight.detach()
    A, v = penalty.l1_ratio, penalty.column_weight
    column_ball = lam * A * v
    violations, branches = [], []
    for g in range(penalty.n_groups):
        columns = (penalty.group_ids == g).nonzero().flatten()
        group_ball = lam * (1 - A) * float(penalty.weights[g])
        group_norm = float(torch.linalg.vector_norm(W[:, columns]))
        if group_norm == 0:
            # zero group: || S_col(grad_g, lam A v) || <= lam (1 - A) sqrt(d_g)
            shrunk = torch.clamp(torch.linalg.vector_norm(grad_W[:, columns], dim=0) - column_ball, min=0.0)
            violations.append(max(0.0, float(torch.linalg.vector_norm(shrunk)) - group_ball) / group_ball)
            branches += ["group"] * len(columns)
            continue
        for j in columns.tolist():
            column_norm = float(torch.linalg.vector_norm(W[:, j]))
            if column_norm == 0:
                # zero column in a non-zero group: ||grad_j|| <= lam A v
                violations.append(max(0.0, float(torch.linalg.vector_norm(grad_W[:, j])) - column_ball) / column_ball)
                branches.append("column")
            else:
                # grad_j = -lam (A v W_j / ||W_j|| + (1 - A) sqrt(d_g) W_j / ||W_g||)
                residual = grad_W[:, j] + column_ball * W[:, j] / column_norm + group_ball * W[:, j] / group_norm
                violations.append(float(torch.linalg.vector_norm(residual)) / (column_ball + group_ball))
                branches.append("active")
    return np.array(violations), set(branches)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_solutions_meet_sparse_group_lasso_kkt_conditions(linear_table, task):
    """--l1-ratio 0.5 at several lambdas: zero groups, zero columns inside kept groups (the noise
    column n1 beside a in group a+n1) and active columns all meet their conditions, and screening
    (which admits groups by the combined condition) reaches the same solution."""
    X, y = _problem(linear_table, task)
    loss_fn = loss_function(task)
    settings = Settings(ModelConfig(hidden=(), l1_ratio=0.5), path=PathConfig(max_iters_per_lambda=20000, tol=1e-13))
    problem = Problem.from_arrays((X, y), (X, y), GROUP_IDS, N_COLUMNS, task, settings)
    model = problem.new_model()
    lambda_max = float(zero_kkt_lambdas(problem, model).max())
    penalty = problem.penalty(1)
    branches_seen = set()
    for fraction in (0.05, 0.2, 0.5):
        lam = fraction * lambda_max
        working = model.group_norms(penalty.group_ids, penalty.n_groups).numpy() > 0  # screened: only the live groups
        problem.solve_lambda(model, LambdaSolve(lam, working), step=1.0, key=0)
        violations, branches = sparse_group_kkt_violations(model, X, y, loss_fn, lam, penalty)
        assert violations.max() < 1e-3, (fraction, violations)
        branches_seen |= branches
    assert branches_seen == {"group", "column", "active"}  # every KKT branch was checked
    # past lambda_max every group is zero and meets its condition: the estimate is where the last leaves
    problem.solve_lambda(model, LambdaSolve(1.01 * lambda_max, np.ones(penalty.n_groups, dtype=bool)), step=1.0, key=0)
    assert torch.count_nonzero(model.first_weight) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_line_search_does_not_collapse_once_the_rows_are_memorised(seed):
    # 200 rows, 300 columns, random labels: the network memorises them at the first small lambdas
    # and the loss falls to about 1e-5. The sufficient-decrease test's float32 slack was relative
    # to that loss, so it vanished with it: a ReLU network's kinks then failed the test at every
    # step length and the step fell 2,000 to 10,000 times in one lambda (then the prox threshold,
    # step * lambda, was too small for any group to leave, and the path walked lambda up for
    # nothing). The slack is now relative to at least 1, the scale of the losses at the start.
    torch.manual_seed(seed)
    X, y = torch.randn(200, 300), (torch.rand(200) < 0.5).float()
    model = GroupLassoMLP(300, (32,), 1)
    penalty = make_penalty(np.arange(300), np.ones(300, dtype=np.int64), 32, torch.float32, torch.device("cpu"), 0.0)
    solver = ProximalGradient(model, Rows(X, y), Objective(loss_function("binary", None), penalty, 1.0))
    steps = []
    for lam in np.geomspace(1e-6, 1e-2, 12):
        solver.set_lambda(float(lam))
        solver.run(50, 1e-4)
        steps.append(solver.step)
    ratios = np.array(steps[1:]) / np.array(steps[:-1])
    assert ratios.min() > 0.05, steps


def _two_solves(first: Objective, second: Objective, hidden: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The first-layer weights two fresh solvers reach from the same start on the same rows."""
    X = torch.randn(80, 6, generator=torch.Generator().manual_seed(0))
    y = X[:, 0] - X[:, 1]
    weights = []
    for objective in (first, second):
        torch.manual_seed(0)
        model = GroupLassoMLP(6, hidden, 1)
        solver = ProximalGradient(model, Rows(X, y), objective)
        solver.set_lambda(0.01)
        solver.run(100, 1e-7)
        weights.append(model.first_weight.detach().clone())
    return weights[0], weights[1]


def test_a_network_without_hidden_units_leaves_the_neuron_penalty_out():
    penalty = make_penalty(np.arange(6), np.ones(6, dtype=np.int64), 1, torch.float32)
    loss_fn = loss_function("regression")
    plain, with_neurons = _two_solves(Objective(loss_fn, penalty, 1.0), Objective(loss_fn, penalty, 1.0, neuron_penalty=0.5), ())
    assert torch.equal(plain, with_neurons)


def test_a_screened_solve_minimises_the_objective_it_is_given_neuron_penalty_included():
    """Every group in the working set: the screened solve is the plain solve of the same objective."""
    X = torch.randn(80, 6, generator=torch.Generator().manual_seed(0))
    y = X[:, 0] - X[:, 1]
    penalty = make_penalty(np.arange(6), np.ones(6, dtype=np.int64), 4, torch.float32)
    objective = Objective(loss_function("regression"), penalty, 1.0, neuron_penalty=0.5)
    weights = []
    for screened in (True, False):
        torch.manual_seed(0)
        model = GroupLassoMLP(6, (4,), 1)
        if screened:
            solve_screened(model, Rows(X, y), objective, LambdaSolve(0.01, np.ones(6, dtype=bool)), 1.0, (100, 1e-7))
        else:
            solver = ProximalGradient(model, Rows(X, y), objective)
            solver.set_lambda(0.01)
            solver.run(100, 1e-7)
        weights.append(model.later_weights[0].detach().clone())
    assert torch.equal(weights[0], weights[1])
    # the neuron penalty took effect: some hidden unit's outgoing weight is exactly zero
    assert (torch.linalg.vector_norm(weights[0], dim=0) == 0).any()


def test_a_penalised_solve_reports_its_optimality_and_converges_by_it_on_a_convex_problem(linear_table):
    """--hidden 0 is convex: the solve reaches the tolerance by the gradient mapping, and the measure it
    reports is at most tol; a tighter tol takes more iterations and ends tighter."""
    X, y = _problem(linear_table, "regression")
    penalty = make_penalty(GROUP_IDS, N_COLUMNS, 1, torch.float64)
    probe = GroupLassoMLP(X.shape[1], (), 1).double()
    lam = 0.3 * float(zero_kkt_lambdas(Problem.from_arrays((X, y), (X, y), GROUP_IDS, N_COLUMNS, "regression"), probe).max())
    results = {}
    for tol in (1e-1, 1e-3):
        torch.manual_seed(0)
        model = GroupLassoMLP(X.shape[1], (), 1).double()
        solver = ProximalGradient(model, Rows(X, y), Objective(loss_function("regression"), penalty, max_norm=1.0))
        solver.set_lambda(lam)
        results[tol] = solver.run(max_iters=5000, tol=tol)
        assert results[tol].converged and results[tol].optimality <= tol, results[tol]
    assert results[1e-3].n_iters > results[1e-1].n_iters


def test_an_early_stopped_run_counts_only_gains_beyond_min_gain(linear_table):
    """A relaxed score's run stops once a patience's worth of checks gains no more than min_gain on the
    validation loss: with a gain no run can make it stops after exactly patience checks."""
    X, y = _problem(linear_table, "regression")
    rows = np.arange(len(y))
    train, val = Rows(X[rows % 4 != 0], y[rows % 4 != 0]), Rows(X[rows % 4 == 0], y[rows % 4 == 0])
    loss_fn = loss_function("regression")
    iterations = {}
    for min_gain in (0.0, 1e9):
        torch.manual_seed(0)
        model = GroupLassoMLP(X.shape[1], (16,), 1).double()  # a network keeps gaining for a while
        solver = ProximalGradient(model, train, Objective(loss_fn, None, max_norm=1.0))
        result = train_early_stopped(solver, model, val, loss_fn, Budget(max_iters=2000, check_every=5, patience=4, min_gain=min_gain))
        iterations[min_gain] = result.n_iters
        assert result.best_val_loss == pytest.approx(mean_loss(model, val, loss_fn))  # the best weights are kept
    assert iterations[1e9] <= 4 * 5  # four checks of at most five iterations
    assert iterations[0.0] > iterations[1e9]


def test_a_screened_solve_with_no_group_in_its_working_set_measures_the_rest():
    """Every first-layer group screened out: the optimality measure reads the other parameters alone."""
    X = torch.randn(80, 6, generator=torch.Generator().manual_seed(0))
    y = X[:, 0] - X[:, 1]
    penalty = make_penalty(np.arange(6), np.ones(6, dtype=np.int64), 4, torch.float32)
    objective = Objective(loss_function("regression"), penalty, 1.0)
    torch.manual_seed(0)
    model = GroupLassoMLP(6, (4,), 1)
    result, _ = solve_screened(model, Rows(X, y), objective, LambdaSolve(0.01, np.zeros(6, dtype=bool)), 1.0, (100, 1e-7))
    assert result.optimality is not None and math.isfinite(result.optimality)
