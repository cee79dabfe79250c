"""The top ranks' steps are solved to --tol: no stall stop and a larger budget while few groups are
in, so the answer's ranking rests on converged solves, and the warning speaks only when it does not."""

from __future__ import annotations

import json

import numpy as np
import torch

from glselect.config import ModelConfig, PathConfig
from glselect.outputs.report import fit_warnings
from glselect.path import walk
from glselect.path.problem import Problem, Settings
from glselect.path.walk import EXACT_UP_TO, fit_path
from glselect.solve.base import FROM_DENSE_BUDGET, TO_TOLERANCE_BUDGET, LambdaSolve
from tests.conftest import invoke, make_linear_table

COLUMNS = ["a", "b", "c", "n1", "n2", "n3", "n4", "n5"]


def _relu_problem(path: PathConfig) -> Problem:
    table = make_linear_table()
    X = table[COLUMNS].to_numpy()
    X = (X - X.mean(0)) / X.std(0)
    y = table["y"].to_numpy()
    y = (y - y.mean()) / y.std()
    X_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    settings = Settings(ModelConfig(hidden=(16,)), path=path)
    return Problem.from_arrays(
        (X_t[:220], y_t[:220]), (X_t[220:], y_t[220:]), np.arange(8), np.ones(8, dtype=np.int64), "regression", settings
    )


def test_a_solve_to_tolerance_has_a_larger_budget_and_no_stall_stop() -> None:
    problem = _relu_problem(PathConfig(max_iters_per_lambda=10))
    model = problem.new_model()
    problem.train(model)  # the dense fit: the path's start
    everything = np.ones(8, dtype=bool)
    short_model, long_model = (type(model)(model.n_inputs, model.hidden, model.n_outputs) for _ in range(2))
    short_model.load_state_dict(model.state_dict())
    long_model.load_state_dict(model.state_dict())
    short, _ = problem.solve_lambda(short_model, LambdaSolve(0.1, everything), 1.0, key=0)
    exact, _ = problem.solve_lambda(long_model, LambdaSolve(0.1, everything, to_tolerance=True), 1.0, key=0)
    assert not short.converged and short.n_iters == 10
    assert exact.converged and 10 < exact.n_iters <= 10 * TO_TOLERANCE_BUDGET
    assert exact.optimality < short.optimality


def test_the_first_lambda_which_starts_from_the_dense_fit_has_the_larger_budget() -> None:
    # tol 1e-9 is out of reach: each solve runs its whole budget (one iteration per lambda, times the
    # to-tolerance factor; the first lambda's times FROM_DENSE_BUDGET more)
    path = fit_path(_relu_problem(PathConfig(max_iters_per_lambda=1, tol=1e-9, max_steps=4)))
    first, *later = path.steps[1:]
    assert first.n_iters == TO_TOLERANCE_BUDGET * FROM_DENSE_BUDGET
    assert later and all(step.n_iters <= TO_TOLERANCE_BUDGET for step in later)
    assert max(step.n_iters for step in later) == TO_TOLERANCE_BUDGET


def test_a_path_with_few_groups_converges_at_every_step_at_the_defaults() -> None:
    problem = _relu_problem(PathConfig())
    path = fit_path(problem)
    assert problem.n_groups <= EXACT_UP_TO
    assert all(step.converged for step in path.steps[1:]), [(step.lam, step.optimality) for step in path.steps]
    assert path.steps[-1].n_selected == 0


def test_a_budgeted_step_that_crosses_into_the_exact_ranks_is_finished_to_tol(monkeypatch) -> None:
    """A step that starts with more groups than the path solves exactly and ends with fewer decides
    an exact rank: it is solved on to --tol at the same lambda, not left where its budget ran out."""
    exact_up_to = 4
    monkeypatch.setattr(walk, "EXACT_UP_TO", exact_up_to)
    path = fit_path(_relu_problem(PathConfig(max_iters_per_lambda=8)))
    crossings = [now for before, now in zip(path.steps[1:], path.steps[2:]) if before.n_selected > exact_up_to >= now.n_selected]
    assert crossings
    # three iterations leave the wider steps short of tol; the crossing's own are finished
    assert not all(step.converged for step in path.steps[1:] if step.n_selected > exact_up_to)
    assert all(step.converged for step in crossings), [(step.lam, step.n_iters, step.optimality) for step in crossings]


def _summary(from_rank: int | None, exact_ranks: int | None = EXACT_UP_TO) -> dict:
    path = {"complete": True, "n_steps": 41, "n_unconverged_steps": 12, "unconverged_from_rank": from_rank, "worst_optimality": 0.42}
    if exact_ranks is not None:
        path["ranks_solved_to_tol"] = exact_ranks
    return {"path": path, "config": {"path": {"tol": 0.01, "max_iters_per_lambda": 50}}}


def test_the_convergence_warning_speaks_only_when_a_short_step_decides_the_top_ranks() -> None:
    assert fit_warnings(_summary(EXACT_UP_TO + 1)) == []  # only the order below the solved-to-tol ranks: no warning
    expected = (
        "12 of 40 path steps stopped short of --tol 0.01 (stalled, or past 50 iterations per lambda, the furthest 0.42 x lambda): "
        "the order of the groups ranked 3 and below is less certain; raise --max-iters-per-lambda"
    )
    assert fit_warnings(_summary(3)) == [expected]
    assert fit_warnings(_summary(EXACT_UP_TO)) == [expected.replace("ranked 3", f"ranked {EXACT_UP_TO}")]
    assert fit_warnings(_summary(EXACT_UP_TO + 1, exact_ranks=None)) == [expected.replace("ranked 3", f"ranked {EXACT_UP_TO + 1}")]


def test_a_fit_whose_top_steps_stop_short_warns_with_the_summarys_numbers(tmp_path) -> None:
    table = tmp_path / "data.csv"
    make_linear_table().to_csv(table, index=False)
    out = tmp_path / "out"
    options = ["--max-iters-per-lambda", "1", "--tol", "1e-9", "--permutation-repeats", "0", "--max-features", "2"]
    result = invoke("fit", table, "-t", "y", "--out", out, "--hidden", "8", *options)
    assert result.exit_code == 0, result.output
    path = json.loads((out / "summary.json").read_text())["path"]
    assert path["ranks_solved_to_tol"] == EXACT_UP_TO and path["unconverged_from_rank"] <= EXACT_UP_TO
    assert (
        f"warning: {path['n_unconverged_steps']} of {path['n_steps'] - 1} path steps stopped short of --tol 1e-09 (stalled, or "
        f"past 1 iterations per lambda, the furthest {path['worst_optimality']:.2g} x lambda): the order of the groups ranked "
        f"{path['unconverged_from_rank']} and below is less certain; raise --max-iters-per-lambda"
    ) in result.output


def test_a_streamed_summary_says_no_rank_was_solved_to_tol(tmp_path) -> None:
    from tests.conftest import strong_linear_table, write_parquet

    data = write_parquet(strong_linear_table(2000), tmp_path / "data.parquet", row_group_size=500)
    out = tmp_path / "out"
    stream = [
        "--stream",
        "--batch-size",
        "128",
        "--learning-rate",
        "0.02",
        "--max-epochs",
        "3",
        "--max-steps",
        "40",
        "--lambda-step",
        "1.3",
    ]
    result = invoke("fit", data, "-t", "y", "--out", out, "--hidden", "4", "--permutation-repeats", "0", "--max-features", "3", *stream)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["path"]["ranks_solved_to_tol"] is None
