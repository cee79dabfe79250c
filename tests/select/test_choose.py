import math

import pytest

from glselect.config import SelectionConfig
from glselect.errors import GlselectError
from glselect.select.choose import choose_step
from tests.conftest import PATH, _path


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
