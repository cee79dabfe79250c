"""``Problem``: a plain value; ``from_arrays`` opens encoded rows as a whole dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glselect.data.split import TRAINING_ROWS, VALIDATION_ROWS
from glselect.path.problem import Problem


def _rows(task: str) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    X = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2] * 10) if task == "multiclass" else torch.tensor([0.0, 1.0] * 15)
    return (X[:20], y[:20]), (X[20:], y[20:])


def test_a_problem_from_arrays_names_its_columns_and_groups_and_counts_its_classes():
    train, val = _rows("multiclass")
    problem = Problem.from_arrays(train, val, np.array([0, 0, 1, 2]), np.array([2, 1, 1]), "multiclass")
    encoder, groups = problem.data.encoder, problem.data.group_index
    assert encoder.feature_names == ["x0", "x1", "x2", "x3"]
    assert (encoder.target.task, encoder.target.classes, encoder.target.n_outputs) == ("multiclass", (0, 1, 2), 3)
    assert groups.names == ("g0", "g1", "g2")
    assert groups.members == (("x0", "x1"), ("x2",), ("x3",))
    assert groups.group_of("x1") == "g0"
    assert problem.datafit.outputs == 3 and problem.n_groups == 3 and problem.n_features == 4
    # the training rows come first: [0, 1, 2] * 6 + [0, 1], then the validation rows
    assert problem.data.class_counts(TRAINING_ROWS).tolist() == [7, 7, 6]
    assert problem.data.class_counts(VALIDATION_ROWS).tolist() == [3, 3, 4]


@pytest.mark.parametrize(("task", "classes"), [("binary", (0, 1)), ("regression", ())])
def test_a_problem_from_arrays_has_classes_only_for_a_class_label(task, classes):
    train, val = _rows(task)
    problem = Problem.from_arrays(train, val, np.arange(4), np.ones(4, dtype=np.int64), task)
    assert problem.data.encoder.target.classes == classes
    assert problem.datafit.name == task and problem.datafit.outputs == 1


def test_a_restricted_problem_reads_its_columns_of_the_same_rows():
    train, val = _rows("binary")
    problem = Problem.from_arrays(train, val, np.array([0, 0, 1, 2]), np.array([2, 1, 1]), "binary")
    narrow = problem.restrict(np.array([False, True, False, True]))
    assert narrow.group_ids.tolist() == [0, 2] and narrow.n_features == 2
    assert torch.equal(narrow.val.X, val[0][:, [1, 3]])
    # a CV fold of the narrow problem reads the same two columns of other rows
    fold = narrow.on_rows(TRAINING_ROWS, VALIDATION_ROWS, seed=5)
    assert fold.seed == 5 and torch.equal(fold.val.X, val[0][:, [1, 3]])
