"""glselect against LassoNet on the LassoNet paper's own benchmark (k = 50 columns, Table 1).

    .venv/bin/python -m pip install -c constraints.txt lassonet
    .venv/bin/python benchmarks/lassonet_paper.py --only mice --seeds 0,1,2
    .venv/bin/python benchmarks/lassonet_paper.py --only mnist --seeds 0,1 \
        --lassonet-hidden 32 --lassonet-path-multiplier 1.1
    .venv/bin/python benchmarks/lassonet_paper.py --only mice --glselect-args "--hidden 64"

Data: the tables of `../shared/data/` (see its README): Mice Protein (1,080 x 77 protein levels,
8 classes, 1,396 missing cells) and the 10,000-image MNIST test set (784 pixels, 10 classes).
`--data-dir` points elsewhere; the script stops with a message when a table is missing.

Protocol, per seed and data set (the paper's, Lemhadri et al., JMLR 2021, section 5.1, and its
`experiments/run.py`):

1. A stratified 70/10/20 split into train, validation and test rows.
2. Selection of at most k = 50 columns from the train and validation rows only:
   - glselect as a user runs it: the CLI in a subprocess on the train+val rows written to
     Parquet, `glselect fit ... --max-features 50`, its `summary.json` `selected_features`
     (the least-penalised path step with at most 50 columns). glselect splits those rows
     itself; `--val-fraction 0.125` makes its validation share the protocol's 10% of all rows,
     `--test-fraction 0.01` leaves nearly all the rest for training (the benchmark has test rows
     of its own), and `--min-features 50` ends its path there, as LassoNet's is ended below. It handles the
     missing cells itself (mean plus a missing indicator in the column's group). Extra options
     go through `--glselect-args`.
   - LassoNet (`LassoNetClassifier`, pip `lassonet`) with the paper's settings: one hidden
     layer of d // 3 units (d = all columns), M = 10, minibatches of 256, its default path
     multiplier 1.02, early stopping on the protocol's validation rows; the selection is the
     first point of its path with at most 50 columns, as in the paper's script. The path is
     stopped there: later points cannot change that choice. On MNIST the paper's settings
     (261 hidden units, multiplier 1.02) do not fit a CPU budget of minutes; `--lassonet-hidden`,
     `--lassonet-path-multiplier`, `--lassonet-epochs` and `--lassonet-patience` bound them,
     and the settings used are stored with the results.
3. The same downstream network for every column set: one hidden layer of d // 3 ReLU units
   (the paper's retrained model), Adam, minibatches of 256, early-stopped on the validation
   rows (best validation loss kept), inputs imputed with training means and standardised on
   the training rows. Its accuracy on the test rows is the score; the same network on all
   columns is the reference.

Published k = 50 accuracies (LassoNet / all features): Mice .958 / .990, MNIST .873 / .928.
The paper's MNIST run trained on 4,000 of these 10,000 images; this protocol uses 7,000.

Both methods get the same torch thread count (`--threads`, default 1: on a busy 2-core
machine two threads made LassoNet six times slower). Wall and CPU seconds: glselect's are the
whole CLI process (start-up, reading, path, selection, refit, artifacts); LassoNet's its
`path()` call. Results go to `benchmarks/results/lassonet_paper.json`
(merged per data set, so `--only` runs add up) and a markdown table to `lassonet_paper.md`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
GLSELECT = Path(sys.executable).with_name("glselect")
# glselect must hold out test rows of its own; the benchmark scores on its own test rows instead,
# so glselect keeps a token 1% and trains on about as many rows as LassoNet (with its default 20%
# it trained on 583 of Mice's 864 rows against LassoNet's 756: .983 against .988, same 5 seeds)
DEFAULT_GLSELECT_ARGS = "--val-fraction 0.125 --test-fraction 0.01"


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str
    target: str
    drop: tuple[str, ...]  # identifiers and columns that spell out the class
    published_k50: float  # LassoNet, Table 1 of the paper
    published_all: float


DATASETS = {
    "mice": Dataset("mice", "mice_protein.parquet", "class", ("MouseID", "Genotype", "Treatment", "Behavior"), 0.958, 0.990),
    "mnist": Dataset("mnist", "mnist_test10k.parquet", "digit", (), 0.873, 0.928),
}


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def read_dataset(data_dir: Path, dataset: Dataset) -> pd.DataFrame:
    table = data_dir / dataset.file
    if not table.is_file():
        sys.exit(f"error: {table} not found; pass --data-dir, the folder with the paper's tables (see ../shared/data/README.md)")
    frame = pd.read_parquet(table).drop(columns=list(dataset.drop))
    features = frame.columns.drop(dataset.target)
    frame[features] = frame[features].astype(np.float32)
    return frame


def split_rows(frame: pd.DataFrame, target: str, seed: int) -> Split:
    """Stratified 70/10/20 train/validation/test rows."""
    rest, test = train_test_split(frame, test_size=0.2, stratify=frame[target], random_state=seed)
    train, val = train_test_split(rest, test_size=0.125, stratify=rest[target], random_state=seed)
    return Split(train, val, test)


def design_matrices(split: Split, columns: list[str], target: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Impute with training means and standardise on the training rows; labels as 0..C-1."""
    train = split.train[columns]
    means = train.mean()
    # a column constant on the training rows (MNIST border pixels) keeps scale 1 instead of 0/0
    scales = train.fillna(means).std().replace(0, 1)
    labels = {label: code for code, label in enumerate(sorted(split.train[target].unique()))}
    return {
        part: (
            ((rows[columns].fillna(means) - means) / scales).to_numpy(np.float32),
            rows[target].map(labels).to_numpy(np.int64),
        )
        for part, rows in (("train", split.train), ("val", split.val), ("test", split.test))
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def select_with_glselect(split: Split, dataset: Dataset, k: int, seed: int, extra_args: str, workdir: Path) -> dict:
    """Run the CLI on the train+val rows; its `--max-features k` choice."""
    table = workdir / f"{dataset.name}_{seed}.parquet"
    pd.concat([split.train, split.val]).to_parquet(table, index=False)
    out = workdir / f"{dataset.name}_{seed}.glselect"
    command = [
        str(GLSELECT),
        "fit",
        str(table),
        "--target",
        dataset.target,
        "--out",
        str(out),
        "--quiet",
        "--seed",
        str(seed),
        "--threads",
        str(torch.get_num_threads()),
        "--max-features",
        str(k),
        "--min-features",
        str(k),
        *shlex.split(extra_args),
    ]
    started, cpu_before = time.perf_counter(), _children_cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu_seconds() - cpu_before
    if done.returncode != 0:
        sys.exit(f"error: glselect failed ({done.returncode}): {done.stderr.strip()}")
    summary = json.loads((out / "summary.json").read_text())
    ranking = pd.read_csv(out / "importances.csv")
    return {
        "columns": summary["selected_features"],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "n_lambdas": summary["path"]["n_steps"],
        "top_ranked": ranking.loc[ranking["kind"] != "ignored", "feature"].head(k).tolist(),
        "command": shlex.join(["glselect", *command[1:]]),
    }


class _EnoughDropped(Exception):
    """Raised from LassoNet's path callback once the path reaches k columns."""


def select_with_lassonet(matrices: dict, names: list[str], k: int, seed: int, args: argparse.Namespace) -> dict:
    """The paper's LassoNet run: the first point of the path with at most k columns."""
    from lassonet import LassoNetClassifier

    hidden = args.lassonet_hidden or len(names) // 3
    model = LassoNetClassifier(
        hidden_dims=(hidden,),
        M=10,
        batch_size=256,
        path_multiplier=args.lassonet_path_multiplier,
        n_iters=_pair(args.lassonet_epochs),
        patience=_pair(args.lassonet_patience),
        verbose=0,
        random_state=seed,
        torch_seed=seed,
    )
    history = []

    def stop_at_k(_model, path_so_far) -> None:
        history[:] = path_so_far
        if path_so_far[-1].selected.sum().item() <= k:
            raise _EnoughDropped

    (X_train, y_train), (X_val, y_val) = matrices["train"], matrices["val"]
    started, cpu_before = time.perf_counter(), time.process_time()
    with contextlib.suppress(_EnoughDropped):
        model.path(X_train, y_train, X_val=X_val, y_val=y_val, callback=stop_at_k, disable_lambda_warning=True)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_before
    chosen = history[-1].selected.cpu().numpy()
    return {
        "columns": [names[j] for j in np.flatnonzero(chosen)],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "n_lambdas": len(history) - 1,
        "hidden": hidden,
    }


def _pair(text: str) -> tuple[int, int]:
    """'1000,100' -> (1000, 100): LassoNet's (dense training, each path point) budgets."""
    first, second = (int(part) for part in text.split(","))
    return first, second


def downstream_accuracy(matrices: dict, hidden: int, seed: int, max_epochs: int = 300, patience: int = 20) -> float:
    """Test accuracy of a one-hidden-layer ReLU network early-stopped on the validation rows."""
    torch.manual_seed(seed)
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (
        (torch.tensor(X), torch.tensor(y)) for X, y in (matrices[p] for p in ("train", "val", "test"))
    )
    n_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    network = torch.nn.Sequential(torch.nn.Linear(X_train.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_state, since_best = float("inf"), None, 0
    for _ in range(max_epochs):
        network.train()
        for batch in torch.randperm(len(y_train), generator=generator).split(256):
            optimizer.zero_grad()
            loss(network(X_train[batch]), y_train[batch]).backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            val_loss = loss(network(X_val), y_val).item()
        if val_loss < best_loss:
            best_loss, best_state, since_best = val_loss, {n: t.clone() for n, t in network.state_dict().items()}, 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    network.load_state_dict(best_state)
    with torch.no_grad():
        return (network(X_test).argmax(1) == y_test).float().mean().item()


def run_seed(frame: pd.DataFrame, dataset: Dataset, seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    split = split_rows(frame, dataset.target, seed)
    names = frame.columns.drop(dataset.target).tolist()
    hidden = len(names) // 3  # the paper's width for both the selector and the retrained network
    record: dict = {"seed": seed, "rows": {part: len(getattr(split, part)) for part in ("train", "val", "test")}}

    def score(columns: list[str]) -> float:
        return downstream_accuracy(design_matrices(split, columns, dataset.target), hidden, seed)

    record["all_features"] = {"n_columns": len(names), "accuracy": score(names)}
    chosen = select_with_glselect(split, dataset, args.k, seed, args.glselect_args, workdir)
    record["glselect"] = {**chosen, "n_columns": len(chosen["columns"]), "accuracy": score(chosen["columns"])}
    print(
        f"  seed {seed}: all {record['all_features']['accuracy']:.4f}, glselect {record['glselect']['accuracy']:.4f} "
        f"({len(chosen['columns'])} columns, {chosen['seconds']:.0f} s)",
        flush=True,
    )
    if not args.skip_lassonet:
        chosen = select_with_lassonet(design_matrices(split, names, dataset.target), names, args.k, seed, args)
        record["lassonet"] = {**chosen, "n_columns": len(chosen["columns"]), "accuracy": score(chosen["columns"])}
        print(
            f"  seed {seed}: lassonet {record['lassonet']['accuracy']:.4f} ({len(chosen['columns'])} columns, {chosen['seconds']:.0f} s)",
            flush=True,
        )
    return record


def markdown(results: dict) -> str:
    """Per-seed and mean ± std test accuracy, with the published figures alongside."""
    lines = [
        "| data | seed | glselect k=50 | LassoNet k=50 | all columns | glselect wall s (CPU s) | LassoNet wall s (CPU s) "
        "| columns used (glselect / LassoNet) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, entry in results.items():
        runs = entry["runs"]

        def accuracy(values: list[float]) -> str:
            if not values:
                return "–"
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0
            return f"{np.mean(values):.3f}" if len(values) == 1 else f"{np.mean(values):.3f} ± {spread:.3f}"

        def seconds(chosen: list[dict]) -> str:
            if not chosen:
                return "–"
            return f"{np.mean([c['seconds'] for c in chosen]):.0f} ({np.mean([c['cpu_seconds'] for c in chosen]):.0f})"

        def n_columns(run: dict, method: str) -> str:
            return str(run[method]["n_columns"]) if method in run else "–"

        for run in runs:
            cells = [accuracy([run[m]["accuracy"]] if m in run else []) for m in ("glselect", "lassonet", "all_features")]
            times = [seconds([run[m]] if m in run else []) for m in ("glselect", "lassonet")]
            lines.append(
                f"| {name} | {run['seed']} | {' | '.join(cells)} | {' | '.join(times)} "
                f"| {n_columns(run, 'glselect')} / {n_columns(run, 'lassonet')} |"
            )
        cells = [accuracy([run[m]["accuracy"] for run in runs if m in run]) for m in ("glselect", "lassonet", "all_features")]
        times = [seconds([run[m] for run in runs if m in run]) for m in ("glselect", "lassonet")]
        lines.append(
            f"| **{name}** | **mean ± std ({len(runs)} seed{'s' * (len(runs) > 1)})** "
            f"| **{'** | **'.join(cells)}** | {' | '.join(times)} | |"
        )
        lines.append(f"| {name} | published | | {entry['published_k50']:.3f} | {entry['published_all']:.3f} | | | |")
    notes = [
        f"- {name}: glselect `{entry['settings']['glselect_args']}`; LassoNet hidden "
        f"{entry['settings']['lassonet_hidden'] or 'd // 3'}, path multiplier {entry['settings']['lassonet_path_multiplier']}, "
        f"epochs {entry['settings']['lassonet_epochs']}, patience {entry['settings']['lassonet_patience']}; "
        f"{entry['settings']['threads']} torch thread(s)"
        for name, entry in results.items()
    ]
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", choices=sorted(DATASETS))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--glselect-args", default=DEFAULT_GLSELECT_ARGS, help="extra options for 'glselect fit'")
    parser.add_argument("--lassonet-path-multiplier", type=float, default=1.02)
    parser.add_argument("--lassonet-hidden", type=int, help="LassoNet's hidden width (default: the paper's d // 3)")
    parser.add_argument("--lassonet-epochs", default="1000,100", help="most epochs: dense fit, each path point")
    parser.add_argument("--lassonet-patience", default="100,10", help="early-stopping patience: dense fit, each path point")
    parser.add_argument("--skip-lassonet", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for every method")
    parser.add_argument("--results", type=Path, default=RESULTS / "lassonet_paper.json")
    args = parser.parse_args()

    # one thread each by default: on a busy 2-core machine two torch threads ran LassoNet 6x slower
    torch.set_num_threads(args.threads)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    settings = {key: value for key, value in vars(args).items() if key not in ("data_dir", "results", "only")}
    for dataset in [DATASETS[args.only]] if args.only else DATASETS.values():
        frame = read_dataset(args.data_dir, dataset)
        print(f"{dataset.name}: {len(frame)} rows x {frame.shape[1] - 1} columns, seeds {seeds}", flush=True)
        runs: list[dict] = []
        with tempfile.TemporaryDirectory() as folder:
            for seed in seeds:
                runs.append(run_seed(frame, dataset, seed, args, Path(folder)))
                # after every seed, so that a long run stopped early keeps the seeds it finished
                write_results(args.results, dataset, {"settings": settings, "runs": runs})
    table = markdown(json.loads(args.results.read_text()))  # every data set in the file, not only this run's
    args.results.with_suffix(".md").write_text(table)
    print("\n" + table)


def write_results(path: Path, dataset: Dataset, entry: dict) -> None:
    """Replace this data set's entry in the results file, keeping the other data set's."""
    # read just before writing: a run of the other data set may have finished meanwhile
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[dataset.name] = {"published_k50": dataset.published_k50, "published_all": dataset.published_all, **entry}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
