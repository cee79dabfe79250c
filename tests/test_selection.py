import math

import numpy as np
import pytest

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.path.walk import LambdaPath, PathStep
from glselect.select.choose import choose_step


def _path(counts, losses, ses):
    steps = tuple(
        PathStep(
            lam=0.1 * i,
            n_selected=n,
            group_norms=np.r_[np.ones(n), np.zeros(6 - n)],
            train_loss=0.0,
            val_loss=loss,
            objective=0.0,
            n_iters=1,
            converged=True,
            relaxed_val_loss=loss,
            relaxed_val_se=se,
        )
        for i, (n, loss, se) in enumerate(zip(counts, losses, ses))
    )
    return LambdaPath(steps=steps, dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)


PATH = _path(
    counts=[6, 5, 4, 3, 2, 1, 0],
    losses=[0.50, 0.30, 0.20, 0.21, 0.24, 0.60, 1.00],
    ses=[0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.10],
)


def test_min_picks_the_lowest_relaxed_validation_loss():
    assert choose_step(PATH, SelectionConfig(rule="min")) == (2, "min")


def test_1se_picks_the_sparsest_step_within_one_standard_error():
    # best is step 2 (0.20 +- 0.02): steps 3 (0.21) and 4 (0.24 > 0.22) -> step 3
    assert choose_step(PATH, SelectionConfig(rule="1se")) == (3, "1se")


def test_max_features_picks_the_least_penalised_step_within_budget():
    assert choose_step(PATH, SelectionConfig(max_features=4)) == (2, "max_features=4")
    assert choose_step(PATH, SelectionConfig(max_features=1)) == (5, "max_features=1")


def test_unscored_steps_are_never_chosen():
    path = _path([6, 5, 4], [0.5, math.nan, 0.4], [0.1, math.nan, 0.1])
    assert choose_step(path, SelectionConfig(rule="min")) == (2, "min")
    path = _path([6, 5, 4], [0.3, math.nan, 0.5], [0.1, math.nan, 0.1])
    assert choose_step(path, SelectionConfig(rule="1se")) == (0, "1se")


def test_max_features_beyond_the_path_floor_is_an_error():
    path = _path([6, 5, 4], [0.5, 0.4, 0.3], [0.1, 0.1, 0.1])
    with pytest.raises(GlselectError, match="no step of the path has at most 2 groups \\(the sparsest has 4\\)"):
        choose_step(path, SelectionConfig(max_features=2))
