"""Regenerate sample_data/: a Friedman #1 table with a known answer, and a group map for it;
and a small table whose columns stand in for each other.

    python sample_data/make_sample_data.py

Only x0..x4 drive y (y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise); x5..x29
are pure noise. groups.csv puts the interacting pair x0, x1 in one group and the noise columns
in blocks of five, so the known answer is: groups interaction, x2, x3, x4 (columns x0..x4).

stand_ins.csv: y = 3 height_cm - 2 sin(2 age) + noise over 1,000 rows; height_in is height_cm in
inches (an exact substitute), shoe_size is height_cm plus noise (a proxy: nothing of its own),
n1..n4 are noise. The answer: two columns, one of the heights and age.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glselect._synthetic import make_friedman1
from glselect.data.io import format_group_map

HERE = Path(__file__).resolve().parent
N_ROWS, N_COLUMNS, SEED = 3000, 30, 2026


def main() -> None:
    table = make_friedman1(N_ROWS, N_COLUMNS, noise=1.0, seed=SEED).round(5)
    table.to_csv(HERE / "friedman.csv", index=False)
    mapping = {"x0": "interaction", "x1": "interaction"}
    for j in range(5, N_COLUMNS):
        mapping[f"x{j}"] = f"noise_block_{(j - 5) // 5 + 1}"
    (HERE / "groups.csv").write_text(format_group_map(mapping), encoding="utf-8")
    stand_ins_table().to_csv(HERE / "stand_ins.csv", index=False)


def stand_ins_table(n_rows: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    table = pd.DataFrame({name: rng.standard_normal(n_rows).round(4) for name in ["height_cm", "age", "n1", "n2", "n3", "n4"]})
    table["height_in"] = (table["height_cm"] / 2.54).round(6)
    table["shoe_size"] = (table["height_cm"] + 0.8 * rng.standard_normal(n_rows)).round(4)
    table["y"] = (3 * table["height_cm"] - 2 * np.sin(2 * table["age"]) + 0.5 * rng.standard_normal(n_rows)).round(4)
    return table[["height_cm", "height_in", "shoe_size", "age", "n1", "n2", "n3", "n4", "y"]]


if __name__ == "__main__":
    main()
