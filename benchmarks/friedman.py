"""Friedman #1 known-answer benchmark: does glselect find exactly x0..x4, and how long does it take?

    .venv/bin/python benchmarks/friedman.py --rows 2000 --columns 100 --seeds 10
    .venv/bin/python benchmarks/friedman.py --rows 20000 --columns 500 --seeds 1

For each seed: a fresh Friedman #1 table (only x0..x4 matter), one `glselect fit` through the
public API (dense fit, full path to all-zero, selection, refit, artifacts), then the selected
set and the top-5 ranks are scored against the truth. Prints a markdown table and a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from glselect import ModelConfig, RunConfig, SelectionConfig, run
from glselect._synthetic import make_friedman1

TRUTH = {"x0", "x1", "x2", "x3", "x4"}


def score(selected: set[str]) -> tuple[float, float, float]:
    hits = len(selected & TRUTH)
    precision = hits / len(selected) if selected else 0.0
    recall = hits / len(TRUTH)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=ModelConfig().hidden[0])
    parser.add_argument("--rule", default=SelectionConfig().rule)
    parser.add_argument("--cv", type=int, default=SelectionConfig().cv, help="folds (0: one validation split)")
    parser.add_argument("--confirm", type=float, default=SelectionConfig().confirm, help="0: keep the whole chosen step")
    parser.add_argument("--json", type=Path, help="also write the per-seed results here")
    args = parser.parse_args()

    rows = []
    print(
        f"Friedman #1, {args.rows} rows x {args.columns} columns, hidden {args.hidden}, "
        f"rule {args.rule}, cv {args.cv}, confirm {args.confirm}\n"
    )
    print("| seed | top-5 ranks = x0..x4 | selected | exactly x0..x4 | F1 | path steps | fit seconds |")
    print("|---:|:---:|---|:---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            table = Path(folder) / f"friedman_{seed}.parquet"
            make_friedman1(args.rows, args.columns, noise=1.0, seed=1000 + seed).to_parquet(table, index=False)
            config = RunConfig(
                table=table,
                target="y",
                out=Path(folder) / f"out_{seed}",
                seed=seed,
                model=ModelConfig(hidden=(args.hidden,)),
                selection=SelectionConfig(rule=args.rule, cv=args.cv, confirm=args.confirm),
            )
            started = time.perf_counter()
            result = run(config)
            seconds = time.perf_counter() - started
            selected = set(result.summary["selected_features"])
            top5 = set(result.importances.features["feature"].head(5))
            precision, recall, f1 = score(selected)
            row = {
                "seed": seed,
                "top5_correct": top5 == TRUTH,
                "exact": selected == TRUTH,
                "selected": sorted(selected),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "n_steps": result.summary["path"]["n_steps"],
                "seconds": seconds,
                "path_seconds": result.summary["timings"]["path_seconds"],
            }
            rows.append(row)
            shown = ", ".join(sorted(selected, key=lambda name: int(name[1:])))
            print(
                f"| {seed} | {'yes' if row['top5_correct'] else 'no'} | {shown} | {'yes' if row['exact'] else 'no'} "
                f"| {f1:.2f} | {row['n_steps']} | {seconds:.1f} |",
                flush=True,
            )
    n = len(rows)
    print(
        f"\ntop-5 correct in {sum(r['top5_correct'] for r in rows)}/{n} seeds; "
        f"selected set exactly x0..x4 in {sum(r['exact'] for r in rows)}/{n}; "
        f"mean F1 {statistics.mean(r['f1'] for r in rows):.3f}; "
        f"median fit {statistics.median(r['seconds'] for r in rows):.1f} s "
        f"(path alone {statistics.median(r['path_seconds'] for r in rows):.1f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
