"""Within-group selection: the sparse group lasso (--l1-ratio) against the plain group lasso.

    .venv/bin/python benchmarks/within_group.py                          # both tasks, 5 seeds (see below)
    .venv/bin/python benchmarks/within_group.py --seeds 1 --ratios 0 0.5

Problem (a fresh table per seed): 10 groups of 5 standard normal columns, 1,000 rows, and a
group map that declares them. In each of 3 true groups ONE column matters, the other four are
noise; the 7 other groups are all noise. Regression: y = 1.5 z0 + 2 sin(1.5 z1) + 1.5 tanh(2 z2)
+ noise (sd 0.5), where z_k is the one true column of true group k; classification: the label is
whether that sum (with the same noise) is above its median.

Each l1 ratio runs glselect with its defaults otherwise (--hidden 32, the 1se rule, confirmation),
in memory through the Python API. Scores per seed: column-level precision, recall and F1 of the
selected table columns against the 3 true columns (A = 0 keeps a group whole, so it selects 5
columns per true group and its column precision is at most 0.2); group-level F1 of the selected
groups against the 3 true groups; the refit model's held-out test metric (R2, or ROC AUC for
the label); columns selected; seconds for the whole fit.

Run time: 17 minutes on the shared 2-core machine while the test suite ran beside it (2 tasks x
5 seeds x 4 ratios = 40 fits; the `seconds` column is inflated by that load several times).
Prints one markdown table per task (mean +- std over seeds) and writes them to `--out`, with the
per-seed numbers beside it (suffix `.json`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glselect import RunConfig
from glselect.config import ModelConfig
from glselect.pipeline import fit_frame

N_ROWS, N_GROUPS, GROUP_SIZE, N_TRUE = 1000, 10, 5, 3
TARGET = "y"


def make_problem(seed: int, task: str) -> tuple[pd.DataFrame, dict[str, str], set[str]]:
    """The table, its group map (column -> group) and the true columns; the true column's place
    inside its group is drawn per group, so no method gains from column order."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"g{g}_c{c}": rng.standard_normal(N_ROWS) for g in range(N_GROUPS) for c in range(GROUP_SIZE)})
    group_of = {name: name.split("_")[0] for name in frame.columns}
    true_groups = rng.choice(N_GROUPS, N_TRUE, replace=False)
    truth = {f"g{g}_c{rng.integers(GROUP_SIZE)}" for g in true_groups}
    z = [frame[name].to_numpy() for name in sorted(truth)]
    signal = 1.5 * z[0] + 2 * np.sin(1.5 * z[1]) + 1.5 * np.tanh(2 * z[2]) + 0.5 * rng.standard_normal(N_ROWS)
    frame[TARGET] = signal if task == "regression" else np.where(signal > np.median(signal), "high", "low")
    return frame, group_of, truth


def f1(selected: set[str], truth: set[str]) -> tuple[float, float, float]:
    hits = len(selected & truth)
    precision = hits / len(selected) if selected else 0.0
    recall = hits / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall) if hits else 0.0


def run_one(seed: int, task: str, l1_ratio: float) -> dict[str, float]:
    frame, group_of, truth = make_problem(seed, task)
    config = RunConfig(table=Path("<within_group>"), target=TARGET, seed=seed, model=ModelConfig(l1_ratio=l1_ratio))
    started = time.perf_counter()
    summary = fit_frame(frame, config, group_of).summary
    seconds = time.perf_counter() - started
    selected = set(summary["selected_features"])
    precision, recall, column_f1 = f1(selected, truth)
    group_f1 = f1(set(summary["selected_groups"]), {group_of[name] for name in truth})[2]
    metric = summary["metrics"]["pruned"]["r2" if task == "regression" else "auc"]
    return {
        "column_precision": precision,
        "column_recall": recall,
        "column_f1": column_f1,
        "group_f1": group_f1,
        "test_metric": metric,
        "n_selected": len(selected),
        "seconds": seconds,
    }


def table(task: str, results: dict[float, list[dict[str, float]]]) -> str:
    metric = "test R2" if task == "regression" else "test ROC AUC"
    lines = [
        f"| --l1-ratio | column precision | column recall | column F1 | group F1 | {metric} | columns selected | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = ("column_precision", "column_recall", "column_f1", "group_f1", "test_metric", "n_selected", "seconds")
    for ratio, runs in results.items():
        cells = []
        for key in keys:
            values = [run[key] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            digits = 1 if key in ("n_selected", "seconds") else 3
            cells.append(f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}")
        lines.append(f"| {ratio:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument("--tasks", nargs="+", default=["regression", "classification"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/within_group.md"))
    args = parser.parse_args()
    sections, raw = [], {}
    for task in args.tasks:
        results = {ratio: [] for ratio in args.ratios}
        for seed in range(args.seeds):
            for ratio in args.ratios:
                results[ratio].append(run_one(seed, task, ratio))
                print(f"{task} seed {seed} l1_ratio {ratio:g}: {results[ratio][-1]}", flush=True)
        sections.append(f"### {task} ({args.seeds} seeds, mean ± std)\n\n{table(task, results)}\n")
        raw[task] = {str(ratio): runs for ratio, runs in results.items()}
        print(sections[-1], flush=True)
    args.out.write_text("\n".join(sections))
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
