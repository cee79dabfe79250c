"""How well can any k columns of a small table do? A check on the default answer's count target.

    .venv/bin/python benchmarks/subset_ceiling.py --table wine --k 5 --seeds 10
    .venv/bin/python benchmarks/subset_ceiling.py --table digits --k 19 --seeds 10 --greedy

Per seed, the rows are split 80/20 (stratified). On the training rows every k-column subset is
scored by 5-fold cross-validated accuracy of linear discriminant analysis; the best one is
then refitted on all training rows and scored on the test rows beside all columns. That is an
honest best k (chosen without the test rows, over every subset, which no search can beat by
more than its luck), and "oracle" is the best test accuracy any k-subset reaches: an upper bound
that has looked at the test rows. If the honest best k loses accuracy against all columns, a
default answer that keeps k columns cannot be as good as all of them on this table with this
model class. ``--greedy``, for tables with too many subsets: forward selection instead, adding the
column that raises the cross-validated accuracy most until k are in (no oracle); it can miss the
best subset, so its loss is what one good search pays, not a bound.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from pathlib import Path

import numpy as np
from default_answer import TABLES
from methods import TARGET, mean_se, write_table
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def model() -> object:
    # linear discriminant analysis: a linear classifier fitted in closed form, fast enough to score
    # every subset (wine is its textbook case)
    return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())


def cv_accuracy(X: np.ndarray, y: np.ndarray, columns: list[int], folds: StratifiedKFold) -> float:
    try:
        return float(cross_val_score(model(), X[:, columns], y, cv=folds).mean())
    except (IndexError, ValueError):  # a lone column constant on some fold's rows (a rare digits pixel)
        return 0.0


def forward(X: np.ndarray, y: np.ndarray, k: int, folds: StratifiedKFold) -> list[int]:
    """Forward selection: the column that raises the cross-validated accuracy most, until k are in."""
    chosen: list[int] = []
    while len(chosen) < k:
        rest = [column for column in range(X.shape[1]) if column not in chosen]
        chosen.append(max(rest, key=lambda column: cv_accuracy(X, y, [*chosen, column], folds)))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=[table.name for table in TABLES if table.task == "classification"], default="wine")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--greedy", action="store_true", help="forward selection instead of every subset")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    frame = next(table for table in TABLES if table.name == args.table).load()
    if frame is None:
        raise SystemExit(f"{args.table}: not available")
    features = frame.drop(columns=TARGET)
    X = features.fillna(features.mean()).fillna(0.0).to_numpy(dtype=np.float64)
    X = X[:, X.std(axis=0) > 0]  # a constant column (digits' border pixels) carries nothing, and breaks LDA alone
    y = frame[TARGET].astype(str).to_numpy()
    subsets = [] if args.greedy else list(itertools.combinations(range(X.shape[1]), args.k))
    rows = []
    for seed in range(args.seeds):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        if args.greedy:
            best = forward(X_train, y_train, args.k, folds)
        else:
            best = list(subsets[int(np.argmax([cv_accuracy(X_train, y_train, list(s), folds) for s in subsets]))])
        test = {}
        for name, columns in (("all", list(range(X.shape[1]))), ("best", best)):
            test[name] = model().fit(X_train[:, columns], y_train).score(X_test[:, columns], y_test)
        oracle = max((model().fit(X_train[:, list(s)], y_train).score(X_test[:, list(s)], y_test) for s in subsets), default=math.nan)
        rows.append((test["all"], test["best"], oracle))
        print(f"seed {seed}: all {test['all']:.3f}, best {args.k} by CV {test['best']:.3f}, oracle {oracle:.3f}", flush=True)

    searched = f"forward selection of {args.k}" if args.greedy else f"every {args.k}-column subset ({len(subsets)})"
    lines = [
        f"{args.table}, {X.shape[1]} columns, {searched}, {args.seeds} stratified 80/20 splits, "
        "linear discriminant analysis; points of test accuracy against all columns, mean ± standard error over seeds",
        "",
        "| all columns | best k by cross-validation, less all | oracle best k, less all |",
        "|---:|---:|---:|",
        f"| {statistics.mean(r[0] for r in rows):.3f} | {mean_se([100 * (r[1] - r[0]) for r in rows], 2)} "
        f"| {'' if args.greedy else mean_se([100 * (r[2] - r[0]) for r in rows], 2)} |",
    ]
    write_table("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
