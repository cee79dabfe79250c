"""Proximal SGD on mini-batches: the solver for streamed rows, in one process or per torchrun rank.

Each step takes an SGD step (with momentum) on one mini-batch's loss, then the same proximal
operators as the full-batch solver (group soft-threshold on the first layer, neuron shrinkage,
norm bound on the later layers), so groups still reach exactly zero. Under torchrun the model is
wrapped in DistributedDataParallel, which averages the gradients; the prox that follows is the
same on every rank, so the ranks keep identical weights.
"""

from __future__ import annotations

import math

import torch

from glselect import distributed
from glselect.config import StreamConfig
from glselect.data.stream import MiniBatches
from glselect.model.mlp import GroupLassoMLP
from glselect.model.objective import Objective
from glselect.solve.base import ObjectiveStop, SolveResult

STOP_CHECKS = 16  # looks at the caller's stop test per run: each is a host read of the group norms
# Settled: the second half's mean loss within this share of the first half's. Mini-batch steps never
# reach a KKT point, so the exact solver's tolerance (relative to lambda) does not apply to them.
SETTLED = 0.01


class HeavyBall:
    """SGD with momentum, as ``torch.optim.SGD(params, lr, momentum)`` steps (no dampening, no
    Nesterov): the velocity starts as the first gradient, then ``v = momentum v + g``; ``w -= lr v``.

    Written out because constructing any torch optimizer imports ``torch._dynamo``: about 70 MB
    resident, a tenth of a streamed fit's peak (benchmarks/streaming.py).
    """

    def __init__(self, parameters: list[torch.Tensor], learning_rate: float, momentum: float) -> None:
        self.parameters = parameters
        self.learning_rate, self.momentum = learning_rate, momentum
        self.velocity: list[torch.Tensor | None] = [None] * len(parameters)

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One step on the gradients ``backward`` left."""
        for i, parameter in enumerate(self.parameters):
            if parameter.grad is None:
                continue
            velocity = self.velocity[i]
            if velocity is None:
                velocity = self.velocity[i] = parameter.grad.detach().clone()
            else:
                velocity.mul_(self.momentum).add_(parameter.grad)
            parameter.add_(velocity, alpha=-self.learning_rate)


class ProximalSGD:
    """Minimise one lambda's objective over ``model``'s parameters with mini-batch proximal steps.

    Same protocol as ``fista.ProximalGradient``: ``set_lambda`` then ``run``; ``run`` may be
    called again to continue (the batch stream and momentum carry over).
    """

    exact = False  # a mini-batch step is noisy: convergence is judged by the loss, never exact

    def __init__(self, model: GroupLassoMLP, rows: MiniBatches, objective: Objective, settings: StreamConfig, key: int) -> None:
        self.model = model
        self.objective_parts = objective
        self.module = distributed.wrap(model, rows.context)
        self.context = rows.context
        self.batches = rows.stream(key)
        self.optimizer = HeavyBall(list(model.parameters()), settings.learning_rate, settings.momentum)
        # with momentum beta a steady gradient moves the weights by lr / (1 - beta) per step: the prox
        # threshold uses that effective step, so fixed points meet the KKT conditions at lam itself
        self.step = settings.learning_rate / (1.0 - settings.momentum)
        self.lam = 0.0

    def set_lambda(self, lam: float) -> None:
        self.lam = lam

    def run(self, max_iters: int, tol: float, stop: ObjectiveStop | None = None) -> SolveResult:
        """``max_iters`` mini-batch steps. Converged: the second half's mean loss is within
        ``SETTLED`` of the first half's (``tol`` is unused: stochastic steps never settle exactly).
        ``stop(first_layer_weight)`` is looked at every ``STOP_CHECKS``-th of the run (a host
        read each time): a lambda the walker will undo need not run to the end."""
        parts = self.objective_parts
        check_every = max(1, max_iters // STOP_CHECKS)
        stopped = False
        device = self.model.first_weight.device
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # all steps, second half; read once at the end
        for step in range(max_iters):
            X, y = next(self.batches)
            self.optimizer.zero_grad()
            loss = parts.loss_fn(self.module(X), y)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                parts.prox_(
                    self.model.first_weight,
                    self.model.later_weights,
                    self.step,
                    self.lam,
                    penalised=self.lam > 0,
                    with_value=False,
                )
                sums[0] += loss.detach()
                if 2 * step >= max_iters:
                    sums[1] += loss.detach()
            if stop is not None and (step + 1) % check_every == 0 and bool(stop(self.model.first_weight.detach())):
                stopped = True  # the same decision on every rank: the weights are identical
                max_iters = step + 1
                break
        total, late = (distributed.all_reduce_sum(sums.cpu(), self.context) / self.context.world_size).tolist()
        n_late = max_iters - (max_iters + 1) // 2
        n_early = max_iters - n_late
        mean = total / max(max_iters, 1)
        early, late_mean = (total - late) / max(n_early, 1), late / max(n_late, 1)
        penalty = 0.0
        if parts.penalty is not None and self.lam > 0:
            penalty = self.lam * float(parts.penalty.value(self.model.first_weight.detach()))
        return SolveResult(
            n_iters=max_iters,
            converged=bool(early - late_mean <= SETTLED * abs(early)),
            objective=mean + penalty if math.isfinite(mean) else math.nan,
            stopped=stopped,
            loss=mean,
        )
