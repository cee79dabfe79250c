"""Everything issue 18 asks of a GPU, in one prepared run for a session that is lent a CUDA machine.

    python benchmarks/gpu.py --out "$OUT/gpu.json"                       # on the device, about 8 minutes
    .venv/bin/python benchmarks/gpu.py --device cpu --rows 2000 --stream-rows 20000 --out /tmp/gpu.json   # a dry run

Device time is short (15 minutes a session, starts included), so every part runs in its own
subprocess under its own timeout, one failing part does not stop the others, and each result is
written to ``--out`` as soon as it is known (a cut-off run keeps what it finished):

1. ``tests``: the CUDA-only tests (``tests/solve/test_sync_free.py``: a path under
   ``torch.cuda.set_sync_debug_mode("error")``; ``tests/cli/test_streamed_fits.py``: a fit end to end in
   memory and streamed on cuda).
2. ``syncs``: one default fit of Friedman #1 (``--rows`` x 500) with the sync debug mode set to
   "warn", counting its warnings: the host-device synchronisations of the whole fit, and of the
   solver runs alone (the issue measured about 70,000 for the old loop).
3. ``speed``: default fits of Friedman #1 at 5,000, ``--rows`` and 100,000 rows x 500 on the
   device and on the machine's CPUs (all cores), each in its own process, one after the other:
   wall seconds and the selected set, so the CPU/GPU crossover and the "2 s or less" target
   (20,000 rows) are read off one table. LassoNet's default path on the device when ``lassonet``
   is importable (``benchmarks/speed.run_lassonet``; carry it in a virtual environment if the
   device lacks it).
4. ``stream``: a ``--stream-rows`` x 50 float32 Parquet file (``benchmarks/streaming.generate``)
   fitted with ``--stream`` on the device; rows per second per epoch from ``summary.json``
   (the target: 1,000,000 or more).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
TRUE = {f"x{j}" for j in range(5)}


def friedman_table(folder: Path, rows: int) -> Path:
    from glselect._synthetic import make_friedman1

    path = folder / f"friedman_{rows}.parquet"
    if not path.exists():
        make_friedman1(rows, 500, noise=1.0, seed=1).to_parquet(path, index=False)
    return path


def fit(table: Path, device: str, threads: int | None, stream: bool = False) -> dict:
    """One default fit in this process: wall seconds, selected set, and the streamed speed."""
    from glselect import RunConfig, run
    from glselect.config import StreamConfig

    config = RunConfig(
        table=table,
        target="y",
        out=table.with_suffix(f".out{os.getpid()}"),
        device=device,
        threads=threads,
        stream=StreamConfig(stream=True) if stream else StreamConfig(),
    )
    started = time.perf_counter()
    result = run(config)
    summary = result.summary
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "selected": summary["selected_features"],
        "exact": set(summary["selected_features"]) == TRUE,
        "lambdas": summary["path"]["n_steps"],
        "streaming": summary.get("streaming", {}).get("rows_per_second_per_epoch"),
    }


def count_syncs(table: Path, device: str) -> dict:
    """The host-device synchronisations of one fit, and of its solver runs alone."""
    import torch

    from glselect.solve import fista

    inside = [False]
    counts = {"fit": 0, "solver": 0, "solver_iterations": 0}
    solve = fista.ProximalGradient.run

    def counted(self, *args, **kwargs):
        inside[0] = True
        try:
            result = solve(self, *args, **kwargs)
        finally:
            inside[0] = False
        counts["solver_iterations"] += result.n_iters
        return result

    fista.ProximalGradient.run = counted

    def on_warning(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message).lower():
            counts["fit"] += 1
            counts["solver"] += inside[0]

    if device == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = on_warning
        outcome = fit(table, device, None)
    if device == "cuda":
        torch.cuda.set_sync_debug_mode("default")
    return {**outcome, **counts, "counted": device == "cuda"}


def lassonet(table: Path) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from speed import run_lassonet

    outcome = run_lassonet(table, hidden=32)
    return {"seconds": round(outcome["seconds"], 2), "selected": outcome["selected"], "lambdas": outcome["n_lambdas"]}


def child(args: argparse.Namespace) -> None:
    table = Path(args.table)
    if args.part == "syncs":
        outcome = count_syncs(table, args.device)
    elif args.part == "lassonet":
        outcome = lassonet(table)
    else:
        outcome = fit(table, args.device, args.threads, stream=args.part == "stream")
    print(json.dumps(outcome))


def launch(part: str, table: Path, device: str, timeout: float, threads: int | None = None) -> dict:
    command = [sys.executable, str(HERE), "--part", part, "--table", str(table), "--device", device]
    if threads:
        command += ["--threads", str(threads)]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1], "wall": round(time.perf_counter() - started, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="the device under test (cpu: a dry run)")
    parser.add_argument("--rows", type=int, default=20000, help="Friedman rows of the sync count and the middle speed table")
    parser.add_argument("--stream-rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("gpu.json"))
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per part")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        child(args)
        return
    results: dict = {"device": args.device}

    def record(key: str, value: object) -> None:
        results[key] = value
        args.out.write_text(json.dumps(results, indent=1))
        print(f"{key}: {json.dumps(value)}", flush=True)

    if args.device == "cuda":
        tests = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/solve/test_sync_free.py",
                "tests/cli/test_streamed_fits.py",
                "-k",
                "cuda",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=args.timeout,
        )
        record("tests", {"returncode": tests.returncode, "tail": tests.stdout.strip().splitlines()[-3:]})
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        middle = friedman_table(folder, args.rows)
        record("syncs", launch("syncs", middle, args.device, args.timeout))
        cores = os.cpu_count() or 1
        for rows in sorted({max(args.rows // 4, 1000), args.rows, args.rows * 5}):
            table = friedman_table(folder, rows)
            record(f"speed_{rows}_{args.device}", launch("fit", table, args.device, args.timeout))
            record(f"speed_{rows}_cpu_{cores}_threads", launch("fit", table, "cpu", args.timeout, threads=cores))
        record(f"lassonet_{args.rows}_{args.device}", launch("lassonet", middle, args.device, args.timeout))
        sys.path.insert(0, str(HERE.parent))
        from streaming import generate

        streamed = folder / "stream.parquet"
        generate(streamed, args.stream_rows, 50, seed=0)
        record(f"stream_{args.stream_rows}_{args.device}", launch("stream", streamed, args.device, args.timeout))


if __name__ == "__main__":
    main()
