"""Survival targets: glselect's Cox model against LassoNet's Cox model and a linear Cox lasso.

Data: `glselect._synthetic.make_survival`, standard normal columns, exponential hazards
`h(t | x) = exp(f(x))` that depend on the true columns x0..x4 only, about 30% of the rows censored
(exponential censoring times). Two hazards:

- linear: `f(x) = x0 - 0.9 x1 + 0.8 x2 - 0.7 x3 + 0.6 x4`, the linear Cox model's home ground;
- non-linear: `f(x) = 1.2 x0 x1 + 0.8 (x2^2 - 1) + sin(2 x3) + 0.6 x4`: an interaction, a U-shape
  and a wave, which a linear Cox model sees little of.

Each table is split once (by a seeded permutation) into 75% fitting rows and 25% test rows. Every
method fits on the fitting rows only (holding out its own validation rows from them as it does
by default) and is scored on the test rows by Harrell's concordance index of its risk score
(`sksurv.metrics.concordance_index_censored`, one implementation for all) and by the F1 of its
selected columns against x0..x4.

- glselect: `glselect fit --task survival --time time --event event`, defaults otherwise (hidden
  width 32, rule 1se, confirmation), in a subprocess as a user runs it; risk scores from
  `glselect predict`.
- glselect --hidden 0: the same with no hidden layer, i.e. the linear Cox group lasso (one column per
  group, so the plain Cox lasso) with glselect's path, 1se rule, relaxed refit and confirmation.
- LassoNet (`lassonet` 0.0.21): `LassoNetCoxRegressor` with Breslow ties, hidden width 32, path
  multiplier 1.05 (as in `methods.py`), its defaults otherwise (10% validation rows); the selected
  set and the model scored are those of the lowest validation loss on its path, as in `methods.py`.
- linear Cox lasso: scikit-survival's `CoxnetSurvivalAnalysis` (pure L1), the penalty chosen by
  5-fold CV of the concordance index over its own alpha path (scikit-survival's user-guide recipe),
  selected set = the non-zero coefficients there.

Run: `python benchmarks/survival.py` (about 15 minutes on 2 shared cores with the defaults, 3 seeds); writes
`benchmarks/results/survival.md` and `.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from glselect._synthetic import make_survival

TRUE = {f"x{j}" for j in range(5)}
METHODS = ["glselect", "glselect --hidden 0", "LassoNet Cox", "linear Cox lasso"]
HIDDEN = 32


def _standardize(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (X - reference.mean(axis=0)) / reference.std(axis=0)


def run_glselect(fit: pd.DataFrame, test: pd.DataFrame, workdir: Path, seed: int, extra: list[str]) -> tuple[list[str], np.ndarray]:
    binary = Path(sys.executable).with_name("glselect")
    fit.to_csv(workdir / "fit.csv", index=False)
    test.drop(columns=["time", "event"]).to_csv(workdir / "test.csv", index=False)
    out = workdir / "fit.glselect"
    command = [
        str(binary),
        "fit",
        str(workdir / "fit.csv"),
        "--task",
        "survival",
        "--time",
        "time",
        "--event",
        "event",
        "--out",
        str(out),
        "--quiet",
        "--force",
        "--seed",
        str(seed),
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"glselect failed: {done.stderr[-2000:]}")
    selected = json.loads((out / "summary.json").read_text())["selected_features"]
    predicted = subprocess.run([str(binary), "predict", str(out), str(workdir / "test.csv")], capture_output=True, text=True, check=True)
    risk = pd.read_csv(pd.io.common.StringIO(predicted.stdout))["risk_score"].to_numpy()
    return selected, risk


def run_lassonet(fit: pd.DataFrame, test: pd.DataFrame, names: list[str], seed: int) -> tuple[list[str], np.ndarray]:
    import torch
    from lassonet import LassoNetCoxRegressor

    torch.set_num_threads(1)  # as methods.py: one thread is faster than two on this shared machine
    torch.manual_seed(seed)
    X = _standardize(fit[names].to_numpy(), fit[names].to_numpy()).astype(np.float32)
    X_test = _standardize(test[names].to_numpy(), fit[names].to_numpy()).astype(np.float32)
    y = np.column_stack([fit["time"].to_numpy(), fit["event"].to_numpy()]).astype(np.float32)
    model = LassoNetCoxRegressor(
        hidden_dims=(HIDDEN,), path_multiplier=1.05, tie_approximation="breslow", verbose=0, random_state=seed, torch_seed=seed
    )
    path = model.path(X, y, return_state_dicts=True)
    best = min(path, key=lambda item: item.val_loss)
    model.load(best.state_dict)
    risk = np.asarray(model.predict(X_test)).reshape(-1)
    return [names[j] for j in np.flatnonzero(best.selected.cpu().numpy())], risk


def run_coxnet(fit: pd.DataFrame, test: pd.DataFrame, names: list[str], seed: int) -> tuple[list[str], np.ndarray]:
    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
    from sklearn.model_selection import GridSearchCV, KFold
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    X = _standardize(fit[names].to_numpy(), fit[names].to_numpy())
    X_test = _standardize(test[names].to_numpy(), fit[names].to_numpy())
    y = Surv.from_arrays(event=fit["event"].to_numpy().astype(bool), time=fit["time"].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, FitFailedWarning, UserWarning))
        alphas = CoxnetSurvivalAnalysis(l1_ratio=1.0, alpha_min_ratio=0.01, n_alphas=50).fit(X, y).alphas_
        search = GridSearchCV(
            CoxnetSurvivalAnalysis(l1_ratio=1.0),
            param_grid={"alphas": [[alpha] for alpha in alphas]},
            cv=KFold(n_splits=5, shuffle=True, random_state=seed),
            error_score=0.5,
            n_jobs=1,
        ).fit(X, y)
    model = search.best_estimator_
    coef = model.coef_[:, 0]
    return [names[j] for j in np.flatnonzero(np.abs(coef) > 1e-10)], model.predict(X_test)


def concordance(risk: np.ndarray, test: pd.DataFrame) -> float:
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(test["event"].to_numpy().astype(bool), test["time"].to_numpy(), risk)[0])


def score(selected: list[str], risk: np.ndarray, test: pd.DataFrame) -> dict[str, float]:
    hits = len(TRUE & set(selected))
    precision = hits / len(selected) if selected else 0.0
    recall = hits / len(TRUE)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_selected": len(selected), "c_index": concordance(risk, test)}


def summary_table(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    lines = [
        "| method | precision | recall | F1 | selected | test C-index | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        part = frame[frame["method"] == method]
        if part.empty:
            continue
        cells = [
            f"{part[key].mean():.{digits}f} ± {part[key].std(ddof=1) if len(part) > 1 else 0.0:.{digits}f}"
            for key, digits in (("precision", 2), ("recall", 2), ("f1", 2), ("n_selected", 1), ("c_index", 3), ("seconds", 1))
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--glselect-args", default="", help="extra arguments for glselect fit")
    parser.add_argument("--hazards", default="linear,non-linear", help="comma-separated: linear, non-linear")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "survival")
    args = parser.parse_args()
    extra = args.glselect_args.split()
    rows: list[dict] = []
    sections = []
    methods = [name.strip() for name in args.methods.split(",")]
    for hazard in args.hazards.split(","):
        hazard_rows = []
        for seed in range(args.seeds):
            table = make_survival(args.rows, args.columns, 5, nonlinear=hazard == "non-linear", censoring=0.3, seed=seed)
            order = np.random.default_rng(seed).permutation(len(table))
            cut = int(0.75 * len(table))
            fit, test = table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)
            names = [name for name in table.columns if name.startswith("x")]
            with tempfile.TemporaryDirectory() as folder:
                for method in methods:
                    started = time.perf_counter()
                    if method.startswith("glselect"):
                        hidden = ["--hidden", "0"] if method.endswith("--hidden 0") else []
                        selected, risk = run_glselect(fit, test, Path(folder), seed, [*hidden, *extra])
                    elif method == "LassoNet Cox":
                        selected, risk = run_lassonet(fit, test, names, seed)
                    else:
                        selected, risk = run_coxnet(fit, test, names, seed)
                    row = {
                        "hazard": hazard,
                        "seed": seed,
                        "method": method,
                        **score(selected, risk, test),
                        "seconds": time.perf_counter() - started,
                        "selected": selected,
                    }
                    hazard_rows.append(row)
                    print(
                        f"  {hazard} seed {seed} {method}: F1 {row['f1']:.2f}, C {row['c_index']:.3f}, "
                        f"{row['n_selected']} selected, {row['seconds']:.1f} s",
                        flush=True,
                    )
        rows += hazard_rows
        title = f"{hazard} hazard, {args.rows:,} x {args.columns}, true x0..x4, ~30% censored"
        sections.append(f"### {title}\n\n{summary_table(hazard_rows)}\n")
        print("\n" + sections[-1], flush=True)
    header = (
        f"glselect extra arguments: `{args.glselect_args or '(none: defaults)'}`; seeds 0..{args.seeds - 1}; "
        f"mean ± std over seeds; test rows: 25% of each table\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(header + "\n".join(sections))
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
