"""How a fit slows down on a machine shared with CPU-bound work: quiet, then beside busy loops.

    .venv/bin/python benchmarks/shared_machine.py [--rows 20000] [--columns 500] [--busy 2]
        [--fit-options "--max-steps 10"] [--env OMP_WAIT_POLICY=ACTIVE ...]

Writes Friedman #1 (seed 1) as CSV, then runs ``glselect fit`` on it in a subprocess with its
default threads: once on a quiet machine, once beside ``--busy`` Python busy loops (each pins one
core's worth of work), for each ``--env`` setting (``default`` is glselect as shipped). Prints the
wall seconds and the loaded / quiet ratio; on a 2-core machine with two busy loops a fair share of
the cores is half of them, so about 2x is what a well-behaved program slows by.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY = "while True:\n    pass\n"


def fit_seconds(csv: Path, out: Path, options: list[str], env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "glselect", "fit", str(csv), "--target", "y", "--out", str(out), "--force", "--quiet", *options]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--columns", type=int, default=500)
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes beside the loaded fit")
    parser.add_argument("--fit-options", default="", help="extra options for glselect fit")
    parser.add_argument("--env", nargs="*", default=["default"], help="NAME=VALUE settings to compare ('default': none)")
    args = parser.parse_args()
    from glselect._synthetic import make_friedman1

    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "friedman.csv"
        make_friedman1(args.rows, args.columns, noise=1.0, seed=1).to_csv(csv, index=False)
        print(f"Friedman #1 {args.rows:,} x {args.columns}, options '{args.fit_options}', {os.cpu_count()} cores, {args.busy} busy loops")
        print("| setting | quiet s | loaded s | loaded / quiet |\n|---|---:|---:|---:|")
        for setting in args.env:
            env = {} if setting == "default" else dict([setting.split("=", 1)])
            quiet = fit_seconds(csv, Path(folder) / "out", args.fit_options.split(), env)
            loops = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
            try:
                loaded = fit_seconds(csv, Path(folder) / "out", args.fit_options.split(), env)
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
            print(f"| {setting} | {quiet:.1f} | {loaded:.1f} | {loaded / quiet:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
