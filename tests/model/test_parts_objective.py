"""The objective's parts: each penalty's prox, KKT excess, zero lambdas and restriction, and each datafit's loss."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch.nn import functional as F

from glselect.model.datafits import (
    DATAFITS,
    Binary,
    Cox,
    Multiclass,
    Regression,
    make_datafit,
)
from glselect.model.metrics import cox_row_loss
from glselect.model.objective import Objective
from glselect.model.penalties import (
    GroupLasso,
    NeuronPenalty,
    SparseGroupLasso,
    make_penalty,
)

GROUP_IDS = np.array([0, 0, 0, 1, 1, 2, 3, 3])
N_ENCODED = np.bincount(GROUP_IDS)
FAN_OUT = 3


def _penalties() -> dict[str, object]:
    return {
        "group lasso": make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64),
        "sparse group lasso": make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64, l1_ratio=0.4),
        "neuron penalty": NeuronPenalty(),
    }


PENALTIES = list(_penalties())


def _n_groups(penalty) -> int:
    return 8 if isinstance(penalty, NeuronPenalty) else penalty.n_groups


def _group_of(penalty) -> np.ndarray:
    """Each column's group: a neuron penalty's groups are the columns."""
    return np.arange(8) if isinstance(penalty, NeuronPenalty) else GROUP_IDS


def _is_zero(W: torch.Tensor, penalty) -> np.ndarray:
    column_zero = (W == 0).all(dim=0).numpy()
    group_of = _group_of(penalty)
    return np.array([column_zero[group_of == g].all() for g in range(_n_groups(penalty))])


def test_make_penalty_picks_the_penalty_by_l1_ratio():
    assert type(make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64)) is GroupLasso
    assert type(make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64, l1_ratio=0.3)) is SparseGroupLasso


@pytest.mark.parametrize("name", PENALTIES)
@settings(max_examples=40, deadline=None)
@given(V=arrays(np.float64, (FAN_OUT, 8), elements=st.floats(-3, 3)), scale=st.floats(0.01, 2.0), seed=st.integers(0, 2**16))
def test_prox_minimises_the_distance_plus_the_scaled_value(name, V, scale, seed):
    # prox(V, s) = argmin_W 0.5 ||W - V||^2 + s value(W): a convex function, so no nearby point is lower
    penalty = _penalties()[name]
    V = torch.from_numpy(V)
    P = penalty.prox(V, scale)

    def objective(W: torch.Tensor) -> float:
        return 0.5 * float(((W - V) ** 2).sum()) + scale * float(penalty.value(W))

    at_prox = objective(P)
    generator = torch.Generator().manual_seed(seed)
    for radius in (1e-1, 1e-3):
        for _ in range(30):
            assert objective(P + radius * torch.randn(V.shape, generator=generator, dtype=torch.float64)) >= at_prox - 1e-12
    # moving a non-zero group to exactly zero is a direction a Gaussian never takes
    for g in np.flatnonzero(~_is_zero(P, penalty)):
        zeroed = P.clone()
        zeroed[:, _group_of(penalty) == g] = 0
        assert objective(zeroed) >= at_prox - 1e-12


@pytest.mark.parametrize("name", ["group lasso", "sparse group lasso"])
def test_prox_and_value_is_the_prox_and_its_value(name):
    penalty = _penalties()[name]
    W = torch.randn(FAN_OUT, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    shrunk, value = penalty.prox_and_value(W, 0.7)
    torch.testing.assert_close(shrunk, penalty.prox(W, 0.7))
    torch.testing.assert_close(value, penalty.value(shrunk))


@pytest.mark.parametrize("name", PENALTIES)
@pytest.mark.parametrize("seed", range(5))
def test_kkt_excess_is_zero_on_the_zero_groups_of_a_prox_fixed_point(name, seed):
    # loss 0.5 ||W - C||^2: its minimiser with lam * penalty is W* = prox(C, lam), a fixed point of
    # the proximal gradient step at step 1, and its gradient there is W* - C
    penalty = _penalties()[name]
    C = torch.randn(FAN_OUT, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    zero_lambdas = penalty.zero_lambdas(-C).numpy()
    lam = float(np.median(zero_lambdas))  # about half the groups are zero there
    W = penalty.prox(C, lam)
    torch.testing.assert_close(penalty.prox(W - (W - C), lam), W)  # a fixed point
    zero = _is_zero(W, penalty)
    assert zero.any() and not zero.all()
    excess = penalty.kkt_excess(W - C, lam).numpy()
    assert (excess[zero] == 0).all()
    # at a smaller lambda the groups that were just zero push out: their excess is positive
    assert (penalty.kkt_excess(-C, 0.5 * lam).numpy()[zero_lambdas > 0.5 * lam * (1 + 1e-5)] > 0).all()


def _bisected_zero_lambda(penalty, gradient: torch.Tensor, group: int) -> float:
    """The smallest lambda at which a prox step from zero along ``-gradient`` leaves ``group`` at zero."""

    def stays_zero(lam: float) -> bool:
        return bool(_is_zero(penalty.prox(-gradient, lam), penalty)[group])

    low, high = 0.0, 1.0
    while not stays_zero(high):
        high *= 2.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if stays_zero(middle) else (middle, high)
    return high


@pytest.mark.parametrize("name", PENALTIES)
@pytest.mark.parametrize("seed", range(3))
def test_zero_lambdas_match_a_brute_force_bisection_on_the_prox(name, seed):
    penalty = _penalties()[name]
    gradient = torch.randn(FAN_OUT, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    found = penalty.zero_lambdas(gradient).numpy()
    for group in range(_n_groups(penalty)):
        assert found[group] == pytest.approx(_bisected_zero_lambda(penalty, gradient, group), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.4])
def test_restrict_is_the_penalty_built_on_the_kept_groups(l1_ratio):
    penalty = make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64, l1_ratio=l1_ratio)
    kept_groups = np.array([True, False, True, True])
    keep = kept_groups[GROUP_IDS]
    present, compact = np.unique(GROUP_IDS[keep], return_inverse=True)
    built = make_penalty(compact, N_ENCODED[present], FAN_OUT, torch.float64, l1_ratio=l1_ratio)
    restricted = penalty.restrict(keep)
    assert type(restricted) is type(built)
    torch.testing.assert_close(restricted.group_ids, built.group_ids)
    torch.testing.assert_close(restricted.weights, built.weights)
    W = torch.randn(FAN_OUT, int(keep.sum()), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(restricted.value(W), built.value(W))
    torch.testing.assert_close(restricted.prox(W, 0.5), built.prox(W, 0.5))
    torch.testing.assert_close(restricted.kkt_excess(W, 0.5), built.kkt_excess(W, 0.5))
    torch.testing.assert_close(restricted.zero_lambdas(W), built.zero_lambdas(W))


@pytest.mark.parametrize("l1_ratio", [0.0, 0.4])
def test_support_records_the_norms_and_its_value_is_the_penalty(l1_ratio):
    penalty = make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64, l1_ratio=l1_ratio)
    W = torch.randn(FAN_OUT, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    W[:, GROUP_IDS == 1] = 0
    W[:, 0] = 0  # a zero column inside a non-zero group
    support = penalty.support(W)
    assert support.active.tolist() == [True, False, True, True]
    assert penalty.value_of(support) == pytest.approx(float(penalty.value(W)), rel=1e-12)
    expected_columns = np.array([l1_ratio == 0, True, True, False, False, True, True, True])
    assert support.column_mask(GROUP_IDS).tolist() == expected_columns.tolist()
    assert (support.packed_columns is None) == (l1_ratio == 0)


def test_the_objective_prox_applies_every_part_in_order():
    penalty = make_penalty(GROUP_IDS, N_ENCODED, FAN_OUT, torch.float64)
    objective = Objective(lambda out, y: out.sum(), penalty, max_norm=0.5, neuron_penalty=0.2)
    generator = torch.Generator().manual_seed(2)
    first, second, third = (torch.randn(shape, dtype=torch.float64, generator=generator) for shape in ((FAN_OUT, 8), (4, FAN_OUT), (1, 4)))
    expected_first = penalty.prox(first, 0.1 * 0.3)
    neuron = NeuronPenalty().prox(second, 0.1 * 0.2)
    norms = torch.linalg.vector_norm(neuron, dim=0, keepdim=True)
    expected_second = neuron * torch.clamp(0.5 / norms, max=1.0)
    value = objective.prox_(first, [second, third], 0.1, 0.3, penalised=True, with_value=True)
    torch.testing.assert_close(first, expected_first)
    torch.testing.assert_close(second, expected_second)
    assert (torch.linalg.vector_norm(third, dim=0) <= 0.5 + 1e-12).all()
    expected_value = 0.3 * penalty.value(expected_first) + 0.2 * NeuronPenalty().value(expected_second)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(objective.penalty_value(first, [second, third], 0.3, penalised=True), expected_value)


# ----- datafits ---------------------------------------------------------------------------------


def _outputs(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_regression_is_the_mean_squared_error():
    out, y = _outputs(20, 1), _outputs(20, 1, seed=1)[:, 0]
    fit = make_datafit("regression")
    assert isinstance(fit, Regression) and fit.outputs == 1
    assert float(fit.loss(out, y)) == pytest.approx(float(((out[:, 0] - y) ** 2).mean()), rel=1e-12)


@pytest.mark.parametrize("weights", [None, np.array([0.5, 2.0])])
def test_binary_is_the_weighted_logistic_loss(weights):
    out = _outputs(30, 1)
    y = torch.tensor([0, 1] * 15, dtype=torch.float64)
    fit = make_datafit("binary", class_weights=weights)
    assert isinstance(fit, Binary)
    p = torch.sigmoid(out[:, 0])
    rows = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    if weights is not None:
        rows = rows * torch.as_tensor(weights)[y.long()]
    assert float(fit.loss(out, y)) == pytest.approx(float(rows.mean()), rel=1e-10)
    torch.testing.assert_close(fit.row_loss(out, y), rows)


@pytest.mark.parametrize("weights", [None, np.array([1.0, 0.5, 3.0])])
def test_multiclass_is_the_weighted_softmax_cross_entropy(weights):
    out = _outputs(30, 3)
    y = torch.tensor([0, 1, 2] * 10)
    fit = make_datafit("multiclass", n_outputs=3, class_weights=weights)
    assert isinstance(fit, Multiclass) and fit.outputs == 3
    assert Multiclass.outputs_for(y.numpy()) == 3
    rows = -torch.log_softmax(out, dim=1)[torch.arange(30), y]
    if weights is not None:
        rows = rows * torch.as_tensor(weights)[y]
    assert float(fit.loss(out, y)) == pytest.approx(float(rows.mean()), rel=1e-10)


def test_only_class_label_targets_have_classes_and_each_datafit_gives_its_target_outputs():
    assert [name for name, fit in DATAFITS.items() if fit.has_classes] == ["binary", "multiclass"]
    y = torch.tensor([0, 1, 1, 0])
    for task in ("regression", "binary"):  # the target itself, one float64 column
        outputs = make_datafit(task).target_outputs(y)
        assert outputs.dtype == torch.float64 and outputs.tolist() == [[0.0], [1.0], [1.0], [0.0]]
    assert make_datafit("multiclass", n_outputs=3).target_outputs(y).tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_cox_is_the_breslow_partial_likelihood_over_every_row():
    out = _outputs(6, 1)
    time = torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    event = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    y = torch.where(event > 0, time, -time)  # the folded target: the sign is the event
    fit = make_datafit("survival")
    assert isinstance(fit, Cox) and not fit.pair_screen
    eta = out[:, 0]
    # the negative partial log-likelihood, Breslow's risk sets, divided by every row
    total = sum(float(torch.logsumexp(eta[time >= time[i]], 0) - eta[i]) for i in range(6) if event[i] > 0)
    assert float(fit.loss(out, y)) == pytest.approx(total / 6, rel=1e-10)
    torch.testing.assert_close(fit.row_loss(out, y), cox_row_loss(out, y))


def _task_keyed_loss(task: str, class_weights: np.ndarray | None = None):
    """The loss chosen by branching on the task name, as the metrics module wrote it out."""
    if task == "survival":
        row_loss = cox_row_loss
    elif task == "regression":

        def row_loss(out, y):
            return F.mse_loss(out[:, 0], y, reduction="none")

    elif task == "binary":

        def row_loss(out, y):
            return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="none")

    else:

        def row_loss(out, y):
            return F.cross_entropy(out, y, reduction="none")

    if class_weights is None:
        return lambda out, y: row_loss(out, y).mean()
    weights = torch.as_tensor(class_weights)
    return lambda out, y: (row_loss(out, y) * weights.to(device=out.device, dtype=out.dtype)[y.long()]).mean()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("task", list(DATAFITS))
def test_each_datafit_s_loss_is_the_task_keyed_loss_bit_for_bit(task, weighted):
    from glselect.model import metrics

    out = _outputs(12, 3 if task == "multiclass" else 1).float()
    y = {
        "regression": _outputs(12, 1, 1)[:, 0].float(),
        "binary": torch.tensor([0.0, 1.0] * 6),
        "multiclass": torch.tensor([0, 1, 2] * 4),
        "survival": torch.arange(1.0, 13.0) * torch.tensor([1.0, -1.0, 1.0] * 4),
    }[task]
    weights = None
    if weighted and task in ("binary", "multiclass"):
        weights = np.array([0.5, 2.0, 1.5])[: out.shape[1] if task == "multiclass" else 2]
    fit = make_datafit(task, n_outputs=out.shape[1], class_weights=weights)
    assert fit.name == task and fit.metric == metrics.PRIMARY_METRIC[task]
    assert torch.equal(fit.loss(out, y), _task_keyed_loss(task, weights)(out, y))
    assert torch.equal(metrics.loss_function(task, weights)(out, y), fit.loss(out, y))
    assert torch.equal(fit.row_loss(out, y).mean(), fit.loss(out, y))
    assert fit.metric in fit.scores(out, y)
