"""How glselect's full path time grows with rows and with columns.

    .venv/bin/python benchmarks/scaling.py

Friedman #1 tables (x0..x4 matter), default settings; one fit per size through `glselect.run`
(dense fit, path to all-zero, selection, refit). Prints the times, and the exponent b of a
least-squares fit time ~ size^b for each sweep (b = 1: linear).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from glselect import RunConfig, run
from glselect._synthetic import make_friedman1

ROW_SWEEP = [(2500, 100), (5000, 100), (10000, 100), (20000, 100)]
COLUMN_SWEEP = [(5000, 50), (5000, 100), (5000, 200), (5000, 400)]


def timed(rows: int, columns: int, folder: Path) -> tuple[float, int]:
    table = folder / f"f_{rows}_{columns}.parquet"
    make_friedman1(rows, columns, noise=1.0, seed=7).to_parquet(table, index=False)
    started = time.perf_counter()
    result = run(RunConfig(table=table, target="y", out=folder / f"out_{rows}_{columns}"))
    return time.perf_counter() - started, result.summary["path"]["n_steps"]


def exponent(sizes: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for label, sweep, axis in (("rows", ROW_SWEEP, 0), ("columns", COLUMN_SWEEP, 1)):
            print("\n| rows | columns | lambdas | seconds |\n|---:|---:|---:|---:|")
            seconds = []
            for rows, columns in sweep:
                elapsed, n_steps = timed(rows, columns, folder)
                seconds.append(elapsed)
                print(f"| {rows} | {columns} | {n_steps} | {elapsed:.1f} |", flush=True)
            print(f"\ntime ~ {label}^{exponent([size[axis] for size in sweep], seconds):.2f}")


if __name__ == "__main__":
    main()
