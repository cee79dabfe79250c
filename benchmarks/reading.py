"""Reading and encoding speed: what ``glselect fit`` does before the path, this tree against another, side by side.

    .venv/bin/python benchmarks/reading.py --baseline /path/to/a/checkout/of/main [--rows 200000 --columns 500]

One generated table (float32 columns, one with missing cells, an integer count, a boolean, a text column
with missing cells and a 40-level categorical) is written as Parquet and as CSV; each tree then opens it
as ``glselect fit`` does (``data.open.open_dataset``: read, column statistics, encoding) in a fresh process
with PYTHONPATH set to that tree, the trees interleaved so that load on a shared machine hits both alike.
Reported per format and tree: seconds to read the file (``read_table``), to collect the statistics and fit
the encoder (``fit_encoder_and_stats``), to encode (``encode``) and in all (``open_dataset``), the least
of the repeats, and the ratio old / new. Each child also hashes what it built (the float32 design matrix,
the target, the encoder's JSON and the reading report): the trees must agree bit for bit.
``--profile DIR`` writes each child's cProfile (top 25 by cumulative time) there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

STAGES = ("read", "stats", "encode", "total")


def generate(stem: Path, n_rows: int, n_columns: int, seed: int) -> tuple[Path, Path]:
    """A table like a wide real one: mostly float32 numbers, a few of the other kinds the encoder handles."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_columns), dtype=np.float32)
    arrays = {f"x{j}": pa.array(X[:, j]) for j in range(n_columns)}
    arrays["x1"] = pa.array(X[:, 1], mask=rng.random(n_rows) < 0.05)  # missing cells: imputed and flagged
    arrays["count"] = pa.array(rng.integers(0, 50, n_rows))
    arrays["flag"] = pa.array(rng.random(n_rows) > 0.5)
    cities = np.array(["paris", "rome", "oslo", "lima", "kyiv"], dtype=object)[rng.integers(0, 5, n_rows)]
    arrays["city"] = pa.array(cities, mask=rng.random(n_rows) < 0.02)
    arrays["grade"] = pa.array(np.array([f"g{k}" for k in range(40)], dtype=object)[rng.integers(0, 40, n_rows)])
    arrays["y"] = pa.array(X[:, 0] + np.maximum(X[:, 1], 0) + rng.standard_normal(n_rows, dtype=np.float32))
    table = pa.table(arrays)
    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    pq.write_table(table, parquet)
    pa_csv.write_csv(table, csv)
    return parquet, csv


def child(table: Path, profile: Path | None) -> None:
    """Open ``table`` as ``glselect fit`` does, in this process, with the stages timed; print one JSON line."""
    import cProfile
    import hashlib
    import importlib
    import io
    import pstats

    import torch

    from glselect import distributed
    from glselect.config import RunConfig

    # the module whose open_dataset a fit calls: data/open.py, or pipeline.py in older trees
    try:
        opener = importlib.import_module("glselect.data.open")
    except ModuleNotFoundError:
        opener = importlib.import_module("glselect.pipeline")

    seconds = dict.fromkeys(STAGES, 0.0)
    cpu = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, function):
        def wrapper(*args, **kwargs):
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - started
                cpu[stage] += time.process_time() - started_cpu

        return wrapper

    # the stages are looked up in the opener's namespace when open_dataset runs, so wrapping them there times them
    for stage, name in (
        ("read", "read_table"),
        ("read", "read_arrow_table"),
        ("stats", "fit_encoder_and_stats"),
        ("encode", "encode"),
        ("encode", "encode_features"),
    ):
        if hasattr(opener, name):
            setattr(opener, name, timed(stage, getattr(opener, name)))
    config = RunConfig(table=table, target="y")
    profiler = cProfile.Profile() if profile else None
    started, started_cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    data = opener.open_dataset(config, torch.device("cpu"), distributed.SINGLE)
    if profiler:
        profiler.disable()
    seconds["total"] = time.perf_counter() - started
    cpu["total"] = time.process_time() - started_cpu
    digest = hashlib.sha256()
    for array in (data.X, data.y, data.parts, data.group_index.group_ids):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(data.encoder.to_dict(), sort_keys=True, default=str).encode())
    digest.update(json.dumps(data.reading.to_dict(), sort_keys=True, default=str).encode())
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        profile.write_text(text.getvalue())
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "shape": list(data.X.shape), "digest": digest.hexdigest()}))


def measure(root: Path, table: Path, profile: Path | None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(table)]
    if profile:
        command += ["--profile", str(profile)]
    # run from the tree itself: the working directory comes first on sys.path and would shadow PYTHONPATH
    done = subprocess.run(command, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{root} failed on {table}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with (e.g. main)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=500, help="float32 columns (five columns of other kinds are added)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/glselect-reading-bench"))
    parser.add_argument("--profile", type=Path, help="write each child's cProfile here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.profile)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tables = generate(args.dir / f"table_{args.rows}x{args.columns}", args.rows, args.columns, args.seed)
    print(f"generated {args.rows:,} x {args.columns + 6} in {time.perf_counter() - started:.0f} s", flush=True)
    trees = {"new": Path(__file__).resolve().parents[1]}
    if args.baseline:
        trees = {"old": args.baseline.resolve(), **trees}
    best: dict[tuple[str, str], dict[str, float]] = {}
    best_cpu: dict[tuple[str, str], dict[str, float]] = {}
    digests: dict[tuple[str, str], str] = {}
    for table in tables:
        fmt = table.suffix[1:]
        for repeat in range(args.repeats):
            for label, root in trees.items():
                profile = args.profile / f"{label}_{fmt}.txt" if args.profile and repeat == 0 else None
                result = measure(root, table, profile)
                print(json.dumps({"tree": label, "format": fmt, **result}), flush=True)
                previous = best.setdefault((label, fmt), dict.fromkeys(STAGES, float("inf")))
                previous_cpu = best_cpu.setdefault((label, fmt), dict.fromkeys(STAGES, float("inf")))
                for stage in STAGES:
                    previous[stage] = min(previous[stage], result["seconds"][stage])
                    previous_cpu[stage] = min(previous_cpu[stage], result["cpu_seconds"][stage])
                digests.setdefault((label, fmt), result["digest"])
                if digests[(label, fmt)] != result["digest"]:
                    raise SystemExit(f"{label} built different outputs from {table} on two runs")
    # wall seconds, and CPU seconds of the process (Arrow reads with several threads, so its CPU time exceeds its
    # wall time; the statistics and the encoding run on one thread, where CPU time is the measure least moved by load)
    for title, table_of in (("wall seconds", best), ("CPU seconds", best_cpu)):
        print(f"\n{args.rows:,} rows x {args.columns} float32 columns + 5 others + target; {title}, least of {args.repeats}")
        print("| format | tree | read | stats | encode | open_dataset in all |")
        print("|---|---|---:|---:|---:|---:|")
        for table in tables:
            fmt = table.suffix[1:]
            for label in trees:
                s = table_of[(label, fmt)]
                print(f"| {fmt} | {label} | {s['read']:.2f} | {s['stats']:.2f} | {s['encode']:.2f} | {s['total']:.2f} |")
            if "old" in trees:
                old, new = table_of[("old", fmt)], table_of[("new", fmt)]
                print(f"| {fmt} | old / new | " + " | ".join(f"{old[stage] / new[stage]:.2f}x" for stage in STAGES) + " |")
    if "old" in trees:
        for table in tables:
            fmt = table.suffix[1:]
            same = digests[("old", fmt)] == digests[("new", fmt)]
            print(f"{fmt}: design matrix, target, encoder and reading report {'identical' if same else 'DIFFER'} (old vs new)")


if __name__ == "__main__":
    main()
