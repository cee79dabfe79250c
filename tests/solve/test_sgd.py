"""The streamed solver steps as torch's SGD with momentum."""

from __future__ import annotations

import torch


def test_the_streamed_solver_steps_as_torch_sgd_with_momentum() -> None:
    """HeavyBall stands in for torch.optim.SGD (whose import costs 70 MB): the same weights, bit for bit."""
    from glselect.solve.sgd import HeavyBall

    def trained(make_optimizer) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        optimizer = make_optimizer(list(model.parameters()))
        generator = torch.Generator().manual_seed(1)
        for _ in range(30):
            X, y = torch.randn(16, 6, generator=generator), torch.randn(16, 1, generator=generator)
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
        return [parameter.detach().clone() for parameter in model.parameters()]

    ours = trained(lambda parameters: HeavyBall(parameters, 0.05, 0.9))
    torchs = trained(lambda parameters: torch.optim.SGD(parameters, lr=0.05, momentum=0.9))
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))
