"""--fdr: the knockoff+ threshold and e-BH, the path-area statistic, and knockoff selection on null and easy problems."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

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
from tests.conftest import knockoff_table


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
