"""Pair two `real_datasets.py` result files split by split: one method's top-k scores from one run
against another method's from another run on the same splits (a split is its seed).

    .venv/bin/python benchmarks/paired_topk.py benchmarks/results/real_datasets_host.json glselect \\
        benchmarks/results/real_datasets_auto_10splits.json LassoNet

A method that does not depend on the other (LassoNet does not read glselect) need not be run again
when only the other changed: its scores on the same seeds are the same splits' scores. Prints, per
dataset and downstream model, the two means, the paired difference (first less second, mean ± its
standard error over splits) and the splits won / level / lost.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from methods import mean_se


def scores(path: Path, method: str) -> dict[tuple[str, int], dict]:
    return {(row["dataset"], row["seed"]): row for row in json.loads(path.read_text())["rows"] if row["method"] == method}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("first_method")
    parser.add_argument("second", type=Path)
    parser.add_argument("second_method")
    parser.add_argument("--model", choices=["linear", "forest"], default="linear")
    args = parser.parse_args()
    ours, theirs = scores(args.first, args.first_method), scores(args.second, args.second_method)
    print(f"{args.first_method} ({args.first.name}) against {args.second_method} ({args.second.name}), {args.model} model\n")
    print(f"| dataset (k) | {args.first_method} | {args.second_method} | paired difference | splits won / level / lost |")
    print("|---|---:|---:|---:|---:|")
    for dataset in dict.fromkeys(name for name, _ in ours):
        keys = sorted(key for key in ours if key[0] == dataset and key in theirs)
        a = [ours[key][args.model] for key in keys]
        b = [theirs[key][args.model] for key in keys]
        differences = [x - y for x, y in zip(a, b)]
        won = sum(d > 1e-12 for d in differences)
        lost = sum(d < -1e-12 for d in differences)
        k = ours[keys[0]]["k"]
        first, second = f"{statistics.mean(a):.3f} ± {statistics.stdev(a):.3f}", f"{statistics.mean(b):.3f} ± {statistics.stdev(b):.3f}"
        paired, tally = mean_se(differences, 3), f"{won} / {len(keys) - won - lost} / {lost}"
        print(f"| {dataset} ({k}) | {first} | {second} | {paired} | {tally} |")


if __name__ == "__main__":
    main()
