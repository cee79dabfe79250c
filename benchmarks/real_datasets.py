"""Real-data benchmark: how good are each method's top-k columns for a fixed downstream model?

    .venv/bin/python benchmarks/real_datasets.py                   # all datasets, 3 seeds (26 min, see below)
    .venv/bin/python benchmarks/real_datasets.py --datasets wine digits --seeds 3
    .venv/bin/python benchmarks/real_datasets.py --glselect-args="--cv 5" --out benchmarks/results/real_cv5.md

Needs `pip install -c constraints.txt lassonet` in the virtual environment. Datasets are the ones
bundled with scikit-learn (no download): breast_cancer (binary, k=5 of 30), wine (3 classes,
k=5 of 13), diabetes (regression, k=4 of 10), digits (10 classes, k=20 of 64); california
housing (regression, k=3 of 8) is added only when it is already in the scikit-learn data cache.

Protocol, per seed: one split, 70% train / 30% test (stratified for classification). Every
method sees only the training rows and ranks the columns (see `benchmarks/methods.py`;
glselect runs through its CLI, `--glselect-args` passed verbatim, and its ranking is the order of
`importances.csv`; with `--glselect-max-features` glselect is asked for the k columns itself,
`--max-features k`, and its selected set heads its ranking). Each method's k best-ranked columns then train two fixed downstream models on
the same training rows, scored on the test rows (accuracy, or R^2 for regression):
- linear: standardized inputs + LogisticRegression (C=1) or Ridge (alpha=1);
- forest: RandomForestClassifier / RandomForestRegressor, 300 trees.
Two reference rows use no selector: all columns, and k columns drawn at random. The "selected"
column is the size of each method's own selected set (it is not used for the top-k scores).
Run time: 26 minutes on the 2-core machine under load from other jobs (which also inflates the
`seconds` column several times); LassoNet takes most of it.
Prints one markdown table per dataset (mean ± std over seeds), writes it to `--out` and the
per-seed numbers to the same path with the suffix `.json`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from methods import TARGET, add_run_arguments, select_all, write_results
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REFERENCES = ["all columns", "random k"]


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], object]
    task: str
    k: int


def _california_offline() -> object:
    return datasets.fetch_california_housing(download_if_missing=False)


DATASETS = [
    Dataset("breast_cancer", datasets.load_breast_cancer, "classification", 5),
    Dataset("wine", datasets.load_wine, "classification", 5),
    Dataset("diabetes", datasets.load_diabetes, "regression", 4),
    Dataset("digits", datasets.load_digits, "classification", 20),
    Dataset("california", _california_offline, "regression", 3),
]


def load_frame(dataset: Dataset) -> pd.DataFrame | None:
    """The dataset as one table with the target `y`; None when it is not available offline."""
    try:
        bunch = dataset.load()
    except OSError:
        return None
    frame = pd.DataFrame(bunch.data, columns=[str(name) for name in bunch.feature_names])
    frame[TARGET] = bunch.target
    return frame


def downstream_scores(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], task: str, seed: int) -> dict:
    """Test score of the two fixed downstream models trained on `columns` only."""
    if task == "regression":
        models = {
            "linear": make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
            "forest": RandomForestRegressor(n_estimators=300, n_jobs=2, random_state=seed),
        }
    else:
        models = {
            "linear": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)),
            "forest": RandomForestClassifier(n_estimators=300, n_jobs=2, random_state=seed),
        }
    return {name: model.fit(train[columns], train[TARGET]).score(test[columns], test[TARGET]) for name, model in models.items()}


def summary_table(rows: list[dict], methods: list[str], metric: str) -> str:
    """Markdown table: one line per method, mean ± std over seeds."""
    lines = [f"| method | linear {metric} | forest {metric} | selected | seconds |", "|---|---:|---:|---:|---:|"]
    for method in methods:
        mine = [row for row in rows if row["method"] == method]
        if not mine:
            continue
        cells = []
        for key, digits in (("linear", 3), ("forest", 3), ("n_selected", 1), ("seconds", 1)):
            values = [row[key] for row in mine]
            if any(value is None for value in values):
                cells.append("")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=[d.name for d in DATASETS], default=[d.name for d in DATASETS])
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "real_datasets.md")
    parser.add_argument(
        "--glselect-max-features",
        action="store_true",
        help="ask glselect for each dataset's k columns itself (--max-features k: the path's least-penalised step "
        "with k groups, walked past columns correlated above --max-correlation with one already taken), "
        "rather than cutting its default ranking at k",
    )
    args = parser.parse_args()

    rows: list[dict] = []
    top_k = "; `--max-features k` per dataset" if args.glselect_max_features else ""
    sections = [
        f"glselect extra arguments: `{args.glselect_args or '(none: defaults)'}`{top_k}; seeds 0..{args.seeds - 1}; "
        "mean ± std over seeds (each seed its own 70/30 split)\n"
    ]
    print(sections[0])
    with tempfile.TemporaryDirectory() as folder:
        for dataset in (d for d in DATASETS if d.name in args.datasets):
            frame = load_frame(dataset)
            if frame is None:
                print(f"skipping {dataset.name}: not available offline\n")
                continue
            metric = "R^2" if dataset.task == "regression" else "accuracy"
            dataset_rows = []
            for seed in range(args.seeds):
                stratify = None if dataset.task == "regression" else frame[TARGET]
                train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=stratify)
                workdir = Path(folder) / f"{dataset.name}_{seed}"
                workdir.mkdir()
                glselect_args = args.glselect_args + (f" --max-features {dataset.k}" if args.glselect_max_features else "")
                choices = select_all(train, dataset.task, seed, workdir, glselect_args, methods=args.methods)
                features = [str(name) for name in frame.columns.drop(TARGET)]
                random_k = list(np.random.default_rng(seed).choice(features, size=dataset.k, replace=False))
                candidates = {name: (choice.ranking[: dataset.k], len(choice.selected), choice.seconds) for name, choice in choices.items()}
                candidates |= {"all columns": (features, None, None), "random k": (random_k, None, None)}
                for method, (columns, n_selected, seconds) in candidates.items():
                    row = {
                        "dataset": dataset.name,
                        "seed": seed,
                        "method": method,
                        "k": dataset.k,
                        "columns": columns,
                        "n_selected": n_selected,
                        "seconds": seconds,
                        **downstream_scores(train, test, columns, dataset.task, seed),
                    }
                    dataset_rows.append(row)
                    print(f"  {dataset.name} seed {seed} {method}: linear {row['linear']:.3f}, forest {row['forest']:.3f}", flush=True)
            rows += dataset_rows
            title = f"### {dataset.name}: {len(frame)} rows, {frame.shape[1] - 1} columns, {dataset.task}, top k = {dataset.k}"
            section = f"{title}\n\n{summary_table(dataset_rows, args.methods + REFERENCES, metric)}\n"
            sections.append(section)
            print("\n" + section, flush=True)
    write_results(args.out, sections, args.glselect_args, rows)


if __name__ == "__main__":
    main()
