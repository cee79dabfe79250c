"""Confirmation: refits without a group drop the noise the chosen step carried and keep every signal, cross-fitted
when validation rows are few."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from glselect.config import ModelConfig


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


def test_confirmation_is_cross_fitted_when_validation_rows_are_few_or_the_path_is_cross_validated():
    from glselect.select.confirm import CROSS_FIT_FROM_ROWS, confirmation_folds
    from glselect.select.crossval import AUTO_CV_BELOW_ROWS, AUTO_FOLDS

    assert confirmation_folds(0, AUTO_CV_BELOW_ROWS - 1) == AUTO_FOLDS  # whatever --cv says: it costs refits, not paths
    assert confirmation_folds(0, CROSS_FIT_FROM_ROWS) == AUTO_FOLDS
    assert confirmation_folds(0, CROSS_FIT_FROM_ROWS - 1) == 0  # a handful of rows per fold: no
    assert confirmation_folds(0, AUTO_CV_BELOW_ROWS) == 0
    assert confirmation_folds("auto", AUTO_CV_BELOW_ROWS) == 0
    assert confirmation_folds(3, AUTO_CV_BELOW_ROWS - 1) == 3 and confirmation_folds(3, 10_000) == 3
