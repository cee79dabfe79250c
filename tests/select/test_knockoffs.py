"""--fdr: the Gaussian group-knockoff sampler, the knockoff+ threshold and e-BH, and knockoff fits end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.data.knockoffs import SHRINKAGE, Moments, gaussian_knockoffs, row_normals
from glselect.data.open import frame_dataset
from glselect.options import config_from
from glselect.pipeline import fit_frame, make_problem
from glselect.select.knockoffs import (
    e_bh,
    knockoff_e_values,
    knockoff_selection,
    knockoff_statistic,
    knockoff_threshold,
    path_areas,
)

runner = CliRunner()
GROUPS = np.array([0, 0, 1, 2, 2, 2])


def correlated_columns(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [0.6, 0.8, 0, 0, 0, 0],
            [0.3, 0.2, 0.9, 0, 0, 0],
            [0, 0.4, 0.3, 0.8, 0, 0],
            [0, 0, 0.2, 0.5, 0.8, 0],
            [0.2, 0, 0, 0.4, 0.3, 0.8],
        ]
    )
    return rng.standard_normal((n, 6)) @ mixing.T * np.array([1, 2, 0.5, 1, 3, 1]) + np.arange(6)


def test_copies_match_first_and_second_moments_and_are_swap_exchangeable() -> None:
    X = correlated_columns(20_000, seed=0)
    moments = Moments.of(X)
    sampler = gaussian_knockoffs(moments, GROUPS, seed=3)
    D = np.outer(sampler.scale, sampler.scale)
    C = (1 - SHRINKAGE) * moments.cov / D + SHRINKAGE * np.eye(6)
    S = C @ sampler.shift
    # the construction itself: S is gamma times the within-group blocks of C, and 2C - S is PSD
    same_group = GROUPS[:, None] == GROUPS[None, :]
    assert np.allclose(S[~same_group], 0, atol=1e-10) and np.allclose(S[same_group], sampler.gamma * C[same_group])
    assert 0 < sampler.gamma <= 1 and np.linalg.eigvalsh(2 * C - S).min() > -1e-10
    joint = np.block([[C, C - S], [C - S, C]])
    # the implied joint covariance of [X, X~]: Cov(X~) = (I - A)^T C (I - A) + R R^T, Cov(X, X~) = C (I - A)
    A, R = sampler.shift, sampler.root
    implied = np.block([[C, C @ (np.eye(6) - A)], [(np.eye(6) - A).T @ C, (np.eye(6) - A).T @ C @ (np.eye(6) - A) + R @ R.T]])
    assert np.allclose(implied, joint, atol=1e-8)
    # swapping any group with its copy leaves the joint covariance unchanged
    for g in range(3):
        swap = np.arange(12)
        members = np.flatnonzero(g == GROUPS)
        swap[members], swap[members + 6] = members + 6, members
        assert np.allclose(joint[np.ix_(swap, swap)], joint)
    # and on a large sample: the copies' means, covariance and cross-covariance, in the data's own units
    copies = sampler.draw(X, np.arange(len(X)), draw=0).astype(np.float64)
    assert np.allclose(copies.mean(axis=0), X.mean(axis=0), atol=0.06 * sampler.scale)
    empirical = np.cov(np.hstack([X, copies]), rowvar=False) / np.outer(np.tile(sampler.scale, 2), np.tile(sampler.scale, 2))
    assert np.abs(empirical - joint).max() < 0.05
    # another draw is another copy; the same draw of the same rows is the same copy, however they are batched
    assert not np.allclose(sampler.draw(X[:50], np.arange(50), draw=1), copies[:50])
    assert np.array_equal(sampler.draw(X[30:50], np.arange(30, 50), draw=0), sampler.draw(X, np.arange(len(X)), 0)[30:50])


def test_row_normals_are_standard_normal() -> None:
    z = row_normals(np.arange(50_000), 4, seed=1, draw=2)
    assert z.mean() == pytest.approx(0, abs=0.02) and z.std() == pytest.approx(1, abs=0.02)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.02


def test_knockoff_plus_threshold_and_e_bh_on_hand_made_statistics() -> None:
    W = np.array([5.0, 4, 3, 2, 1, -0.5, 0])
    # t = 0.5: (1 + 1) / 5 = 0.4; t = 1: (1 + 0) / 5 = 0.2
    assert knockoff_threshold(W, 0.2) == 1.0
    assert knockoff_threshold(W, 0.3) == 1.0
    assert knockoff_threshold(W, 0.4) == 0.5
    assert knockoff_threshold(np.array([3.0, 2, 1]), 0.2) == np.inf  # knockoff+ needs at least 1/level selections
    e, threshold = knockoff_e_values(W, 0.2)
    assert threshold == 1.0 and np.allclose(e, [7, 7, 7, 7, 7, 0, 0])
    # e-BH: the k largest with e_(k) >= G / (q k)
    assert e_bh(np.array([20.0, 10, 0, 0]), 0.5).tolist() == [True, True, False, False]
    assert e_bh(np.array([7.0, 3, 0, 0]), 0.5).tolist() == [False, False, False, False]
    # one draw: e-BH at q over the draw's e-values at level q is knockoff+ at q
    rng = np.random.default_rng(0)
    for _ in range(20):
        W = rng.standard_normal(30) + np.r_[np.full(10, 2.5), np.zeros(20)]
        e, threshold = knockoff_e_values(W, 0.2)
        assert np.array_equal(e_bh(e, 0.2), threshold <= W)


def test_path_area_statistic_by_hand_and_its_sign_flips_when_a_group_is_swapped_with_its_copy() -> None:
    # two groups and their copies (groups 2, 3); group 1 and its copy have two encoded columns each
    n_encoded = np.array([1, 2, 1, 2])
    steps = [
        SimpleNamespace(lam=0.0, group_norms=np.array([9.0, 9, 9, 9])),  # the dense step: no log, not counted
        SimpleNamespace(lam=1.0, group_norms=np.array([2.0, 2 * np.sqrt(2), 1, 0])),
        SimpleNamespace(lam=np.e, group_norms=np.array([1.0, np.sqrt(2), 0, 0])),
        SimpleNamespace(lam=np.e**2, group_norms=np.array([0.0, 0, 0, 0])),
    ]
    areas = path_areas(SimpleNamespace(steps=steps), n_encoded)
    # trapezoids over log lambda = 0, 1, 2 of norm / sqrt(size): (2 + 1) / 2 + (1 + 0) / 2 for the first two
    assert np.allclose(areas, [2.0, 2.0, 0.5, 0.0])
    W = knockoff_statistic(areas, 2)
    assert np.allclose(W, [2.0, 2.0])  # signed max: the larger area, positive when the group beats its copy
    swapped = knockoff_statistic(areas[[2, 1, 0, 3]], 2)  # group 0 swapped with its copy
    assert np.allclose(swapped, [-2.0, 2.0])


def knockoff_table(n: int, seed: int, n_true: int, strength: float, p: int = 16) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    frame["y"] = X[:, :n_true] @ np.full(n_true, strength) + rng.standard_normal(n)
    return frame


def fdr_config(**values) -> object:
    cheap = {"hidden": "0", "permutation_repeats": 0, "knockoff_draws": 1, "max_iters": 200, "lambda_step": 1.3, "max_iters_per_lambda": 20}
    return config_from({"target": "y", **cheap, **values}, table=Path("t.csv"))


def test_a_null_problem_selects_nothing_most_of_the_time() -> None:
    selected = []
    for seed in range(3):  # the knockoff paths alone: no main path, no refit
        config = fdr_config(fdr=0.2, seed=seed)
        problem = make_problem(frame_dataset(knockoff_table(100, seed, 0, 0.0, p=10), config, None, torch.device("cpu")), config)
        selection = knockoff_selection(problem, 0.2, draws=1)
        assert selection.statistics.shape == (1, 10) and selection.e_values.shape == (10,)
        selected.append(int(selection.selected.sum()))
    assert sum(count == 0 for count in selected) >= 2, selected


def test_an_easy_problem_selects_its_true_columns_and_reports_the_statistic() -> None:
    easy = fit_frame(knockoff_table(160, 0, 6, 1.0, p=12), fdr_config(fdr=0.2))
    selected, truth = set(easy.summary["selected_groups"]), {f"x{j}" for j in range(6)}
    assert truth <= selected, selected
    assert easy.summary["rule"] == "fdr=0.2" and easy.summary["fdr"]["draws"] == 1
    groups = easy.importances.groups.set_index("group")
    # the FDR bounds an expectation, so one table may let a false group in, but every true group beats it
    W = groups["knockoff_statistic"]
    assert W[sorted(truth)].min() > max([0.0, *W[sorted(selected - truth)]]), W
    assert set(groups.index[groups["selected"]]) == selected
    # the refit reads only the knockoff set
    assert set(np.asarray(easy.encoder.feature_names)[easy.selection.feature_mask]) == selected


def test_streamed_fit_with_fdr_selects_by_knockoffs(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = knockoff_table(200, 1, 6, 1.0, p=10)
    frame["colour"] = np.random.default_rng(2).choice(["red", "green", "blue"], len(frame))  # one group of 3 one-hot columns
    frame.to_parquet(path, index=False)
    out = tmp_path / "out"
    args = [
        "fit",
        str(path),
        "-t",
        "y",
        "--stream",
        "--hidden",
        "0",
        "--fdr",
        "0.2",
        "--knockoff-draws",
        "1",
        "--lambda-step",
        "1.3",
        "--batch-size",
        "100",
        "--max-epochs",
        "1",
        "--out",
        str(out),
        "--permutation-repeats",
        "0",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    block = summary["fdr"]
    assert block["q"] == 0.2 and len(block["statistic"]) == 11 and "colour" in block["statistic"]
    assert set(summary["selected_groups"]) == set(block["selected_groups"])
    assert summary["streaming"] is not None
    columns = pd.read_csv(out / "importances.csv").columns
    assert {"knockoff_statistic", "knockoff_e_value", "knockoff_frequency"} <= set(columns)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fdr", "1.5"], "fdr must be in (0, 1), got 1.5"),
        (["--fdr", "0.1", "--max-features", "3"], "--fdr and --max-features both choose the selected set: give one of them"),
        (["--fdr", "0.1", "--cv", "3"], "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
        (["--fdr", "0.1", "--knockoff-draws", "0"], "knockoff_draws must be at least 1, got 0"),
    ],
)
def test_bad_fdr_options_are_usage_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    path = tmp_path / "t.csv"
    knockoff_table(40, 0, 2, 1.0).to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "-t", "y", "--out", str(tmp_path / "out"), *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
