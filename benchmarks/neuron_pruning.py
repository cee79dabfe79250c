"""How far --neuron-penalty shrinks the saved model, and what it costs in held-out R^2.

    .venv/bin/python benchmarks/neuron_pruning.py

Friedman #1 (3,000 rows x 30 columns, only x0..x4 matter), --hidden 64, one fit per penalty.
Columns: hidden units kept, parameters of the dense model and of the saved (pruned) model, and
the held-out test R^2 of both.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from glselect import ModelConfig, RunConfig, run
from glselect._synthetic import make_friedman1

PENALTIES = (0.0, 0.003, 0.01, 0.03)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "friedman.parquet"
        make_friedman1(3000, 30, noise=1.0, seed=2026).to_parquet(table, index=False)
        print("| neuron penalty | hidden units kept | dense params | saved params | ratio | dense test R2 | saved test R2 |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for penalty in PENALTIES:
            config = RunConfig(
                table=table,
                target="y",
                out=Path(folder) / f"out_{penalty}",
                model=ModelConfig(hidden=(64,), neuron_penalty=penalty),
            )
            summary = run(config).summary
            sizes, metrics = summary["sizes"], summary["metrics"]
            print(
                f"| {penalty:g} | {sizes['pruned_hidden'][0]} / 64 | {sizes['dense_parameters']} | {sizes['pruned_parameters']} "
                f"| {sizes['dense_parameters'] / sizes['pruned_parameters']:.1f}x | {metrics['dense']['r2']:.4f} "
                f"| {metrics['pruned']['r2']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
