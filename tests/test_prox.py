import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from glselect.model.prox import group_norms, group_soft_threshold, project_column_norms

# magnitudes below 1e-6 only probe float32 underflow of the squared norm, not the operator
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32).filter(lambda v: v == 0 or abs(v) > 1e-6)
thresholds_ = st.floats(0, 5).filter(lambda t: t == 0 or t > 1e-6)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (3, 4), elements=finite), st.floats(0, 10))
def test_prox_shrinks_the_group_norm_by_the_threshold(W, threshold):
    W = torch.from_numpy(W)
    group_ids = torch.zeros(4, dtype=torch.int64)  # one group holding every column
    out = group_soft_threshold(W, group_ids, torch.tensor([threshold]))
    before = float(torch.linalg.vector_norm(W))
    assert float(torch.linalg.vector_norm(out)) == pytest.approx(max(before - threshold, 0.0), abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (2, 6), elements=finite), st.lists(thresholds_, min_size=3, max_size=3))
def test_prox_acts_on_each_group_alone_and_keeps_its_direction(W, thresholds):
    W = torch.from_numpy(W)
    group_ids = torch.tensor([0, 0, 1, 1, 2, 2])
    out = group_soft_threshold(W, group_ids, torch.tensor(thresholds, dtype=torch.float32))
    for g in range(3):
        block, shrunk = W[:, 2 * g : 2 * g + 2], out[:, 2 * g : 2 * g + 2]
        norm = float(torch.linalg.vector_norm(block))
        if thresholds[g] > 0 and norm <= thresholds[g]:
            assert torch.count_nonzero(shrunk) == 0  # exact zeros, not merely small
        elif thresholds[g] == 0 or norm == 0:
            assert torch.equal(shrunk, block)  # nothing to shrink by, or nothing to shrink
        else:
            assert torch.allclose(shrunk, block * (1 - thresholds[g] / norm), atol=1e-5)


def test_zero_group_stays_zero_without_nan():
    W = torch.zeros(4, 3)
    out = group_soft_threshold(W, torch.tensor([0, 1, 1]), torch.tensor([0.1, 0.0]))
    assert torch.equal(out, W)


def test_group_norms_are_segment_sums_over_columns():
    W = torch.tensor([[3.0, 0.0, 1.0], [4.0, 2.0, 0.0]])
    norms = group_norms(W, torch.tensor([0, 1, 1]), 3)
    assert norms.tolist() == pytest.approx([5.0, np.sqrt(5.0), 0.0])


def test_column_projection_bounds_only_long_columns():
    W = torch.tensor([[3.0, 0.3], [4.0, 0.4]])
    out = project_column_norms(W, 1.0)
    assert torch.linalg.vector_norm(out, dim=0).tolist() == pytest.approx([1.0, 0.5])
    assert torch.allclose(out[:, 1], W[:, 1])
