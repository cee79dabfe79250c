"""Recall without losing precision: the paired 1se rule, --cv auto, and the first-order t statistic of the all-relevant rounds."""

import numpy as np

from glselect.config import SelectionConfig
from glselect.path.walk import LambdaPath, PathStep
from glselect.select.choose import StepScores, choose_step


def _path_with_rows(counts, rows):
    steps = tuple(
        PathStep(
            lam=0.1 * i,
            n_selected=n,
            group_norms=np.r_[np.ones(n), np.zeros(4 - n)],
            train_loss=0.0,
            val_loss=float(r.mean()),
            objective=0.0,
            n_iters=1,
            converged=True,
            relaxed_val_loss=float(r.mean()),
            relaxed_val_se=float(r.std(ddof=1) / np.sqrt(r.size)),
            relaxed_val_rows=r.astype(np.float32),
        )
        for i, (n, r) in enumerate(zip(counts, rows))
    )
    return LambdaPath(steps=steps, dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)


def test_1se_measures_a_step_against_the_best_row_by_row():
    rng = np.random.default_rng(0)
    hard = rng.exponential(1.0, 400)  # rows hard for every support: each loss alone has a wide standard error
    # step 1 (3 groups) is the best; step 2 (2 groups) is worse on every row by 0.05, far under the
    # unpaired standard error (~0.05) but many paired ones; step 3 (1 group) differs only by row noise
    rows = [hard + 0.3, hard, hard + 0.05 + 0.01 * rng.standard_normal(400), hard + 0.02 * rng.standard_normal(400)]
    path = _path_with_rows([4, 3, 2, 1], rows)
    unpaired = StepScores(loss=np.array([r.mean() for r in rows]), se=np.array([r.std() / 20 for r in rows]), source="validation")
    assert choose_step(path, SelectionConfig(rule="1se"), unpaired)[0] == 3  # the old rule: anything within 0.05
    rows[3] = hard + 0.1 + 0.02 * rng.standard_normal(400)
    path = _path_with_rows([4, 3, 2, 1], rows)
    assert choose_step(path, SelectionConfig(rule="1se")) == (1, "1se")
    rows[2] = hard + 0.01 * rng.standard_normal(400)  # now no worse than the best, row by row: the sparser step wins
    path = _path_with_rows([4, 3, 2, 1], rows)
    assert choose_step(path, SelectionConfig(rule="1se")) == (2, "1se")


def test_paired_standard_error_is_that_of_the_row_differences():
    rows = np.array([[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0]])
    scores = StepScores(loss=rows.mean(axis=1), se=np.array([9.0, 9.0]), source="validation", rows=rows)
    np.testing.assert_allclose(scores.paired_se(0), [0.0, np.std([0.5, 0.5, 0.0, 1.0], ddof=1) / 2])
    assert scores.paired_se(0)[1] < rows[1].std(ddof=1) / 2


# --- --cv auto --------------------------------------------------------------------------------


def test_cv_auto_cross_validates_only_when_validation_rows_are_few():
    from glselect.select.crossval import AUTO_CV_BELOW_ROWS, AUTO_FOLDS, folds_for

    assert folds_for("auto", AUTO_CV_BELOW_ROWS - 1) == AUTO_FOLDS
    assert folds_for("auto", AUTO_CV_BELOW_ROWS) == 0
    assert folds_for(3, 10) == 3 and folds_for(0, 10) == 0
