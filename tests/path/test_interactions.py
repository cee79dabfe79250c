"""The pair screen: pure interactions among many noise columns are found and given units; noise is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect import distributed
from glselect.model.datafits import make_datafit
from glselect.model.mlp import GroupLassoMLP
from glselect.path.interactions import give_units, max_pairs_for, screen_pairs, screen_rows
from glselect.path.problem import Problem
from glselect.path.start import interacting_pairs
from tests.conftest import FAST, STREAM_FAST, invoke, write_parquet

BINARY, REGRESSION = make_datafit("binary"), make_datafit("regression")


def _xor_rows(n_rows: int, n_columns: int, seed: int = 0, flip: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary label = XOR of the signs of columns 3 and 7 (5% flipped); every other column is noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_columns))
    label = (X[:, 3] > 0) ^ (X[:, 7] > 0) ^ (rng.random(n_rows) < flip)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(label, dtype=torch.float32)


def test_an_xor_pair_is_found_among_hundreds_of_noise_columns_and_noise_gives_none() -> None:
    X, y = _xor_rows(1500, 300)
    groups = np.arange(300)
    pairs = screen_pairs((X, y), groups, BINARY, max_pairs=4, context=distributed.SINGLE).pairs
    assert [(pair.first, pair.second) for pair in pairs] == [(3, 7)]
    assert pairs[0].t > 20  # far beyond the Bonferroni bound (about 5.4 for 44,850 pairs)
    # the same table with the label shuffled: no pair survives the family-wise bound
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    assert screen_pairs((X, shuffled), groups, BINARY, max_pairs=4, context=distributed.SINGLE).pairs == ()


def test_a_first_order_signal_is_not_taken_for_an_interaction() -> None:
    # y = 2 x0 + x1 - x2 + noise: strong, but no product term
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 50))
    y = 2 * X[:, 0] + X[:, 1] - X[:, 2] + 0.5 * rng.standard_normal(2000)
    rows = (torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    assert screen_pairs(rows, np.arange(50), REGRESSION, max_pairs=4, context=distributed.SINGLE).pairs == ()
    # a product term is found beside it, for regression as for classification
    y_product = y + 1.5 * X[:, 10] * X[:, 20]
    rows = (rows[0], torch.tensor(y_product, dtype=torch.float32))
    pairs = screen_pairs(rows, np.arange(50), REGRESSION, max_pairs=4, context=distributed.SINGLE).pairs
    assert [(pair.first, pair.second) for pair in pairs] == [(10, 20)]


def test_two_columns_of_one_group_are_never_a_pair() -> None:
    X, y = _xor_rows(1500, 40)
    groups = np.arange(40)
    groups[7] = groups[3]  # columns 3 and 7 are one group: the path keeps or drops them together anyway
    assert screen_pairs((X, y), groups, BINARY, max_pairs=4, context=distributed.SINGLE).pairs == ()


def test_near_duplicate_columns_are_named_as_duplicates_and_not_given_units() -> None:
    # y = x0 * x1 + d^2: the product pair is an interaction; d and its near-copy (corr 0.99) move
    # r * d * d' through d^2 alone, one measurement twice, and are named as such
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 20))
    X[:, 3] = X[:, 2] + 0.1 * rng.standard_normal(2000)
    y = 1.5 * X[:, 0] * X[:, 1] + X[:, 2] ** 2 + 0.5 * rng.standard_normal(2000)
    rows = (torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    screen = screen_pairs(rows, np.arange(20), REGRESSION, max_pairs=4, context=distributed.SINGLE)
    assert [(pair.first, pair.second) for pair in screen.pairs] == [(0, 1)]
    assert [(pair.first, pair.second) for pair in screen.duplicates] == [(2, 3)]
    assert screen.duplicates[0].correlation == pytest.approx(0.995, abs=0.003)
    assert screen.duplicates[0].t > 10  # it did pass the pairs' bound: only the correlation keeps it out


def _with_categorical(numeric: np.ndarray, levels: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``numeric`` beside the standardised one-hot columns of ``levels``: (X, group ids, categorical ids)."""
    present = np.unique(levels)
    one_hot = (levels[:, None] == present[None, :]).astype(float)
    one_hot = (one_hot - one_hot.mean(0)) / one_hot.std(0)
    n_numeric = numeric.shape[1]
    groups = np.r_[np.arange(n_numeric), np.full(len(present), n_numeric)]
    categorical = np.r_[np.full(n_numeric, -1), np.zeros(len(present), dtype=int)]
    return torch.tensor(np.hstack([numeric, one_hot]), dtype=torch.float32), groups, categorical


def test_a_level_of_a_random_categorical_is_no_pair_unless_the_categorical_passes_as_a_whole() -> None:
    # y = 2 x0 + noise beside a random 300-level categorical: one of its rare levels reaches t 27
    # with x0 on its own; tested as one group the categorical does not interact with x0
    rng = np.random.default_rng(0)
    numeric = rng.standard_normal((1500, 3))
    X, groups, categorical = _with_categorical(numeric, rng.integers(0, 300, 1500))
    rows = (X, torch.tensor(2 * numeric[:, 0] + 0.3 * rng.standard_normal(1500), dtype=torch.float32))
    per_level = screen_pairs(rows, groups, REGRESSION, max_pairs=4, context=distributed.SINGLE)
    assert per_level.pairs[0].first == 0 and per_level.pairs[0].second >= 3 and per_level.pairs[0].t > 20
    assert screen_pairs(rows, groups, REGRESSION, max_pairs=4, context=distributed.SINGLE, categorical_ids=categorical).pairs == ()


def test_a_categorical_whose_levels_interact_with_a_column_keeps_its_pair() -> None:
    # y = x0 on levels A and B, nothing elsewhere: the categorical passes as a whole, and the
    # strongest level pair is given units, one for the categorical and x0 (though several levels pass)
    rng = np.random.default_rng(1)
    numeric = rng.standard_normal((600, 3))
    levels = rng.integers(0, 6, 600)
    X, groups, categorical = _with_categorical(numeric, levels)
    y = numeric[:, 0] * (levels < 2) + 0.3 * rng.standard_normal(600)
    rows = (X, torch.tensor(y, dtype=torch.float32))
    per_level = screen_pairs(rows, groups, REGRESSION, max_pairs=4, context=distributed.SINGLE).pairs
    assert len(per_level) > 1 and all(pair.first == 0 and pair.second >= 3 for pair in per_level)
    pairs = screen_pairs(rows, groups, REGRESSION, max_pairs=4, context=distributed.SINGLE, categorical_ids=categorical).pairs
    assert len(pairs) == 1 and pairs[0].first == 0 and pairs[0].second >= 3  # x0 with a level (its slope differs by level)
    assert pairs[0] == per_level[0]


def test_a_multiclass_target_is_screened_class_by_class() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2400, 60))
    # class 2 when x5 > 1, else the XOR of the signs of x0 and x9 picks class 0 or 1
    label = np.where(X[:, 5] > 1, 2, (X[:, 0] > 0) ^ (X[:, 9] > 0))
    rows = (torch.tensor(X, dtype=torch.float32), torch.tensor(label, dtype=torch.int64))
    pairs = screen_pairs(rows, np.arange(60), make_datafit("multiclass", 3), max_pairs=4, context=distributed.SINGLE).pairs
    assert [(pair.first, pair.second) for pair in pairs] == [(0, 9)]


def test_survival_targets_and_the_linear_model_are_not_screened() -> None:
    X, y = _xor_rows(500, 20)
    assert screen_pairs((X, y), np.arange(20), make_datafit("survival"), max_pairs=4, context=distributed.SINGLE).pairs == ()
    assert max_pairs_for(GroupLassoMLP(20, (), 1)) == 0
    assert max_pairs_for(GroupLassoMLP(20, (32,), 1)) == 4  # half of 32 units, four per pair


def test_the_screen_samples_fewer_rows_as_columns_grow() -> None:
    # its cost, rows x columns^2 x outputs, stays within the budget
    assert screen_rows(100, 1) == 65_536
    assert screen_rows(2000, 1) == 2500
    assert screen_rows(2000, 10) == 250
    assert screen_rows(20_000, 1) < 100  # too few rows to screen: the screen is skipped


def test_units_given_to_a_pair_read_only_that_pair_at_the_layer_s_usual_norm() -> None:
    X, y = _xor_rows(1500, 100)
    pairs = screen_pairs((X, y), np.arange(100), BINARY, max_pairs=4, context=distributed.SINGLE).pairs
    torch.manual_seed(0)
    model = GroupLassoMLP(100, (32,), 1)
    untouched = model.first_weight.detach().clone()
    mean_norm = float(untouched.norm(dim=1).mean())
    give_units(model, pairs)
    weight = model.first_weight.detach()
    for unit, signs in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        assert torch.count_nonzero(weight[unit]) == 2
        assert weight[unit, 3] * signs[0] > 0 and weight[unit, 7] * signs[1] > 0
        assert float(weight[unit].norm()) == pytest.approx(mean_norm, rel=1e-5)
    assert torch.equal(weight[4:], untouched[4:])


def _xor_table(n_rows: int, n_columns: int) -> pd.DataFrame:
    X, y = _xor_rows(n_rows, n_columns, seed=4)
    table = pd.DataFrame(X.numpy(), columns=[f"c{j}" for j in range(n_columns)])
    table["y"] = y.numpy().astype(int)
    return table


def test_a_fit_in_memory_and_streamed_reports_the_pair_it_gave_units(tmp_path: Path) -> None:
    table = _xor_table(1000, 40)
    csv = tmp_path / "xor.csv"
    table.to_csv(csv, index=False)
    # a top 2: the pair given units must be what the path keeps last (the default search is tested elsewhere)
    result = invoke("fit", csv, "--target", "y", "--out", tmp_path / "memory", "--json", "--max-features", "2", *FAST)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [pair["columns"] for pair in summary["interacting_pairs"]] == [["c3", "c7"]]
    assert summary["interacting_pairs"][0]["t"] > 10
    assert summary["selected_features"] == ["c3", "c7"]
    # the printed report names the pair
    shown = invoke("show", tmp_path / "memory")
    assert "interacting pairs given units before the dense fit: c3 × c7" in shown.stdout

    parquet = write_parquet(table, tmp_path / "xor.parquet", row_group_size=200)
    result = invoke("fit", parquet, "--target", "y", "--stream", "--out", tmp_path / "streamed", "--json", "--quiet", *STREAM_FAST)
    assert result.exit_code == 0, result.output
    assert [pair["columns"] for pair in json.loads(result.stdout)["interacting_pairs"]] == [["c3", "c7"]]


def test_a_fit_names_near_duplicate_columns_in_the_summary_and_the_printed_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    table = pd.DataFrame(rng.standard_normal((1200, 6)), columns=["x0", "x1", "d", "n0", "n1", "n2"])
    table["d_copy"] = table["d"] + 0.1 * rng.standard_normal(1200)
    table["y"] = 1.5 * table["x0"] * table["x1"] + table["d"] ** 2 + 0.5 * rng.standard_normal(1200)
    csv = tmp_path / "copies.csv"
    table.to_csv(csv, index=False)
    # the pairs are screened before the path; what the fit then selects is not checked here, so a top k
    # stands in for the default's search (which would cross-fit every set it tries on 243 validation rows)
    result = invoke("fit", csv, "--target", "y", "--out", tmp_path / "out", "--json", "--max-features", "4", *FAST)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [pair["columns"] for pair in summary["interacting_pairs"]] == [["x0", "x1"]]
    assert [(pair["columns"], pair["correlation"]) for pair in summary["duplicate_pairs"]] == [(["d", "d_copy"], 0.995)]
    shown = invoke("show", tmp_path / "out")
    assert "near-duplicate columns, not an interacting pair (no units given): d ≈ d_copy (corr 0.995)" in shown.stdout


def test_a_table_too_wide_for_the_screen_s_budget_is_not_read(monkeypatch) -> None:
    # above 10,000 columns fewer than MIN_SCREEN_ROWS rows fit the budget (none above 100,000):
    # the problem returns no pairs before sampling a row, in memory as streamed
    X, y = _xor_rows(400, 12)
    problem = Problem.from_arrays((X[:300], y[:300]), (X[300:], y[300:]), np.arange(12), np.ones(12, dtype=np.int64), "binary")
    model = GroupLassoMLP(12, (32,), 1)
    assert [(pair.first, pair.second) for pair in interacting_pairs(problem, model).pairs] == [(3, 7)]
    monkeypatch.setattr("glselect.path.start.screen_rows", lambda n_features, n_outputs: 0)
    monkeypatch.setattr("glselect.path.start.screen_pairs", lambda *args: pytest.fail("the screen ran"))
    assert interacting_pairs(problem, model).pairs == ()
