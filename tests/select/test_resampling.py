"""Selection you can trust: cross-validation, permutation importance, stability selection, class weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect.config import DataConfig, ImportanceConfig, ModelConfig, PathConfig, RunConfig, SelectionConfig
from glselect.data.split import MODEL_ROWS, TEST, TRAIN, VAL, cv_fold, stability_half
from glselect.model.metrics import balanced_class_weights, loss_function, row_loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.pipeline import fit_frame
from glselect.select.crossval import CrossValidation
from glselect.select.permutation import Shuffles, permutation_importance
from glselect.select.stability import Stability, top_surviving
from tests.conftest import FAST, PATH, assert_user_error, invoke

TRUE = {"a", "b", "c"}


def _config(**sections) -> RunConfig:
    return RunConfig(
        table=Path("table.csv"),
        target="y",
        seed=0,
        model=ModelConfig(hidden=(8,)),
        path=PathConfig(max_iters_per_lambda=40),
        **sections,
    )


def test_folds_partition_the_model_rows_reproducibly():
    positions = np.arange(5000)
    parts = np.array([TRAIN, VAL, TEST] * 1666 + [TRAIN, VAL])
    model_rows = MODEL_ROWS.mask(parts, positions, seed=4)
    held_out = [cv_fold(k, 5)[1].mask(parts, positions, seed=4) for k in range(5)]
    assert (np.sum(held_out, axis=0) == model_rows).all()  # every model row in exactly one fold, no test row
    assert all(abs(fold.sum() - model_rows.sum() / 5) < 0.1 * model_rows.sum() / 5 for fold in held_out)
    for k in range(5):
        fitting, out = cv_fold(k, 5)
        assert not (fitting.mask(parts, positions, 4) & out.mask(parts, positions, 4)).any()
        assert ((fitting.mask(parts, positions, 4) | out.mask(parts, positions, 4)) == model_rows).all()
    assert (cv_fold(2, 5)[1].mask(parts, positions, 4) == held_out[2]).all()
    assert not (cv_fold(2, 5)[1].mask(parts, positions, 5) == held_out[2]).all()  # the seed moves them


def test_stability_halves_are_complementary_and_hold_out_an_early_stopping_share():
    positions, parts = np.arange(4000), np.zeros(4000, dtype=np.int8)
    halves = [stability_half(3, j, 0.2) for j in (0, 1)]
    fitting = [half[0].mask(parts, positions, 0) for half in halves]
    stopping = [half[1].mask(parts, positions, 0) for half in halves]
    together = [f | s for f, s in zip(fitting, stopping)]
    assert not (together[0] & together[1]).any() and (together[0] | together[1]).all()
    assert all(abs(s.sum() / t.sum() - 0.2) < 0.03 for s, t in zip(stopping, together))


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
    result = fit_frame(make_linear_table(), _config(importance=ImportanceConfig(stability_pairs=4, stability_q=3)))
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


def test_balanced_weights_make_every_class_weigh_the_same():
    y = np.array([0] * 90 + [1] * 10)
    weights = balanced_class_weights(y, 2)
    np.testing.assert_allclose(weights, [100 / 180, 100 / 20])
    assert weights[y].mean() == pytest.approx(1.0)  # the weighted loss keeps the unweighted loss's scale
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 2]), 3), [0.75, 1.0, 1.5])


def test_weighted_loss_is_the_weighted_mean_of_row_losses():
    out = torch.tensor([[0.3], [-1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    weights = np.array([0.5, 2.0])
    plain = row_loss_function("binary")(out, y)
    weighted = loss_function("binary", weights)(out, y)
    assert float(weighted) == pytest.approx(float((plain * torch.tensor([2.0, 0.5, 0.5], dtype=torch.float64)).mean()))


def test_balanced_class_weights_lift_the_rare_class(rng):
    # 10% positives that depend on x0; an unweighted model leans on the majority class
    n = 1200
    X = rng.standard_normal((n, 6))
    score = 2.0 * X[:, 0] - 3.2 + 0.7 * rng.standard_normal(n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(6)])
    df["y"] = np.where(score > 0, "rare", "common")
    plain = fit_frame(df, _config(data=DataConfig(task="binary")))
    balanced = fit_frame(df, _config(data=DataConfig(task="binary", class_weight="balanced")))
    assert "x0" in balanced.summary["selected_features"]
    assert balanced.summary["class_weights"]["rare"] > 4 * balanced.summary["class_weights"]["common"]
    assert balanced.summary["metrics"]["pruned"]["balanced_accuracy"] > plain.summary["metrics"]["pruned"]["balanced_accuracy"] + 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "1"], "cv must be 0 (one validation split), at least 2 folds, or 'auto', got 1"),
        (["--stability-threshold", "0.5"], "stability_threshold must be in (0.5, 1], got 0.5"),
        (["--stability", "-1"], "stability pairs must be >= 0, got -1"),
        (["--class-weight", "heavy"], "class_weight must be one of none, balanced, got 'heavy'"),
        (["--class-weight", "balanced"], "--class-weight balanced needs a classification target; this one is numeric (regression)"),
        (["--permutation-repeats", "-2"], "permutation_repeats must be >= 0, got -2"),
        (["--confirm", "-1"], "confirm must be >= 0, got -1.0"),
    ],
)
def test_bad_selection_options_are_one_line_errors(tmp_path, write_table, linear_table, args, message):
    out = tmp_path / "out"
    result = invoke("fit", write_table(linear_table), "-t", "y", "--out", out, *FAST, *args)
    assert_user_error(result, message)
    assert not out.exists()


@pytest.mark.slow
def test_cv_and_stability_from_the_command_line(tmp_path, write_table, linear_table):
    out = tmp_path / "out"
    result = invoke(
        "fit",
        write_table(linear_table),
        "-t",
        "y",
        "--out",
        out,
        "--json",
        "--cv",
        "3",
        "--stability",
        "2",
        "--stability-q",
        "3",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scored_by"] == "cv3" and summary["stability"]["pairs"] == 2
    assert summary["confirmed_by"] == "cross-fit3"  # the path's folds
    groups = pd.read_csv(out / "groups.csv")
    assert {"permutation", "permutation_std", "stability"} <= set(groups.columns)
    assert {"cv_loss", "cv_se"} <= set(pd.read_csv(out / "path.csv").columns)
    shown = invoke("show", out)
    assert shown.exit_code == 0, shown.output


def _carried_step(df, norms):
    """Encoded rows split 200/100, and a one-step path whose step keeps the groups where ``norms`` > 0."""
    from glselect.data.encoder import encode, fit_encoder
    from glselect.path.walk import LambdaPath, PathStep

    design = encode(fit_encoder(df, "y"), df)  # one group per column
    X, y = torch.from_numpy(design.X), torch.from_numpy(design.y)
    step = PathStep(
        lam=0.1,
        n_selected=int(np.count_nonzero(norms)),
        group_norms=np.asarray(norms, dtype=float),
        train_loss=0.0,
        val_loss=0.0,
        objective=0.0,
        n_iters=1,
        converged=True,
        relaxed_val_loss=0.0,
        relaxed_val_se=0.0,
    )
    path = LambdaPath(steps=(step,), dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)
    return path, (X[:200], y[:200]), (X[200:], y[200:]), design.feature_names


def _confirmed(df, norms, n_folds=0):
    from glselect.path.problem import Problem, Settings
    from glselect.select.confirm import confirm
    from glselect.select.refit import refit

    path, train, val, names = _carried_step(df, norms)
    group_ids = np.arange(len(names))
    problem = Problem.from_arrays(
        train, val, group_ids, np.ones(len(names), dtype=np.int64), "regression", Settings(ModelConfig(hidden=(8,)))
    )
    selection = refit(problem, path, 0, "1se")
    confirmed = confirm(problem, path, selection, min_t=3.0, n_folds=n_folds)
    # the kept model is a fresh refit on the confirmed groups (the tests between drops ran on
    # warm-started refits): the same weights as refitting those groups directly
    fresh = refit(problem, path, 0, "1se", group_mask=confirmed.group_mask)
    assert all(torch.equal(a, b) for a, b in zip(confirmed.model.state_dict().values(), fresh.model.state_dict().values()))
    return confirmed, names


@pytest.mark.parametrize("n_folds", [0, 5], ids=["validation rows", "cross-fitted"])
def test_confirmation_drops_a_noise_column_the_chosen_step_carried_and_keeps_the_true_ones(n_folds):
    from tests.conftest import make_linear_table

    # a step that kept noise columns n1, n2, n3 alongside a, b, c: dropped one after another
    selection, names = _confirmed(make_linear_table(), [1, 1, 1, 1, 1, 1, 0, 0], n_folds)
    assert [name for name, keep in zip(names, selection.group_mask) if keep] == ["a", "b", "c"]
    assert [name for name, drop in zip(names, selection.unconfirmed) if drop] == ["n1", "n2", "n3"]
    assert selection.model.n_inputs == 3


@pytest.mark.parametrize("n_folds", [0, 5], ids=["validation rows", "cross-fitted"])
def test_confirmation_never_loses_a_signal_carried_by_two_copies(n_folds):
    from tests.conftest import make_linear_table

    # a copy can look useless while the other is in: dropping both at once would lose a
    df = make_linear_table()
    df.insert(1, "a_copy", df["a"])
    selection, names = _confirmed(df, [1, 1, 1, 1, 1, 0, 0, 0, 0], n_folds)  # a, a_copy, b, c and noise n1
    kept = [name for name, keep in zip(names, selection.group_mask) if keep]
    assert set(kept) & {"a", "a_copy"} and {"b", "c"} <= set(kept) and "n1" not in kept


def test_cross_fitted_confirmation_keeps_a_weak_column_the_validation_rows_are_too_few_to_confirm():
    # y = a + 0.3 weak + noise, 300 rows: on the 100 validation rows the weak column's shuffle raises
    # the loss by 2.7 standard errors (under the bar of 3) and it is dropped; tested on all 300 rows,
    # each while its fold was held out (by refits that never saw them), it scores 4.7 and stays.
    # The noise columns the step carried are dropped either way.
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((300, 5)), columns=["a", "weak", "n1", "n2", "n3"])
    df["y"] = df["a"] + 0.3 * df["weak"] + rng.standard_normal(300)
    on_validation, names = _confirmed(df, [1, 1, 1, 1, 0])
    cross_fitted, _ = _confirmed(df, [1, 1, 1, 1, 0], n_folds=5)
    assert [name for name, keep in zip(names, on_validation.group_mask) if keep] == ["a"]
    assert [name for name, keep in zip(names, cross_fitted.group_mask) if keep] == ["a", "weak"]
    assert [name for name, drop in zip(names, cross_fitted.unconfirmed) if drop] == ["n1", "n2"]


def test_cross_fit_folds_test_every_model_row_once_on_refits_that_never_saw_it():
    from glselect.data.split import MODEL_ROWS, TEST, cross_fit_fold

    positions = np.arange(5000)
    parts = np.where(positions % 7 == 0, TEST, 0).astype(np.int8)
    tested = np.zeros(positions.size, dtype=int)
    for k in range(5):
        fitting, stopping, rows = (r.mask(parts, positions, 3) for r in cross_fit_fold(k, 5, 0.2))
        assert not (fitting & stopping).any() and not ((fitting | stopping) & rows).any()
        assert np.array_equal(fitting | stopping | rows, MODEL_ROWS.mask(parts, positions, 3))
        assert 0.15 < stopping.sum() / (fitting | stopping).sum() < 0.25
        tested += rows
    assert np.array_equal(tested, (parts != TEST).astype(int))


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
