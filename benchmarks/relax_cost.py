"""Where a default fit's time goes between unpenalised training runs: the dense fit and refits against the relaxed scores.

    .venv/bin/python benchmarks/relax_cost.py small|wide|friedman

Fits `engine_speed.make_table(name)` in process with the defaults (`--hidden 32`, one thread)
and counts each `Problem.train` run by kind: iterations, seconds, and how many relaxed runs went
past 100 iterations (the cap before relaxed scores ran until the validation loss stopped
improving).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import make_table

from glselect.config import ModelConfig, RunConfig
from glselect.path.problem import Problem
from glselect.pipeline import fit_frame

OLD_CAP = 100


def main() -> None:
    torch.set_num_threads(1)
    frame, _ = make_table(sys.argv[1], 20000)
    runs: list[tuple[str, int, float]] = []
    train_once = Problem.train

    def counted(problem, model, kind="train", key=0, neuron_penalty=0.0):
        started = time.perf_counter()
        result = train_once(problem, model, kind, key, neuron_penalty)
        runs.append((kind, result.n_iters, time.perf_counter() - started))
        return result

    Problem.train = counted
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        fit_frame(frame, RunConfig(table=None, target="y", out=Path(folder) / "out", model=ModelConfig(hidden=(32,)), threads=1))
    total = time.perf_counter() - started
    print(f"{sys.argv[1]}: whole fit {total:.1f} s")
    for kind in ("train", "relax"):
        iters = np.array([n for k, n, _ in runs if k == kind])
        seconds = sum(s for k, _, s in runs if k == kind)
        print(
            f"  {kind}: {iters.size} runs, {iters.sum()} iterations (median {np.median(iters):.0f}, max {iters.max()}), "
            f"{seconds:.1f} s; {int((iters > OLD_CAP).sum())} runs past {OLD_CAP} iterations"
        )


if __name__ == "__main__":
    main()
