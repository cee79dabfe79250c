"""The solver carries the first layer's product X W1^T on large tables (its momentum point's is the
lerp of the last two iterates'): the same iterates, up to float32 rounding, as multiplying X again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glselect.data.source import Rows
from glselect.model.datafits import loss_function
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.model.penalties import make_penalty
from glselect.solve import fista


def _solve(hidden: tuple[int, ...], carry: bool, monkeypatch: pytest.MonkeyPatch, read_every: int = 1) -> tuple[GroupLassoMLP, object]:
    generator = torch.Generator().manual_seed(3)
    X = torch.randn(1000, 200, generator=generator)  # 200,000 cells, 200 columns: carried
    y = 2 * X[:, 0] - X[:, 1] + torch.tanh(X[:, 2]) + 0.3 * torch.randn(1000, generator=generator)
    monkeypatch.setattr(fista, "CARRY_FIRST_FROM", 100_000 if carry else 10**12)
    torch.manual_seed(0)
    model = GroupLassoMLP(200, hidden, 1)
    penalty = make_penalty(
        np.arange(200), np.ones(200, dtype=np.int64), model.first_weight.shape[0], torch.float32, torch.device("cpu"), 0.0
    )
    solver = fista.ProximalGradient(model, Rows(X, y), Objective(loss_function("regression", None), penalty, 1.0), read_every=read_every)
    assert solver._carry_first is carry
    solver.set_lambda(0.02)
    result = solver.run(150, 1e-9, can_stall=False)
    return model, result


@pytest.mark.parametrize("hidden", [(8,), ()])
def test_a_carried_first_layer_product_gives_the_iterates_of_multiplying_again(hidden, monkeypatch) -> None:
    carried, carried_result = _solve(hidden, True, monkeypatch)
    multiplied, multiplied_result = _solve(hidden, False, monkeypatch)
    # both run until the budget or a stationary point (which rounding can move by an iteration or two)
    assert min(carried_result.n_iters, multiplied_result.n_iters) > 10
    assert carried_result.objective == pytest.approx(multiplied_result.objective, rel=1e-5)
    for ours, theirs in zip(carried.parameters(), multiplied.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)
    # the penalty's exact zeros are the same groups
    zero = torch.linalg.vector_norm(carried.first_weight, dim=0) == 0
    assert zero.any() and torch.equal(zero, torch.linalg.vector_norm(multiplied.first_weight, dim=0) == 0)


def test_the_device_policy_carries_the_product_to_the_same_iterates(monkeypatch) -> None:
    # decisions taken with tensor masks, read every 8 iterations (the GPU policy), on the CPU
    on_host, _ = _solve((8,), True, monkeypatch)
    on_device, _ = _solve((8,), True, monkeypatch, read_every=8)
    for ours, theirs in zip(on_host.parameters(), on_device.parameters()):
        assert torch.equal(ours, theirs)
