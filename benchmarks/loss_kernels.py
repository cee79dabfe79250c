"""The multiclass loss's CPU kernel: a row's few classes contiguous (torch's usual layout) against the
classes laid across rows (``Multiclass.unweighted_row_loss``), one thread, per call.

    .venv/bin/python benchmarks/loss_kernels.py > benchmarks/results/loss_kernels.md

Per shape (rows x classes, float32): microseconds per call of the per-row cross-entropy alone (as
the solver's trial steps take it, without gradients) and with its backward pass (as a gradient
step takes it), best of 5 repeats, and the largest difference between the two layouts' values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

SHAPES = [(216, 3), (864, 8), (1600, 10), (5000, 10), (900, 26)]


def rows_major(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y, reduction="none")


def classes_across_rows(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.t().unsqueeze(0), y.unsqueeze(0), reduction="none")[0]


def per_call(run: Callable[[], object], calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    torch.set_num_threads(1)
    print("one thread, float32, best of 5; microseconds per call\n")
    print("| rows x classes | row-major loss | across rows | row-major loss + backward | across rows | largest difference |")
    print("|---|---:|---:|---:|---:|---:|")
    for rows, classes in SHAPES:
        generator = torch.Generator().manual_seed(0)
        out = (torch.randn(rows, classes, generator=generator) * 3).requires_grad_()
        y = torch.randint(0, classes, (rows,), generator=generator)
        cells = []
        for with_backward in (False, True):
            for loss in (rows_major, classes_across_rows):
                if with_backward:
                    cells.append(per_call(lambda loss=loss, out=out, y=y: loss(out, y).mean().backward(), 200))
                else:
                    with torch.no_grad():
                        cells.append(per_call(lambda loss=loss, out=out, y=y: loss(out, y), 500))
        difference = float((rows_major(out, y) - classes_across_rows(out, y)).abs().max().detach())
        print(f"| {rows} x {classes} | " + " | ".join(f"{cell:.0f}" for cell in cells) + f" | {difference:.1e} |")


if __name__ == "__main__":
    main()
