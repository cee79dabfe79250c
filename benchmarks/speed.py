"""Full-path time, peak memory and selected-set F1 of glselect and LassoNet, side by side.

    .venv/bin/python benchmarks/speed.py --problem friedman --rows 20000 --columns 500
    .venv/bin/python benchmarks/speed.py --problem wide --rows 3000 --columns 5000 --only glselect

Each method runs in its own subprocess (so peak RSS is its own), one after the other, on the
same generated table. glselect: `glselect.run` with defaults (dense fit, full path to all-zero,
selection, refit, artifacts). LassoNet (`pip install lassonet`, optional): `LassoNetRegressor`
with the same hidden width and its defaults otherwise, `path()` from dense to all-zero; its
selected set is the lowest validation loss point of its path, as LassoNet itself picks.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TRUTH_FRIEDMAN = {"x0", "x1", "x2", "x3", "x4"}


def make_problem(problem: str, rows: int, columns: int, seed: int) -> tuple[pd.DataFrame, set[str]]:
    """Friedman #1 (x0..x4 matter) or a wide sparse problem (x0..x4 matter, linear + interactions)."""
    from glselect._synthetic import make_friedman1

    if problem == "friedman":
        return make_friedman1(rows, columns, noise=1.0, seed=seed), TRUTH_FRIEDMAN
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, columns)).astype(np.float32)
    y = 2 * X[:, 0] - 1.5 * X[:, 1] + np.tanh(2 * X[:, 2]) * 2 + X[:, 3] * X[:, 4] + 0.5 * rng.standard_normal(rows)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(columns)])
    frame["y"] = y
    return frame, TRUTH_FRIEDMAN


def f1(selected: set[str], truth: set[str]) -> float:
    hits = len(selected & truth)
    return 0.0 if not hits else 2 * hits / (len(selected) + len(truth))


def run_glselect(table: Path, hidden: int) -> dict:
    from glselect import ModelConfig, RunConfig, run

    started = time.perf_counter()
    result = run(RunConfig(table=table, target="y", out=table.with_suffix(".glselect"), model=ModelConfig(hidden=(hidden,))))
    return {
        "seconds": time.perf_counter() - started,
        "selected": result.summary["selected_features"],
        "n_lambdas": result.summary["path"]["n_steps"],
    }


def run_lassonet(table: Path, hidden: int) -> dict:
    import torch
    from lassonet import LassoNetRegressor

    frame = pd.read_parquet(table)
    X = frame.drop(columns="y").to_numpy(dtype=np.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = frame["y"].to_numpy(dtype=np.float32)
    y = (y - y.mean()) / y.std()
    torch.manual_seed(0)
    started = time.perf_counter()
    model = LassoNetRegressor(hidden_dims=(hidden,), verbose=0, random_state=0, torch_seed=0)
    path = model.path(X, y, return_state_dicts=False)
    seconds = time.perf_counter() - started
    best = min(path, key=lambda item: item.val_loss)
    names = frame.drop(columns="y").columns
    return {"seconds": seconds, "selected": [names[j] for j in np.flatnonzero(best.selected.cpu().numpy())], "n_lambdas": len(path)}


def child(args: argparse.Namespace) -> None:
    runner = run_glselect if args.method == "glselect" else run_lassonet
    outcome = runner(Path(args.table), args.hidden)
    outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(outcome))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["friedman", "wide"], default="friedman")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--columns", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["glselect", "lassonet"])
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        child(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "table.parquet"
        frame, truth = make_problem(args.problem, args.rows, args.columns, args.seed)
        frame.to_parquet(table, index=False)
        print(f"{args.problem}, {args.rows} rows x {args.columns} columns, hidden {args.hidden}\n")
        print("| method | wall seconds | peak RSS MB | lambdas | selected | F1 |")
        print("|---|---:|---:|---:|---|---:|")
        seconds = {}
        for method in [args.only] if args.only else ["glselect", "lassonet"]:
            command = [sys.executable, __file__, "--method", method, "--table", str(table), "--hidden", str(args.hidden)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"| {method} | failed: {done.stderr.strip().splitlines()[-1]} |||||")
                continue
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            seconds[method] = outcome["seconds"]
            selected = set(outcome["selected"])
            shown = ", ".join(sorted(selected, key=lambda name: int(name[1:]))[:12]) + (" ..." if len(selected) > 12 else "")
            print(
                f"| {method} | {outcome['seconds']:.1f} | {outcome['peak_rss_mb']:.0f} | {outcome['n_lambdas']} "
                f"| {len(selected)}: {shown} | {f1(selected, truth):.2f} |",
                flush=True,
            )
        if len(seconds) == 2:
            print(f"\nLassoNet / glselect time ratio: {seconds['lassonet'] / seconds['glselect']:.1f}x")


if __name__ == "__main__":
    main()
