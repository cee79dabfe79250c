"""How long `glselect --version` and `glselect fit --help` take, this tree against another, side by side.

    .venv/bin/python benchmarks/startup.py --baseline /path/to/a/checkout/of/main [--repeats 3]

Each command runs as `python -m glselect ...` in a fresh process with PYTHONPATH set to one tree,
the two trees interleaved so that load on a shared machine hits both alike. Reported: wall seconds
(median) and CPU seconds of the child (user + sys, the least of the repeats, less sensitive to
load), and their ratios. Run it from a folder without Python files (a 'timeit.py' in the working
directory shadows the standard library's, which torch imports).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"--version": ["--version"], "fit --help": ["fit", "--help"], "show --help": ["show", "--help"]}


def measure(root: Path, args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "glselect", *args], env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the revision to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this tree": Path(__file__).resolve().parents[1]}
    walls = {(tree, name): [] for tree in trees for name in COMMANDS}
    cpus = {(tree, name): [] for tree in trees for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            for tree, root in trees.items():
                wall, cpu = measure(root, command)
                walls[tree, name].append(wall)
                cpus[tree, name].append(cpu)
    print("| command | baseline wall s | this tree wall s | ratio | baseline CPU s | this tree CPU s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in COMMANDS:
        wall_a, wall_b = statistics.median(walls["baseline", name]), statistics.median(walls["this tree", name])
        cpu_a, cpu_b = min(cpus["baseline", name]), min(cpus["this tree", name])
        print(f"| `{name}` | {wall_a:.2f} | {wall_b:.2f} | {wall_a / wall_b:.1f}x | {cpu_a:.2f} | {cpu_b:.2f} | {cpu_a / cpu_b:.1f}x |")


if __name__ == "__main__":
    main()
