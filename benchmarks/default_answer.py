"""The default answer on real tables: how many columns it keeps, whether its pruned model predicts
as well as the dense one, and how long it takes beside LassoNet's path on the same table.

    .venv/bin/python benchmarks/default_answer.py                          # every table, 3 seeds
    .venv/bin/python benchmarks/default_answer.py --tables wine diabetes --seeds 2 --no-lassonet
    /tmp/lnvenv/bin/python benchmarks/default_answer.py --out benchmarks/results/default_answer.md

Tables: scikit-learn's breast_cancer, wine, diabetes and digits (bundled, no download), and the
real tables in ../shared/data/ (mice_protein with its four class-encoding columns dropped; glioma,
warpar10p and yale32, the wide ones), each where it can be read.

Protocol, per table and seed: `glselect fit` with its defaults (`--seed s`, `--threads 1`) on the
whole table, as a user runs it. It splits the rows itself (train / validation / test, by the
seed) and reports the dense network's and the pruned model's metric on the same held-out test
rows (summary.json `metrics`): accuracy for classes, R^2 for a number. "kept - dense" is their
difference, averaged over seeds, with its standard error over seeds (each seed a new split): the
noise of that comparison. LassoNet (`methods.select_lassonet`: hidden 32, path multiplier 1.05,
one torch thread) walks its path on the same table in the same process run, one seed after
glselect's, so the two times are side by side; `--no-lassonet` skips it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from methods import TARGET, glselect_binary, mean_se, select_lassonet
from sklearn import datasets

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Table:
    name: str
    load: Callable[[], pd.DataFrame | None]
    task: str


def _sklearn(loader: Callable[[], object]) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        bunch = loader()
        frame = pd.DataFrame(bunch.data, columns=[str(name) for name in bunch.feature_names])  # type: ignore[attr-defined]
        frame[TARGET] = bunch.target  # type: ignore[attr-defined]
        return frame

    return load


def _shared(file: str, target: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame | None]:
    def load() -> pd.DataFrame | None:
        path = SHARED / file
        if not path.exists():
            return None
        frame = pd.read_parquet(path).drop(columns=list(drop))
        frame.columns = [str(name) for name in frame.columns]
        return frame.rename(columns={target: TARGET})

    return load


TABLES = [
    Table("breast_cancer", _sklearn(datasets.load_breast_cancer), "classification"),
    Table("wine", _sklearn(datasets.load_wine), "classification"),
    Table("diabetes", _sklearn(datasets.load_diabetes), "regression"),
    Table("digits", _sklearn(datasets.load_digits), "classification"),
    Table("mice_protein", _shared("mice_protein.parquet", "class", ("MouseID", "Genotype", "Treatment", "Behavior")), "classification"),
    Table("glioma", _shared("glioma.parquet", "label"), "classification"),
    Table("warpar10p", _shared("warpar10p.parquet", "label"), "classification"),
    Table("yale32", _shared("yale32.parquet", "label"), "classification"),
]


def run_glselect(frame: pd.DataFrame, workdir: Path, seed: int, extra: list[str]) -> dict:
    """One default fit; what it kept, its dense and pruned test metric, and its wall time."""
    table, out = workdir / "table.csv", workdir / "fit"
    frame.to_csv(table, index=False)
    command = [str(glselect_binary()), "fit", str(table), "--target", TARGET, "--out", str(out), "--quiet", "--force"]
    command += ["--seed", str(seed), "--threads", "1", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"glselect failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    metric = "r2" if summary["task"] == "regression" else "accuracy"
    return {
        "kept": summary["n_selected_features"],
        "columns": summary["sizes"]["columns"],
        "metric": metric,
        "dense": summary["metrics"]["dense"][metric],
        "pruned": summary["metrics"]["pruned"][metric],
        "test_rows": summary["sizes"]["test_rows"],
        "seconds": seconds,
        "as_good_as_all": summary.get("as_good_as_all"),
    }


def lassonet_seconds(frame: pd.DataFrame, task: str, seed: int) -> float:
    """LassoNet's path on the table (missing cells filled with column means: it reads no NaN)."""
    features = frame.drop(columns=TARGET)
    filled = features.fillna(features.mean()).fillna(0.0)
    filled[TARGET] = frame[TARGET].to_numpy()
    return select_lassonet(filled, task, seed).seconds


def mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3g} ± {spread:.2g}"


def section(table: Table, frame: pd.DataFrame, rows: list[dict]) -> str:
    kept = [row["kept"] for row in rows]
    differences = [row["pruned"] - row["dense"] for row in rows]
    seconds = [row["seconds"] for row in rows]
    lassonet = [row["lassonet_seconds"] for row in rows if row.get("lassonet_seconds") is not None]
    ratio = f"{statistics.mean(seconds) / statistics.mean(lassonet):.2f}" if lassonet else ""
    n_columns = rows[0]["columns"]
    return (
        f"| {table.name} | {len(frame)} x {n_columns} | {rows[0]['metric']} | {mean_sd(kept)} "
        f"| {100 * statistics.mean(kept) / n_columns:.0f}% | {mean_sd([row['dense'] for row in rows])} "
        f"| {mean_sd([row['pruned'] for row in rows])} | {mean_se(differences, 3)} "
        f"| {mean_sd(seconds)} | {mean_sd(lassonet)} | {ratio} |"
    )


def by_kept(rows: list[dict], bounds: list[int]) -> str:
    """Per table, kept - dense (points, mean ± standard error over seeds) of the fits that kept up to
    each of ``bounds`` columns (and more than the one before), and of those that kept more."""
    edges = [*bounds, math.inf]
    spans = [f"kept <= {bounds[0]}", *[f"kept {low + 1} to {high}" for low, high in itertools.pairwise(bounds)]]
    header = ["table", *spans, f"kept > {bounds[-1]}"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(edges)]
    for table in TABLES:
        mine = [row for row in rows if row["table"] == table.name]
        if not mine:
            continue
        cells, low = [], -math.inf
        for high in edges:
            lost = [100 * (row["pruned"] - row["dense"]) for row in mine if low < row["kept"] <= high]
            cells.append(f"{mean_se(lost, 1)} ({len(lost)} seeds)" if lost else "")
            low = high
        lines.append(f"| {table.name} | " + " | ".join(cells) + " |")
    return "kept - dense in points, by the number of columns the fit kept\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", choices=[table.name for table in TABLES], default=[table.name for table in TABLES])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST + SEEDS - 1 (more seeds in another run)")
    parser.add_argument("--no-lassonet", action="store_true")
    parser.add_argument("--glselect-args", default="", help="extra `glselect fit` arguments, passed verbatim")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/default_answer.md"))
    parser.add_argument("--merge", type=Path, nargs="+", help="fit nothing: one table of these runs' .json rows together")
    parser.add_argument(
        "--by-kept", type=int, nargs="+", help="with --merge: also each table's kept - dense by columns kept, up to each bound"
    )
    args = parser.parse_args()
    extra = args.glselect_args.split()
    seeds = f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}"
    if args.merge:
        seeds = "the runs " + ", ".join(path.name for path in args.merge) + " together"
    lines = [
        f"glselect defaults{' with ' + args.glselect_args if args.glselect_args else ''}; {seeds}; "
        "mean ± sd over seeds; kept - dense: mean ± standard error over seeds, on each fit's own held-out test rows",
        "",
        "| table | rows x columns | metric | kept | kept % | dense | pruned | kept - dense | glselect s | LassoNet s | time ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if args.merge:
        merged = [row for path in args.merge for row in json.loads(path.read_text())]
        for table in TABLES:
            rows = sorted((row for row in merged if row["table"] == table.name), key=lambda row: row["seed"])
            frame = table.load() if rows else None
            if frame is not None:
                lines.append(section(table, frame, rows))
        if args.by_kept:
            lines += ["", by_kept(merged, sorted(args.by_kept))]
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(merged, indent=1, default=float))
        print("\n".join(lines))
        return
    raw: list[dict] = []
    for table in [table for table in TABLES if table.name in args.tables]:
        frame = table.load()
        if frame is None:
            print(f"{table.name}: not available, skipped")
            continue
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            with tempfile.TemporaryDirectory() as workdir:
                row = run_glselect(frame, Path(workdir), seed, extra)
            row["lassonet_seconds"] = None if args.no_lassonet else lassonet_seconds(frame, table.task, seed)
            row.update(table=table.name, seed=seed)
            print(json.dumps(row), flush=True)
            rows.append(row)
        raw.extend(rows)
        lines.append(section(table, frame, rows))
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=float))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
