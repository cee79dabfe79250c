"""The solver's speed, side by side: glselect against LassoNet and a random forest, and the old solver against the new.

    .venv/bin/python benchmarks/engine_speed.py                       # every table below
    .venv/bin/python benchmarks/engine_speed.py --tables wide --old /tmp/old-glselect

Tables (generated, seed 1): ``friedman`` (Friedman #1, x0..x4 matter; --friedman-rows x 500),
``wide`` (200 x 10,000, ten true columns: five linear, five through tanh) and ``small``
(Friedman #1, 1,500 x 100). Every method runs in its own subprocess, one after the other, on the
same table, so the ratios are measured side by side on the same (noisy, shared) machine.

- glselect: ``glselect.run`` with defaults (hidden 32: dense fit, path, selection, confirmation,
  refit, permutation importances, artifacts). Inside the run it counts the solver's iterations
  (``ProximalGradient.run``) and the host reads made during them (every Tensor method that hands
  a value to Python: item, tolist, cpu, numpy, float, int, bool, index).
- glselect-blocks: the same with the solver reading its ``done`` flag once per 8 iterations, the
  policy it follows on a GPU (on a CPU it reads every iteration): the host reads a GPU would make.
- glselect-old: the same, run from a checkout of an older commit given by ``--old`` (its working
  directory, so its package shadows this one).
- LassoNet: ``LassoNetRegressor`` (hidden 32, its defaults), ``path()`` from dense to all-zero,
  the lowest validation loss point selected (as in benchmarks/speed.py).
- random forest: scikit-learn ``RandomForestRegressor(n_estimators=300)``, one fit on all rows
  (n_jobs=1). Every method uses one torch thread (see THREADS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()
# One torch thread for every method: on a shared 2-core machine a second thread waits at every
# parallel region for a core that another process holds (measured here: a 10,000-element
# reduction took 40 ms with two threads against 1 ms with one while other jobs ran).
THREADS = 1
HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


def make_table(name: str, friedman_rows: int) -> tuple[pd.DataFrame, set[str]]:
    from glselect._synthetic import make_friedman1

    truth = {f"x{j}" for j in range(5)}
    if name == "friedman":
        return make_friedman1(friedman_rows, 500, noise=1.0, seed=1), truth
    if name == "small":
        return make_friedman1(1500, 100, noise=1.0, seed=1), truth
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 10_000)).astype(np.float32)
    coef = np.linspace(2.0, 1.0, 10)
    y = X[:, :5] @ coef[:5] + np.tanh(2 * X[:, 5:10]) @ coef[5:] + 0.5 * rng.standard_normal(200)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["y"] = y
    return frame, {f"x{j}" for j in range(10)}


def f1(selected: set[str], truth: set[str]) -> float:
    hits = len(selected & truth)
    return 0.0 if not hits else 2 * hits / (len(selected) + len(truth))


def run_glselect(table: Path, blocks: bool = False) -> dict:
    """One default fit, counting solver iterations and the host reads made inside solver runs.

    ``blocks``: the solver reads its ``done`` flag once per ``fista.READ_EVERY`` iterations, as it
    does on a GPU, instead of every iteration (the CPU's default): the reads a GPU would make.
    """
    import torch

    from glselect import ModelConfig, RunConfig, run
    from glselect.solve import fista

    if blocks:
        fista.default_read_every = lambda device: fista.READ_EVERY

    counts = {"iters": 0, "reads": 0, "solves": 0}
    inside = [False]

    def counting(original):
        def wrapper(self, *args, **kwargs):
            if inside[0]:
                counts["reads"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in HOST_READS:
        setattr(torch.Tensor, name, counting(getattr(torch.Tensor, name)))
    solve = fista.ProximalGradient.run

    def counted_run(self, *args, **kwargs):
        inside[0] = True
        try:
            result = solve(self, *args, **kwargs)
        finally:
            inside[0] = False
        counts["iters"] += result.n_iters
        counts["solves"] += 1
        return result

    fista.ProximalGradient.run = counted_run
    started = time.perf_counter()
    config = RunConfig(
        table=table, target="y", out=table.with_suffix(f".out{os.getpid()}"), model=ModelConfig(hidden=(32,)), threads=THREADS
    )
    result = run(config)
    return {
        "seconds": time.perf_counter() - started,
        "selected": result.summary["selected_features"],
        "lambdas": result.summary["path"]["n_steps"],
        **counts,
    }


def run_lassonet(table: Path) -> dict:
    """LassoNet's default path as ``benchmarks/speed.py`` runs it, with one torch thread."""
    import torch
    from speed import run_lassonet as lassonet_path

    torch.set_num_threads(THREADS)
    outcome = lassonet_path(table, hidden=32)
    return {"seconds": outcome["seconds"], "selected": outcome["selected"], "lambdas": outcome["n_lambdas"]}


def run_forest(table: Path) -> dict:
    from sklearn.ensemble import RandomForestRegressor

    frame = pd.read_parquet(table)
    X, y = frame.drop(columns="y").to_numpy(), frame["y"].to_numpy()
    started = time.perf_counter()
    RandomForestRegressor(n_estimators=300, n_jobs=1, random_state=0).fit(X, y)
    return {"seconds": time.perf_counter() - started, "selected": [], "lambdas": 0}


def child(method: str, table: Path) -> None:
    runner = {
        "glselect": run_glselect,
        "glselect-blocks": lambda path: run_glselect(path, blocks=True),
        "glselect-old": run_glselect,
        "lassonet": run_lassonet,
        "forest": run_forest,
    }[method]
    print(json.dumps(runner(table)))


def launch(method: str, table: Path, old: Path | None, timeout: float) -> dict | str:
    command = [sys.executable, str(HERE), "--method", method, "--table", str(table)]
    environment = dict(os.environ)
    cwd = None
    if method == "glselect-old":
        cwd = old  # the old package, first on sys.path from its own directory
        environment["PYTHONPATH"] = str(old)
    else:
        environment["PYTHONPATH"] = str(HERE.parent.parent)
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["small", "wide", "friedman"], choices=["small", "wide", "friedman"])
    parser.add_argument("--friedman-rows", type=int, default=20000)
    parser.add_argument("--old", type=Path, help="a checkout of the old commit (git clone + checkout)")
    parser.add_argument("--methods", nargs="+", default=["glselect", "glselect-blocks", "glselect-old", "lassonet", "forest"])
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per method before it is cut off")
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        child(args.method, Path(args.table))
        return
    methods = [m for m in args.methods if m != "glselect-old" or args.old is not None]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tables:
            frame, truth = make_table(name, args.friedman_rows)
            table = Path(folder) / f"{name}.parquet"
            frame.to_parquet(table, index=False)
            print(f"\n{name}: {frame.shape[0]} rows x {frame.shape[1] - 1} columns, true: {len(truth)}\n")
            print("| method | seconds | ratio to glselect | lambdas | solver iterations | host reads / iteration | selected | F1 |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            outcomes = {}
            for method in methods:
                if method == "forest" and name != "small":
                    continue
                outcome = launch(method, table, args.old, args.timeout)
                outcomes[method] = outcome
                if isinstance(outcome, str):
                    print(f"| {method} | {outcome} | | | | | | |", flush=True)
                    continue
                base = outcomes.get("glselect")
                ratio = outcome["seconds"] / base["seconds"] if isinstance(base, dict) else float("nan")
                iters = outcome.get("iters")
                reads = f"{outcome['reads'] / iters:.3f}" if iters else ""
                selected = set(outcome["selected"])
                quality = (f"{len(selected)}", f"{f1(selected, truth):.2f}") if method != "forest" else ("", "")
                print(
                    f"| {method} | {outcome['seconds']:.1f} | {ratio:.2f} | {outcome['lambdas'] or ''} | {iters or ''} "
                    f"| {reads} | {quality[0]} | {quality[1]} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
