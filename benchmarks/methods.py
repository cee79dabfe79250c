"""Feature selectors compared by `selection.py` and `real_datasets.py`, behind one interface.

Each `select_*` function takes the same table (feature columns plus the target `y`) and returns a
`Choice`: the selected columns, every column ranked best first, and the wall-clock seconds.

- glselect: the CLI in a subprocess, exactly as a user runs it; the selected set and the ranking
  are read from `importances.csv` (its rank order: path survival, ties by dense norm).
- LassoNet (`lassonet` 0.0.21): `LassoNetRegressor` / `LassoNetClassifier`, hidden width 32 and
  lambda ratio 1.05 (glselect's default `--lambda-step`; LassoNet's own 1.02 fits about 2.5x as
  many lambdas, too slow for this benchmark's budget), its defaults otherwise (10% of the rows
  for validation), one torch thread. Selected set: the lowest validation loss point of its
  path, the choice its README shows; its CV classes fit one path per fold plus a final one (6x
  the time), also too slow here. Ranking: `feature_importances_` (the lambda at which each
  column leaves the path).
- linear lasso: `LassoCV` (5 folds, its 100 alphas) / `LogisticRegressionCV` (pure L1, saga,
  5 folds, 10 values of C, log loss; tol 1e-3 because saga at the default tol took minutes on
  digits) on standardized inputs. Selected set: non-zero coefficients at the CV choice. Ranking:
  how early a column enters the regularisation path (the analogue of path survival), ties by
  |coefficient|.
- random forest: 300 trees fit on 80% of the rows. Impurity variant: selects the columns whose
  impurity importance is above the mean importance (= 1/p, as the importances sum to 1).
  Permutation variant: the same forest, permutation importance on the other 20% of the rows
  (5 repeats); selects the columns whose mean drop in score exceeds twice its standard deviation.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "y"
METHODS = ["glselect", "LassoNet", "linear lasso", "RF impurity", "RF permutation", "Boruta-style"]
BORUTA_ROUNDS = 10
BORUTA_HITS = 9  # of 10 rounds: a one-sided binomial test of "beats the best shadow half the time" at p = 0.011
HIDDEN = 32
LASSONET_PATH_MULTIPLIER = 1.05


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of ``values`` (one per seed or split; NaN for fewer than two)."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")


def mean_se(values: list[float], places: int) -> str:
    """``values``' mean, signed, ± its standard error, both to ``places`` decimals."""
    return f"{statistics.mean(values):+.{places}f} ± {standard_error(values):.{places}f}"


def write_table(text: str, out: Path | None) -> None:
    """Print a result table, and write it to ``out`` where one is given."""
    if out:
        out.write_text(text)
    print(text)


@dataclass(frozen=True)
class Choice:
    """What one method chose: selected columns, all columns ranked best first, and its seconds."""

    selected: list[str]
    ranking: list[str]
    seconds: float


def glselect_binary() -> Path:
    """The `glselect` entry point of the virtual environment that runs this script."""
    return Path(sys.executable).with_name("glselect")


def select_glselect(frame: pd.DataFrame, workdir: Path, seed: int, extra_args: str = "", group_map: dict[str, str] | None = None) -> Choice:
    """Run `glselect fit` in a subprocess and read its artifacts."""
    table = workdir / "table.csv"
    out = workdir / "table.glselect"
    frame.to_csv(table, index=False)
    command = [
        str(glselect_binary()),
        "fit",
        str(table),
        "--target",
        TARGET,
        "--out",
        str(out),
        "--quiet",
        "--force",
        "--seed",
        str(seed),
        *shlex.split(extra_args),
    ]
    if group_map is not None:
        groups = workdir / "groups.csv"
        pd.DataFrame({"feature": list(group_map), "group": list(group_map.values())}).to_csv(groups, index=False)
        command += ["--groups", str(groups)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"glselect failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    importances = pd.read_csv(out / "importances.csv").sort_values("rank", kind="stable")
    selected = json.loads((out / "summary.json").read_text())["selected_features"]
    return Choice(selected=list(selected), ranking=importances["feature"].astype(str).tolist(), seconds=seconds)


def _standardize(X: np.ndarray) -> np.ndarray:
    scale = X.std(axis=0)
    # a constant column stays constant (zero) instead of turning into NaN
    return (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def _split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    features = frame.drop(columns=TARGET)
    return features.to_numpy(dtype=np.float64), frame[TARGET].to_numpy(), [str(name) for name in features.columns]


def _ranked(names: list[str], keys: list[np.ndarray]) -> list[str]:
    """Names sorted by the keys, most important first; the first key decides, ties keep table order."""
    order = np.lexsort([-key for key in reversed(keys)])
    return [names[j] for j in order]


def select_lassonet(frame: pd.DataFrame, task: str, seed: int) -> Choice:
    """LassoNet's path; selection at its lowest validation loss, ranking by its feature importances."""
    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    X, y, names = _split(frame)
    X = _standardize(X).astype(np.float32)
    # one thread, as glselect uses for tables this small: with two threads on the shared 2-core
    # machine one breast_cancer path ran over 9 minutes, with one it takes under a minute
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    started = time.perf_counter()
    if task == "regression":
        y = ((y - y.mean()) / y.std()).astype(np.float32)
        model = LassoNetRegressor(
            hidden_dims=(HIDDEN,), path_multiplier=LASSONET_PATH_MULTIPLIER, verbose=0, random_state=seed, torch_seed=seed
        )
    else:
        y = np.unique(y, return_inverse=True)[1]
        model = LassoNetClassifier(
            hidden_dims=(HIDDEN,), path_multiplier=LASSONET_PATH_MULTIPLIER, verbose=0, random_state=seed, torch_seed=seed
        )
    path = model.path(X, y, return_state_dicts=False)
    seconds = time.perf_counter() - started
    best = min(path, key=lambda item: item.val_loss)
    mask = best.selected.cpu().numpy()
    importances = model.feature_importances_.cpu().numpy()
    return Choice(selected=[names[j] for j in np.flatnonzero(mask)], ranking=_ranked(names, [importances]), seconds=seconds)


def select_linear_lasso(frame: pd.DataFrame, task: str, seed: int) -> Choice:
    """L1-penalised linear or logistic regression, penalty chosen by 5-fold CV."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV, LogisticRegressionCV, lasso_path

    X, y, names = _split(frame)
    X = _standardize(X)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # small C on the grid converges slowly; the CV choice is what matters here
        warnings.simplefilter("ignore", ConvergenceWarning)
        if task == "regression":
            model = LassoCV(cv=5, random_state=seed, n_jobs=1).fit(X, y)
            coef = np.abs(model.coef_)
            # alphas_ run from strong to weak penalty: the first non-zero index is the entry point
            path_coefs = lasso_path(X, y, alphas=model.alphas_)[1]
        else:
            model = LogisticRegressionCV(
                Cs=10,
                l1_ratios=(1.0,),
                solver="saga",
                cv=5,
                scoring="neg_log_loss",
                tol=1e-3,
                max_iter=1000,
                random_state=seed,
                use_legacy_attributes=False,
                n_jobs=1,
            ).fit(X, y)
            coef = np.abs(model.coef_).sum(axis=0)
            # (folds, l1_ratios, Cs, classes, features [+ intercept]); Cs run from strong to weak penalty
            paths = np.abs(model.coefs_paths_[:, 0, :, :, : X.shape[1]]).mean(axis=0).sum(axis=1)
            path_coefs = paths.T
    seconds = time.perf_counter() - started
    nonzero = path_coefs > 1e-10
    entry = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), nonzero.shape[1])
    selected = [names[j] for j in np.flatnonzero(coef > 1e-10)]
    return Choice(selected=selected, ranking=_ranked(names, [-entry.astype(float), coef]), seconds=seconds)


def select_random_forest(frame: pd.DataFrame, task: str, seed: int) -> dict[str, Choice]:
    """One forest, two read-outs: impurity importances (> mean) and permutation importances (> 2 SD)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    X, y, names = _split(frame)
    stratify = None if task == "regression" else y
    X_fit, X_held, y_fit, y_held = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)
    forest_class = RandomForestRegressor if task == "regression" else RandomForestClassifier
    started = time.perf_counter()
    forest = forest_class(n_estimators=300, n_jobs=2, random_state=seed).fit(X_fit, y_fit)
    impurity = forest.feature_importances_
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    permuted = permutation_importance(forest, X_held, y_held, n_repeats=5, random_state=seed, n_jobs=1)
    permutation_seconds = time.perf_counter() - started
    drop, spread = permuted.importances_mean, permuted.importances_std
    return {
        "RF impurity": Choice(
            selected=[names[j] for j in np.flatnonzero(impurity > impurity.mean())],
            ranking=_ranked(names, [impurity]),
            seconds=fit_seconds,
        ),
        "RF permutation": Choice(
            selected=[names[j] for j in np.flatnonzero(drop > 2 * spread)],
            ranking=_ranked(names, [drop, impurity]),
            seconds=fit_seconds + permutation_seconds,
        ),
    }


def select_boruta_style(frame: pd.DataFrame, task: str, seed: int) -> Choice:
    """Boruta's test, simplified: each round fits a forest on the columns and a shuffled copy of
    each (the shadows); a column scores a hit when its impurity importance beats the best shadow's.
    Selected: at least BORUTA_HITS hits in BORUTA_ROUNDS rounds. Ranking: hits, then mean importance."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    X, y, names = _split(frame)
    rng = np.random.default_rng(seed)
    forest_class = RandomForestRegressor if task == "regression" else RandomForestClassifier
    started = time.perf_counter()
    hits = np.zeros(X.shape[1])
    importance = np.zeros(X.shape[1])
    for round_ in range(BORUTA_ROUNDS):
        shadows = rng.permuted(X, axis=0)
        forest = forest_class(n_estimators=100, max_features="sqrt", n_jobs=2, random_state=seed * 100 + round_)
        forest.fit(np.hstack([X, shadows]), y)
        real, shadow = forest.feature_importances_[: X.shape[1]], forest.feature_importances_[X.shape[1] :]
        hits += real > shadow.max()
        importance += real
    seconds = time.perf_counter() - started
    return Choice(
        selected=[names[j] for j in np.flatnonzero(hits >= BORUTA_HITS)], ranking=_ranked(names, [hits, importance]), seconds=seconds
    )


def select_all(
    frame: pd.DataFrame,
    task: str,
    seed: int,
    workdir: Path,
    glselect_args: str = "",
    group_map: dict[str, str] | None = None,
    methods: list[str] | None = None,
) -> dict[str, Choice]:
    """Every method on the same table, in the order they are reported. `methods` keeps a subset."""
    wanted = methods or METHODS
    choices: dict[str, Choice] = {}
    if "glselect" in wanted:
        choices["glselect"] = select_glselect(frame, workdir, seed, glselect_args, group_map)
    if "LassoNet" in wanted:
        choices["LassoNet"] = select_lassonet(frame, task, seed)
    if "linear lasso" in wanted:
        choices["linear lasso"] = select_linear_lasso(frame, task, seed)
    if "RF impurity" in wanted or "RF permutation" in wanted:
        forest_choices = select_random_forest(frame, task, seed)
        choices.update({name: choice for name, choice in forest_choices.items() if name in wanted})
    if "Boruta-style" in wanted:
        choices["Boruta-style"] = select_boruta_style(frame, task, seed)
    return choices


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every side-by-side benchmark takes: seeds, methods, and glselect's extra arguments."""
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument(
        "--glselect-args",
        default="",
        help='extra `glselect fit` arguments, passed verbatim; write --glselect-args="..." so that a value '
        "starting with -- is not read as an option",
    )


def write_results(out: Path, sections: list[str], glselect_args: str, rows: list[dict]) -> None:
    """The markdown tables to ``out`` and the raw per-seed rows beside it as JSON.

    An ``out`` ending in .json names the pair too: the tables go to the .md beside it (writing
    both to one file used to leave only the JSON).
    """
    markdown = out.with_suffix(".md") if out.suffix == ".json" else out
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(sections))
    out.with_suffix(".json").write_text(json.dumps({"glselect_args": glselect_args, "rows": rows}, indent=1))
    print(f"wrote {markdown} and {out.with_suffix('.json')}")
