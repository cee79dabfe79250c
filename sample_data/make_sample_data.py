"""Regenerate sample_data/: a Friedman #1 table with a known answer, and a group map for it.

    python sample_data/make_sample_data.py

Only x0..x4 drive y (y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise); x5..x29
are pure noise. groups.csv puts the interacting pair x0, x1 in one group and the noise columns
in blocks of five, so the known answer is: groups interaction, x2, x3, x4 (columns x0..x4).
"""

from __future__ import annotations

from pathlib import Path

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


if __name__ == "__main__":
    main()
