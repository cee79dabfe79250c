"""Fingerprints of a fit's outputs, to show that a refactor changed no behaviour.

    .venv/bin/python benchmarks/parity.py --write benchmarks/results/parity.json   # record
    .venv/bin/python benchmarks/parity.py --check benchmarks/results/parity.json   # compare

Each case runs `glselect fit` on a small generated table (or the sample) with fixed options and
hashes what it wrote: importances.csv, groups.csv, path.csv, path_norms.parquet (its values),
model.safetensors (its bytes), model.json, and summary.json without the fields that are not
results (timings, versions, paths). A case covers one part of the engine: the sample's job, the
linear model, classification, multiclass, survival, the sparse group lasso, the neuron penalty,
knockoffs, --max-features (with and without the redundancy-aware walk), stability, CV, the
all-relevant rounds and a streamed Parquet fit. About two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from glselect._synthetic import make_friedman1, make_mixed_table, make_survival

ROOT = Path(__file__).resolve().parents[1]
NOT_RESULTS = {
    "timings",
    "versions",
    "version",
    "table",
    "groups_file",
    "out_dir",
    "config",
    "glselect_version",
    "torch_version",
    "rows_per_second_per_epoch",
}
FAST = ["--max-iters", "400", "--max-iters-per-lambda", "200", "--relax-iters", "200"]


def _multiclass(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((500, 8))
    scores = np.stack([2 * X[:, 0], 2 * X[:, 1], np.abs(2 * X[:, 2])], axis=1) + rng.standard_normal((500, 3))
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])
    df["y"] = np.array(["a", "b", "c"])[scores.argmax(axis=1)]
    return df


def _redundant(seed: int = 0) -> pd.DataFrame:
    df = make_friedman1(600, 10, noise=0.5, seed=seed)
    df["copy_x3"] = 2.0 * df["x3"] + 1.0  # an exact redundant copy: the all-relevant rounds find it
    return df


def _cases(work: Path) -> dict[str, list[str]]:
    """Each case's command-line arguments after `glselect fit`."""
    friedman = work / "friedman.csv"
    make_friedman1(600, 12, noise=0.5, seed=3).to_csv(friedman, index=False)
    mixed = work / "mixed.csv"
    table = make_mixed_table(600, seed=1)
    table["label"] = np.where(table["y"] > table["y"].median(), "high", "low")
    table.drop(columns="y").to_csv(mixed, index=False)
    multiclass = work / "multiclass.csv"
    _multiclass().to_csv(multiclass, index=False)
    survival = work / "survival.csv"
    make_survival(500, 8, seed=2).to_csv(survival, index=False)
    redundant = work / "redundant.csv"
    _redundant().to_csv(redundant, index=False)
    streamed = work / "streamed.parquet"
    make_friedman1(3000, 10, noise=0.5, seed=4).to_parquet(streamed, index=False)
    sample = ROOT / "sample_data"
    return {
        "sample": [str(sample / "friedman.csv"), "--target", "y", "--groups", str(sample / "groups.csv")],
        "linear": [str(friedman), "--target", "y", "--hidden", "0"],
        "binary_mixed": [str(mixed), "--target", "label", *FAST],
        "multiclass": [str(multiclass), "--target", "y", *FAST],
        "survival": [str(survival), "--task", "survival", "--time", "time", "--event", "event", *FAST],
        "sparse_group": [str(sample / "friedman.csv"), "--target", "y", "--groups", str(sample / "groups.csv"), "--l1-ratio", "0.5", *FAST],
        "neuron_penalty": [str(friedman), "--target", "y", "--neuron-penalty", "0.01", *FAST],
        "knockoffs": [str(friedman), "--target", "y", "--fdr", "0.3", "--knockoff-draws", "2", *FAST],
        "max_features": [str(friedman), "--target", "y", "--max-features", "3", *FAST],
        "max_features_corr": [str(friedman), "--target", "y", "--max-features", "3", "--max-correlation", "0.7", *FAST],
        "stability_cv": [str(friedman), "--target", "y", "--stability", "2", "--cv", "3", *FAST],
        "all_relevant": [str(redundant), "--target", "y", "--goal", "all-relevant", *FAST],
        "minimal": [str(redundant), "--target", "y", "--goal", "minimal", "--permutation-repeats", "0", *FAST],
        "streamed": [str(streamed), "--target", "y", "--stream", "--batch-size", "256", "--epochs-per-lambda", "0.5", "--max-epochs", "3"],
    }


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _strip(document: object) -> object:
    if isinstance(document, dict):
        return {key: _strip(value) for key, value in sorted(document.items()) if key not in NOT_RESULTS}
    if isinstance(document, list):
        return [_strip(value) for value in document]
    return document


def fingerprint(out_dir: Path) -> dict[str, str]:
    """One hash per output file of ``out_dir``."""
    prints = {}
    for name in ("importances.csv", "groups.csv", "path.csv", "model.json", "model.safetensors"):
        path = out_dir / name
        if path.exists():
            text = path.read_bytes()
            if name == "model.json":
                text = json.dumps(_strip(json.loads(text)), sort_keys=True).encode()
            prints[name] = _digest(text)
    norms = out_dir / "path_norms.parquet"
    if norms.exists():
        prints["path_norms"] = _digest(pd.read_parquet(norms).to_csv(index=False).encode())
    summary = json.loads((out_dir / "summary.json").read_text())
    prints["summary"] = _digest(json.dumps(_strip(summary), sort_keys=True).encode())
    prints["selected"] = ",".join(summary.get("selected_groups", summary.get("selected_features", [])))
    return prints


def run_cases(only: list[str] | None) -> dict[str, dict[str, str]]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, args in _cases(work).items():
            if only and name not in only:
                continue
            out = work / f"{name}.glselect"
            command = [sys.executable, "-m", "glselect", "fit", *args, "--out", str(out), "--quiet", "--seed", "0"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                results[name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
            else:
                results[name] = fingerprint(out)
            print(name, results[name], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, help="record the fingerprints here")
    parser.add_argument("--check", type=Path, help="compare with the fingerprints recorded here")
    parser.add_argument("--cases", nargs="*", help="run only these cases")
    args = parser.parse_args()
    results = run_cases(args.cases)
    if args.write:
        args.write.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    if args.check:
        expected = json.loads(args.check.read_text())
        differing = [
            f"{case}: {key}"
            for case, prints in results.items()
            for key in sorted(set(prints) | set(expected.get(case, {})))
            if prints.get(key) != expected.get(case, {}).get(key)
        ]
        print("identical" if not differing else "DIFFERENT:\n" + "\n".join(differing))
        sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
