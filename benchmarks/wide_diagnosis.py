"""Why the selection benchmark's `wide` problem loses its U-shape (x6) and wave (x7) columns.

    .venv/bin/python benchmarks/wide_diagnosis.py [--seed 0]

Two default fits (one torch thread) on `selection.make_wide(seed)` (600 x 2,000; y = six linear
terms x0..x5 + 0.7 (x6^2 - 1) + 0.7 sin(2 x7) + noise):

1. the table itself: where the path ranks each true column (`importances.csv` `rank`) and where
   the dense network's first-layer column norm (`dense_norm`) ranks it among all 2,000, the two
   quantities an adaptive second stage would weight the penalty by;
2. the ideal conditional second stage: the residual of an ordinary least-squares fit on x0..x5,
   against the 1,994 other columns: whether anything is found once the linear part is gone.

Writes `benchmarks/results/wide_diagnosis.md`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from selection import make_wide  # noqa: E402

LINEAR = [f"x{j}" for j in range(6)]
TRUE = [f"x{j}" for j in range(8)]


def fit(table: Path, out: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "glselect",
        "fit",
        str(table),
        "--target",
        "y",
        "--out",
        str(out),
        "--force",
        "--quiet",
        "--json",
        "--threads",
        "1",
    ]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "wide_diagnosis.md")
    args = parser.parse_args()
    frame = make_wide(args.seed).frame
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frame.to_csv(folder / "wide.csv", index=False)
        summary = fit(folder / "wide.csv", folder / "wide.glselect")
        ranked = pd.read_csv(folder / "wide.glselect" / "importances.csv")
        design = np.c_[np.ones(len(frame)), frame[LINEAR].to_numpy()]
        coefficients = np.linalg.lstsq(design, frame["y"].to_numpy(), rcond=None)[0]
        residual = frame.drop(columns=[*LINEAR, "y"]).copy().assign(y=frame["y"].to_numpy() - design @ coefficients)
        residual.to_csv(folder / "residual.csv", index=False)
        residual_summary = fit(folder / "residual.csv", folder / "residual.glselect")
        residual_ranked = pd.read_csv(folder / "residual.glselect" / "importances.csv")
    ranked["dense_rank"] = ranked["dense_norm"].rank(ascending=False, method="min").astype(int)
    quartiles = ranked["dense_norm"].quantile([0.25, 0.5, 0.75]).to_numpy()
    residual_rank = dict(zip(residual_ranked["feature"], residual_ranked["rank"]))
    lines = [
        f"# `wide`, seed {args.seed}: where glselect ranks the true columns (`benchmarks/wide_diagnosis.py`)",
        "",
        f"Default fit, one thread: selected {', '.join(summary['selected_features']) or 'nothing'}; test R2 dense "
        f"{summary['metrics']['dense']['r2']:.3f}, pruned {summary['metrics']['pruned']['r2']:.3f}.",
        "",
        "| column | path rank | selected | dense norm | dense-norm rank of 2,000 | rank in the residual fit (1,994 columns) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for _, row in ranked[ranked["feature"].isin(TRUE)].sort_values("feature").iterrows():
        lines.append(
            f"| {row.feature} | {row['rank']} | {row.selected} | {row.dense_norm:.4f} | {row.dense_rank} | "
            f"{residual_rank.get(row.feature, '-')} |"
        )
    lines += [
        "",
        f"Dense norms of all 2,000 columns: quartiles {quartiles[0]:.4f} / {quartiles[1]:.4f} / {quartiles[2]:.4f}.",
        f"Residual of OLS on x0..x5, fitted on the other 1,994 columns: selected "
        f"{', '.join(residual_summary['selected_features']) or 'nothing'}; test R2 dense "
        f"{residual_summary['metrics']['dense']['r2']:.3f}, pruned {residual_summary['metrics']['pruned']['r2']:.3f}.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
