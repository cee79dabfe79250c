"""How exact the path's solves are, and what solving them further costs.

    .venv/bin/python benchmarks/convergence.py --table sample --settings 0.01,50 0.01,300,nostall 0.01,1000,nostall
    .venv/bin/python benchmarks/convergence.py --table small --settings 0.01,50 0.01,300,nostall

Each setting is ``tol,max_iters_per_lambda[,nostall]``: ``--tol``, ``--max-iters-per-lambda``, and
``nostall`` to switch the solver's stall test off (``glselect.solve.fista.STALL_TOL = 0``), so that
runs go on until they converge or the budget ends. One default in-process fit per setting, one
thread, on ``sample`` (sample_data/friedman.csv with its groups) or one of benchmarks/engine_speed.py's
tables (``small`` 1,500 x 100, ``friedman`` with ``--friedman-rows``). Prints the wall seconds, lambdas,
unconverged steps, the solver iterations of the path (each step's last run), the worst and median
optimality (the gradient mapping relative to lambda; at most tol when converged by it) and the
selected columns.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def table(name: str, friedman_rows: int) -> tuple[pd.DataFrame, dict[str, str] | None]:
    if name == "sample":
        groups = pd.read_csv(HERE.parent / "sample_data" / "groups.csv")
        return pd.read_csv(HERE.parent / "sample_data" / "friedman.csv"), dict(zip(groups["feature"], groups["group"]))
    from engine_speed import make_table

    return make_table(name, friedman_rows)[0], None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="sample", choices=["sample", "small", "friedman"])
    parser.add_argument("--friedman-rows", type=int, default=4000)
    parser.add_argument("--settings", nargs="+", default=["0.01,50", "0.01,300,nostall"])
    args = parser.parse_args()
    import glselect.solve.fista as fista
    from glselect.config import ModelConfig, PathConfig, RunConfig
    from glselect.pipeline import fit_frame

    torch.set_num_threads(1)
    frame, groups = table(args.table, args.friedman_rows)
    stall_tol = fista.STALL_TOL
    print(f"{args.table}: {frame.shape[0]:,} x {frame.shape[1] - 1}, hidden 32, one thread\n")
    print(
        "| tol | iterations per lambda | stall test | seconds | lambdas | unconverged | path iterations "
        "| worst optimality | median optimality | selected |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for setting in args.settings:
        tol, budget, *flags = setting.split(",")
        fista.STALL_TOL = 0.0 if "nostall" in flags else stall_tol
        config = RunConfig(
            table=None,
            target="y",
            out=Path(tempfile.mkdtemp()) / "out",
            model=ModelConfig(hidden=(32,)),
            threads=1,
            path=PathConfig(tol=float(tol), max_iters_per_lambda=int(budget)),
        )
        started = time.perf_counter()
        result = fit_frame(frame, config, groups)
        seconds = time.perf_counter() - started
        steps = result.path.steps[1:]
        optimality = np.array([step.optimality for step in steps])
        optimality = optimality[np.isfinite(optimality)]
        print(
            f"| {tol} | {budget} | {'off' if 'nostall' in flags else 'on'} | {seconds:.1f} | {len(steps)} "
            f"| {sum(not step.converged for step in steps)} | {sum(step.n_iters for step in steps):,} "
            f"| {optimality.max():.3f} | {np.median(optimality):.3f} | {', '.join(result.summary['selected_features'])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
