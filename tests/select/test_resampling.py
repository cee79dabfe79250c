"""Selection you can trust: cross-validation, permutation importance, stability selection, and class weights in a fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect.config import DataConfig, ImportanceConfig, ModelConfig, PathConfig, RunConfig, SelectionConfig
from glselect.model.metrics import row_loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.pipeline import fit_frame
from glselect.select.crossval import CrossValidation
from glselect.select.permutation import Shuffles, permutation_importance
from glselect.select.stability import Stability, top_surviving
from tests.conftest import PATH

TRUE = {"a", "b", "c"}


def _config(**sections) -> RunConfig:
    return RunConfig(
        table=Path("table.csv"),
        target="y",
        seed=0,
        model=ModelConfig(hidden=(8,)),
        path=PathConfig(max_iters_per_lambda=40, tol=0.1),  # a tenth of lambda: the exact solve is not the question here
        **sections,
    )


def test_cv_scores_are_fold_means_with_the_standard_error_of_the_mean():
    losses = np.array([[1.0, 0.5, np.nan], [3.0, 0.7, np.nan]])
    scores = CrossValidation(n_folds=2, fold_losses=losses, fold_sizes=np.zeros((2, 3), dtype=int)).scores()
    np.testing.assert_allclose(scores.loss[:2], [2.0, 0.6])
    np.testing.assert_allclose(scores.se[:2], [np.sqrt(2) / np.sqrt(2), np.sqrt(0.02) / np.sqrt(2)])
    assert np.isnan(scores.loss[2]) and scores.source == "cv2"


def test_choose_step_uses_cross_validated_scores_when_given():
    from glselect.select.choose import StepScores, choose_step

    # the path's own validation losses pick step 3 by 1se; these CV scores favour the dense end
    loss = np.array([0.10, 0.12, 0.30, 0.40, 0.50, 0.60, 1.0])
    scores = StepScores(loss=loss, se=np.full(7, 0.03), source="cv5")
    assert choose_step(PATH, SelectionConfig(rule="1se"), scores) == (1, "1se")
    assert choose_step(PATH, SelectionConfig(rule="min"), scores) == (0, "min")


@pytest.fixture(scope="module")
def cv_fit():
    from tests.conftest import make_linear_table

    torch.set_num_threads(1)
    return fit_frame(make_linear_table(), _config(selection=SelectionConfig(cv=3)))


def test_cross_validation_selects_the_true_columns_and_scores_the_path(cv_fit):
    assert set(cv_fit.summary["selected_features"]) == TRUE
    assert cv_fit.summary["scored_by"] == "cv3"
    table = cv_fit.path_scalars
    scored = table["relaxed_val_loss"].notna()
    # every step the path scored is scored in every fold, and only those
    assert (table["cv_loss"].notna() == scored).all()
    assert (table.loc[scored, "cv_se"] > 0).all()
    chosen = cv_fit.summary["step"]
    best = table["cv_loss"].min()
    assert table.loc[chosen, "cv_loss"] <= best + table.loc[table["cv_loss"].idxmin(), "cv_se"] + 1e-12


def test_permutation_importance_is_positive_for_used_columns_and_zero_for_the_rest(cv_fit):
    features = cv_fit.importances.features.set_index("feature")
    assert (features.loc[sorted(TRUE), "permutation"] > 0).all()
    assert (features.loc[["n1", "n2", "n3", "n4", "n5"], "permutation"] == 0).all()
    # a and b carry most of the signal, c a little
    assert features.loc["a", "permutation"] > features.loc["c", "permutation"]
    assert features.loc["b", "permutation"] > features.loc["c", "permutation"]
    assert (features.loc[sorted(TRUE), "permutation_std"] > 0).all()


def test_permutation_of_a_column_the_model_ignores_changes_nothing():
    torch.manual_seed(0)
    model = GroupLassoMLP(3, (4,), 1).double()
    with torch.no_grad():
        model.first_weight[:, 2] = 0.0  # the model does not read column 2
    X = torch.randn(200, 3, dtype=torch.float64)
    y = model(X)[:, 0] + 0.1 * torch.randn(200, dtype=torch.float64)
    scores = permutation_importance(
        model, X, y, [np.array([0]), np.array([2]), np.array([], dtype=int)], row_loss_function("regression"), Shuffles(4, seed=1)
    )
    assert scores.mean[0] > 0 and scores.std[0] > 0
    assert scores.mean[1] == 0 and scores.mean[2] == 0


def test_top_surviving_takes_the_q_longest_lived_and_never_a_group_that_never_lived():
    lams = np.array([0.5, 0.9, 0.0, 0.9, 0.1])
    norms = np.array([1.0, 0.2, 0.0, 0.3, 1.0])
    np.testing.assert_array_equal(top_surviving(lams, norms, 2), [False, True, False, True, False])
    np.testing.assert_array_equal(top_surviving(lams, norms, 3), [True, True, False, True, False])
    np.testing.assert_array_equal(top_surviving(lams, norms, 5), [True, True, False, True, True])


def test_the_stability_bound_is_meinshausen_buhlmanns():
    stability = Stability(n_pairs=10, q=4, threshold=0.75, frequency=np.zeros(40))
    assert stability.expected_false_bound == pytest.approx(16 / (0.5 * 40))


def test_stability_frequencies_are_high_for_true_groups_and_low_for_noise():
    from tests.conftest import make_linear_table

    torch.set_num_threads(1)
    # the rule's step as it stands: the half-sample paths are the question, not what the full fit then selects
    importance = ImportanceConfig(stability_pairs=4, stability_q=3)
    result = fit_frame(make_linear_table(), _config(importance=importance, selection=SelectionConfig(goal="minimal", confirm=0)))
    groups = result.importances.groups.set_index("group")
    assert (groups.loc[sorted(TRUE), "stability"] >= 0.75).all()
    noise = groups.loc[["n1", "n2", "n3", "n4", "n5"], "stability"]
    assert noise.mean() <= 0.2
    # each half-path selects exactly q groups, so the frequencies add up to q
    assert groups["stability"].sum() == pytest.approx(3.0)
    stability = result.summary["stability"]
    assert set(stability["stable_groups"]) <= TRUE | {"n1", "n2", "n3", "n4", "n5"}
    assert set(stability["stable_groups"]) >= {"a", "b"}
    assert stability["expected_false_bound"] == pytest.approx(9 / ((2 * 0.8 - 1) * 8))


def test_balanced_class_weights_lift_the_rare_class(rng):
    # 10% positives that depend on x0; an unweighted model leans on the majority class
    n = 1200
    X = rng.standard_normal((n, 6))
    score = 2.0 * X[:, 0] - 3.2 + 0.7 * rng.standard_normal(n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(6)])
    df["y"] = np.where(score > 0, "rare", "common")
    # the rule's step (goal minimal): the weights act in the path and the refit, not in the default's search
    minimal = SelectionConfig(goal="minimal")
    plain = fit_frame(df, _config(data=DataConfig(task="binary"), selection=minimal))
    balanced = fit_frame(df, _config(data=DataConfig(task="binary", class_weight="balanced"), selection=minimal))
    assert "x0" in balanced.summary["selected_features"]
    assert balanced.summary["class_weights"]["rare"] > 4 * balanced.summary["class_weights"]["common"]
    assert balanced.summary["metrics"]["pruned"]["balanced_accuracy"] > plain.summary["metrics"]["pruned"]["balanced_accuracy"] + 0.05


def test_permutation_scores_do_not_depend_on_how_many_shuffles_share_a_forward_pass(monkeypatch):
    """Shuffles are batched (and each set's growth dropped once scored); one at a time gives the same numbers."""
    import glselect.select.permutation as permutation

    torch.manual_seed(0)
    model = GroupLassoMLP(6, (5,), 1).double()
    X = torch.randn(300, 6, dtype=torch.float64)
    y = X[:, 0] + X[:, 1] * X[:, 2] + 0.1 * torch.randn(300, dtype=torch.float64)
    sets = [np.array([0]), np.array([1, 2]), np.array([], dtype=int), np.array([3]), np.array([4, 5])]
    scores, rows = {}, {}
    for per_pass in (1, 3, 10_000):  # one shuffle, sets straddling passes, every shuffle in one pass
        monkeypatch.setattr(permutation, "SHUFFLED_VALUES", per_pass * 300 * 5)
        result = permutation_importance(model, X, y, sets, row_loss_function("regression"), Shuffles(4, seed=2, keep_rows=True))
        scores[per_pass] = np.stack([result.mean, result.std, result.t])
        rows[per_pass] = result.rows
        # each row's increase (averaged over shuffles) is what cross-fitted confirmation pools
        np.testing.assert_allclose(result.rows.mean(axis=1), result.mean, atol=1e-12)
    assert np.array_equal(scores[1], scores[3]) and np.array_equal(scores[1], scores[10_000])
    assert np.array_equal(rows[1], rows[3]) and np.array_equal(rows[1], rows[10_000])
    assert scores[1][0, 2] == 0 and (scores[1][0, [0, 1, 3, 4]] != 0).all()  # the empty set alone scores 0
