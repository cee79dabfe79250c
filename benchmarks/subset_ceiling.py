"""How well can any k columns of a small table do? A check on the default answer's count target.

    .venv/bin/python benchmarks/subset_ceiling.py --table wine --k 5 --seeds 10

Per seed, the rows are split 80/20 (stratified). On the training rows every k-column subset is
scored by 5-fold cross-validated accuracy of linear discriminant analysis; the best one is
then refitted on all training rows and scored on the test rows beside all columns. That is an
honest best k (chosen without the test rows, over every subset, which no search can beat by
more than its luck), and "oracle" is the best test accuracy any k-subset reaches: an upper bound
that has looked at the test rows. If the honest best k loses accuracy against all columns, a
default answer that keeps k columns cannot be as good as all of them on this table with this
model class.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TABLES = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}


def model() -> object:
    # linear discriminant analysis: a linear classifier fitted in closed form, fast enough to score
    # every subset (wine is its textbook case)
    return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=sorted(TABLES), default="wine")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    bunch = TABLES[args.table]()
    X, y = bunch.data, bunch.target  # type: ignore[attr-defined]
    subsets = list(itertools.combinations(range(X.shape[1]), args.k))
    rows = []
    for seed in range(args.seeds):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        cv = [cross_val_score(model(), X_train[:, list(s)], y_train, cv=folds).mean() for s in subsets]
        best = list(subsets[int(np.argmax(cv))])
        test = {}
        for name, columns in (("all", list(range(X.shape[1]))), ("best", best)):
            test[name] = model().fit(X_train[:, columns], y_train).score(X_test[:, columns], y_test)
        oracle = max(model().fit(X_train[:, list(s)], y_train).score(X_test[:, list(s)], y_test) for s in subsets)
        rows.append((test["all"], test["best"], oracle))
        print(f"seed {seed}: all {test['all']:.3f}, best {args.k} by CV {test['best']:.3f}, oracle {oracle:.3f}", flush=True)

    def mean_se(values: list[float]) -> str:
        return f"{statistics.mean(values):+.2f} ± {statistics.stdev(values) / math.sqrt(len(values)):.2f}"

    lines = [
        f"{args.table}, {X.shape[1]} columns, every {args.k}-column subset ({len(subsets)}), {args.seeds} stratified 80/20 splits, "
        "linear discriminant analysis; points of test accuracy against all columns, mean ± standard error over seeds",
        "",
        "| all columns | best k by cross-validation, less all | oracle best k, less all |",
        "|---:|---:|---:|",
        f"| {statistics.mean(r[0] for r in rows):.3f} | {mean_se([100 * (r[1] - r[0]) for r in rows])} "
        f"| {mean_se([100 * (r[2] - r[0]) for r in rows])} |",
    ]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
