"""Two runs of `benchmarks/default_answer.py`, paired split by split: each table's columns kept and
pruned-minus-dense metric in both, and the paired difference of their pruned test metrics.

    .venv/bin/python benchmarks/paired_default_answer.py NEW.json [NEW2.json ...] --against OLD.json [OLD2.json ...]

Each run's rows are keyed by (table, seed), so a seed is one split of the rows in both runs: the
paired difference (new pruned metric less old, mean ± its standard error over the common seeds)
removes the split's own luck, which dominates either run's "kept - dense" on a small test split.
"Same answer": the same number of columns kept and the same pruned metric.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from methods import mean_se, write_table


def rows_of(paths: list[Path]) -> dict[tuple[str, int], dict]:
    return {(row["table"], row["seed"]): row for path in paths for row in json.loads(path.read_text())}


def kept(rows: dict[tuple[str, int], dict], keys: list[tuple[str, int]]) -> float:
    return statistics.mean(rows[key]["kept"] for key in keys)


def lost(rows: dict[tuple[str, int], dict], keys: list[tuple[str, int]]) -> list[float]:
    """Pruned less dense test metric, in points, per seed."""
    return [100 * (rows[key]["pruned"] - rows[key]["dense"]) for key in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("new", type=Path, nargs="+")
    parser.add_argument("--against", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    new, old = rows_of(args.new), rows_of(args.against)
    lines = [
        f"new: {', '.join(path.name for path in args.new)}; old: {', '.join(path.name for path in args.against)}; "
        "metric differences in points (x 100), mean ± standard error over the common seeds",
        "",
        "| table | seeds | kept, new (old) | kept - dense, new | kept - dense, old | pruned, new - old, paired | same answer |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for table in sorted({table for table, _ in new}):
        keys = sorted(key for key in new if key[0] == table and key in old)
        if not keys:
            continue
        paired = [100 * (new[key]["pruned"] - old[key]["pruned"]) for key in keys]
        same = sum(new[key]["kept"] == old[key]["kept"] and new[key]["pruned"] == old[key]["pruned"] for key in keys)
        lines.append(
            f"| {table} | {len(keys)} | {kept(new, keys):.1f} ({kept(old, keys):.1f}) "
            f"| {mean_se(lost(new, keys), 2)} | {mean_se(lost(old, keys), 2)} "
            f"| {mean_se(paired, 2)} | {same} of {len(keys)} |"
        )
    write_table("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
