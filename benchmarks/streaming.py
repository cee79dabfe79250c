"""Streaming benchmark: fit Parquet datasets of growing size with ``--stream``; report time and peak memory.

Each dataset is Friedman #1 with 50 float32 columns (only x0..x4 matter), written row group by row
group with a streaming writer so that generating it stays low-memory too. Each fit runs in its
own process; its peak resident memory comes from ``os.wait4`` (that child's own ``ru_maxrss``).

    .venv/bin/python benchmarks/streaming.py --rows 300000 10000000 --hidden 16 --dir /tmp/glselect-bench --keep

Each dataset is deleted once it is fitted, and ``--dir`` at the end unless ``--keep`` is given; with
``--keep`` a dataset already in ``--dir`` (same name, same row count) is reused rather than written again.
The last lines compare each size's peak resident memory with the smallest size's (issue 18: a 10,000,000-row
fit should peak below 500 MB and within 25% of a 300,000-row fit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 262_144
TRUE = {f"x{j}" for j in range(5)}


def generate(path: Path, n_rows: int, n_columns: int, seed: int) -> None:
    """Friedman #1 in row groups of ROW_GROUP rows; memory holds one row group at a time."""
    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(n_columns)]
    schema = pa.schema([*(pa.field(name, pa.float32()) for name in names), pa.field("y", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n_rows, ROW_GROUP):
            n = min(ROW_GROUP, n_rows - start)
            X = rng.random((n, n_columns), dtype=np.float32)
            y = (
                10 * np.sin(np.pi * X[:, 0] * X[:, 1])
                + 20 * (X[:, 2] - 0.5) ** 2
                + 10 * X[:, 3]
                + 5 * X[:, 4]
                + rng.standard_normal(n, dtype=np.float32)
            ).astype(np.float32)
            arrays = [pa.array(X[:, j]) for j in range(n_columns)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP)


def fit(data: Path, out: Path, options: list[str]) -> dict:
    """Run ``glselect fit --stream`` in a child process; its wall time, peak RSS and summary."""
    command = [
        sys.executable,
        "-m",
        "glselect",
        "fit",
        str(data),
        "--target",
        "y",
        "--stream",
        "--out",
        str(out),
        "--force",
        "--json",
        "--quiet",
        *options,
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fit failed on {data} (exit {os.waitstatus_to_exitcode(status)})")
    summary = json.loads(stdout)
    selected = set(summary["selected_features"])
    hits = len(selected & TRUE)
    f1 = 2 * hits / (len(selected) + len(TRUE)) if selected else 0.0
    return {
        "rows": summary["sizes"]["rows"],
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "lambdas": summary["path"]["n_steps"] - 1,
        "selected": sorted(selected, key=lambda name: int(name[1:])),
        "f1": f1,
        "pruned_r2": summary["metrics"]["pruned"]["r2"],
        "timings": summary["timings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/glselect-streaming-bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the generated datasets")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps-per-lambda", type=int, default=586, help="optimizer steps at each lambda, whatever the size")
    parser.add_argument("--dense-steps", type=int, default=1758, help="most steps of the dense fit and of the refit")
    parser.add_argument("--fit-options", default="--max-steps 60", help="more options passed to glselect fit")
    parser.add_argument("--hidden", default="16", help="--hidden of the fits")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n_rows in args.rows:
            data = args.dir / f"friedman_{n_rows}.parquet"
            started = time.perf_counter()
            if not (args.keep and data.exists() and pq.ParquetFile(data).metadata.num_rows == n_rows):
                generate(data, n_rows, args.columns, args.seed)
            generated = time.perf_counter() - started
            # the same optimizer steps at every size: a larger table is seen in a smaller share of an epoch
            steps_per_epoch = 0.6 * n_rows / args.batch_size
            options = [
                "--batch-size",
                str(args.batch_size),
                "--hidden",
                args.hidden,
                "--epochs-per-lambda",
                f"{args.steps_per_lambda / steps_per_epoch:.6g}",
                "--max-epochs",
                f"{args.dense_steps / steps_per_epoch:.6g}",
                *args.fit_options.split(),
            ]
            result = fit(data, args.dir / f"friedman_{n_rows}.glselect", options)
            result["options"] = " ".join(options)
            result.update(generate_seconds=generated, file_mb=data.stat().st_size / 2**20)
            rows.append(result)
            if not args.keep:
                data.unlink()
            print(json.dumps(result), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    print(f"\nper size: {args.steps_per_lambda} steps per lambda, at most {args.dense_steps} for the dense fit and the refit")
    print("| rows x columns | file MB | wall seconds | peak RSS MB | lambdas | selected | F1 | pruned test R2 |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for result in rows:
        print(
            f"| {result['rows']:,} x {args.columns} | {result['file_mb']:,.0f} | {result['seconds']:.0f} | "
            f"{result['peak_rss_mb']:,.0f} | {result['lambdas']} | {', '.join(result['selected'])} | {result['f1']:.2f} | "
            f"{result['pruned_r2']:.3f} |"
        )
    if len(rows) > 1:
        base = rows[0]["peak_rss_mb"]
        for result in rows[1:]:
            print(
                f"peak RSS at {result['rows']:,} rows: {result['peak_rss_mb']:,.0f} MB, "
                f"{result['peak_rss_mb'] / base:.2f}x the {rows[0]['rows']:,}-row fit's {base:,.0f} MB"
            )


if __name__ == "__main__":
    main()
