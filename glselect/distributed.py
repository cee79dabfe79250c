"""Run under ``torchrun``: find the process group from its environment, and keep ranks in step.

Every helper works unchanged in a single process (world size 1), so the streamed fit has one
code path: reductions return their input, barriers return at once, rank 0 is the only rank.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from glselect.errors import GlselectError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Context()


def launched_by_torchrun() -> bool:
    """True when torchrun (``torch.distributed.run``) started this process with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_main_process() -> bool:
    """Rank 0, or not distributed at all: the process that writes outputs and prints results."""
    return int(os.environ.get("RANK", "0")) == 0


def start(device: torch.device) -> Context:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); a no-op in one process.

    Raises
    ------
    GlselectError
        The rendezvous fails (a rank cannot reach the others).
    """
    if not launched_by_torchrun():
        return SINGLE
    context = Context(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            if device.type == "cuda":
                torch.cuda.set_device(context.local_rank % max(torch.cuda.device_count(), 1))
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as err:
            raise GlselectError(f"cannot join the torchrun process group ({backend}): {err}") from err
    return context


def stop(context: Context) -> None:
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, context: Context) -> torch.device:
    """On a GPU machine each local rank takes its own GPU."""
    if device.type == "cuda" and context.is_distributed:
        return torch.device("cuda", context.local_rank % max(torch.cuda.device_count(), 1))
    return device


def all_gather_objects(value: Any, context: Context) -> list[Any]:
    """``value`` from every rank, in rank order (the same list on every rank)."""
    if not context.is_distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def gather_or_raise(value: Any, context: Context) -> list[Any]:
    """``value`` from every rank, in rank order; when some rank's value is a ``GlselectError``, every
    rank raises the first one (its message and hint), so that no rank waits for one that stopped."""
    gathered = all_gather_objects(value, context)
    for outcome in gathered:
        if isinstance(outcome, GlselectError):
            raise GlselectError(str(outcome), hint=outcome.hint)
    return gathered


def all_reduce_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The element-wise sum over ranks (in place, also returned)."""
    if context.is_distributed:
        on_wire = _for_backend(tensor)
        dist.all_reduce(on_wire, op=dist.ReduceOp.SUM)
        if on_wire is not tensor:
            tensor.copy_(on_wire)
    return tensor


def _for_backend(tensor: torch.Tensor) -> torch.Tensor:
    """NCCL reduces CUDA tensors only, gloo works on CPU tensors: move the tensor if it must."""
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        return tensor.to(torch.device("cuda", torch.cuda.current_device()))
    return tensor


def all_reduce_min(value: int, context: Context) -> int:
    if not context.is_distributed:
        return value
    tensor = _for_backend(torch.tensor([value], dtype=torch.int64))
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def barrier(context: Context) -> None:
    if context.is_distributed:
        dist.barrier()


def wrap(model: torch.nn.Module, context: Context) -> torch.nn.Module:
    """The module to call for training steps: DistributedDataParallel around ``model`` when distributed.

    DDP copies rank 0's parameters to every rank when it is built and averages gradients across
    ranks in ``backward``; the proximal step that follows is then the same on every rank.
    """
    if not context.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def check_same_weights(model: torch.nn.Module, context: Context) -> None:
    """Every rank must hold the same weights (prox steps on all-reduced gradients keep them so).

    Raises
    ------
    RuntimeError
        The ranks' weights differ: a bug, not something the user can fix.
    """
    if not context.is_distributed:
        return
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    checksum = digest.hexdigest()
    checksums = all_gather_objects(checksum, context)
    if len(set(checksums)) != 1:
        raise RuntimeError(f"ranks hold different weights after training (checksums {checksums})")
