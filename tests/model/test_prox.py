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


def _sparse_group_prox_residual(V, out, group_ids, column_t, group_t):
    """How far ``out`` is from meeting the optimality condition of the sparse group prox of ``V``:
    ``V - out`` must be a subgradient of ``column_t sum_j ||out_j|| + sum_g group_t[g] ||out_g||``."""
    worst = 0.0
    for g in range(len(group_t)):
        columns = (group_ids == g).nonzero().flatten()
        out_g, V_g = out[:, columns], V[:, columns]
        group_norm = float(torch.linalg.vector_norm(out_g))
        if group_norm == 0:
            # zero group: the column-thresholded V_g lies in the group's ball
            shrunk = torch.clamp(torch.linalg.vector_norm(V_g, dim=0) - column_t, min=0.0)
            worst = max(worst, float(torch.linalg.vector_norm(shrunk)) - group_t[g])
            continue
        for k in range(len(columns)):
            v, o = V_g[:, k], out_g[:, k]
            o_norm = float(torch.linalg.vector_norm(o))
            if o_norm == 0:
                worst = max(worst, float(torch.linalg.vector_norm(v)) - column_t)  # the column's own ball
            else:
                subgradient = column_t * o / o_norm + group_t[g] * o / group_norm
                worst = max(worst, float(torch.linalg.vector_norm(v - o - subgradient)))
    return worst


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (3, 6), elements=st.floats(-5, 5)), st.floats(0, 3), st.lists(st.floats(0, 4), min_size=3, max_size=3))
def test_sparse_group_prox_meets_the_optimality_conditions_of_the_combined_penalty(V, column_t, group_t):
    from glselect.model.prox import sparse_group_soft_threshold

    V = torch.from_numpy(V)
    group_ids = torch.tensor([0, 0, 0, 1, 1, 2])
    out = sparse_group_soft_threshold(V, group_ids, torch.tensor(column_t, dtype=torch.float64), torch.tensor(group_t, dtype=torch.float64))
    assert _sparse_group_prox_residual(V, out, group_ids, column_t, group_t) < 1e-9


def test_l1_ratio_1_with_one_column_per_group_is_the_group_lasso_on_those_columns():
    """A group of one column weighs sqrt(fan_out), the columns' own weight: with no user groups the
    lasso on columns (A = 1) and the group lasso (A = 0) are the same penalty."""
    from glselect.model.penalties import make_penalty

    W = torch.randn(4, 5, dtype=torch.float64)
    ones = np.ones(5, dtype=np.int64)
    lasso = make_penalty(np.arange(5), ones, 4, torch.float64, l1_ratio=1.0)
    group = make_penalty(np.arange(5), ones, 4, torch.float64, l1_ratio=0.0)
    assert float(lasso.value(W)) == pytest.approx(float(group.value(W)), rel=1e-12)
    assert torch.allclose(lasso.prox(W, 0.3), group.prox(W, 0.3), rtol=0, atol=1e-12)
    gradient = torch.randn(4, 5, dtype=torch.float64)
    assert torch.allclose(lasso.zero_lambdas(gradient), group.zero_lambdas(gradient), rtol=1e-12)
    assert torch.allclose(lasso.kkt_excess(gradient, 0.2), group.kkt_excess(gradient, 0.2), atol=1e-12)


def test_zero_lambda_is_where_a_zero_group_starts_to_meet_its_kkt_condition():
    from glselect.model.penalties import make_penalty

    group_ids = np.array([0, 0, 0, 1, 1, 2])
    penalty = make_penalty(group_ids, np.bincount(group_ids), 3, torch.float64, l1_ratio=0.4)
    gradient = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lams = penalty.zero_lambdas(gradient)
    for g, lam in enumerate(lams.tolist()):
        assert penalty.kkt_excess(gradient, lam * (1 + 1e-7))[g] == 0
        assert penalty.kkt_excess(gradient, lam * (1 - 1e-3))[g] > 0


def test_a_penalty_on_the_first_groups_of_more_keeps_every_groups_weight():
    # an all-relevant round restricted to groups 0 and 1 of 10 (diabetes: the minimal set took the
    # other 8) once read its columns as the groups and broke on the 10 weights
    from glselect.model.penalties import make_penalty

    n_encoded = np.array([1, 1, 3, 1, 1, 1, 1, 1, 1, 1])
    penalty = make_penalty(np.array([0, 1]), n_encoded, 4, torch.float64)
    W = torch.arange(8, dtype=torch.float64).reshape(4, 2) + 1.0
    shrunk, value = penalty.prox_and_value(W, 0.5)
    assert penalty.norms(W).shape == (10,) and penalty.norms(W)[2:].abs().max() == 0
    expected = group_soft_threshold(W, torch.tensor([0, 1]), 0.5 * torch.sqrt(torch.as_tensor(n_encoded * 4.0)))
    torch.testing.assert_close(shrunk, expected)
    assert float(value) == pytest.approx(float((penalty.weights[:2] * torch.linalg.vector_norm(expected, dim=0)).sum()))
