"""Does a default fit warn of unconverged path steps? One `glselect fit` per known-answer problem.

    .venv/bin/python benchmarks/convergence_known_answers.py > benchmarks/results/convergence_known_answers.md
    .venv/bin/python benchmarks/convergence_known_answers.py --problems friedman xor --seeds 2

Each problem of `benchmarks/selection.py` (the same generated tables, seed by seed) plus the two
samples in sample_data/, fitted with the defaults and `--threads 1`. Per fit: the path's steps,
how many stopped short of `--tol` (summary.json `path.n_unconverged_steps`), the best rank among
groups that left at such a step (`path.unconverged_from_rank`; the path solves the steps of the
top `path.ranks_solved_to_tol` ranks to `--tol`), the largest optimality measure, whether the fit
printed the convergence warning, and the path's seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from selection import PROBLEMS

HERE = Path(__file__).resolve().parent
SAMPLES = {
    "sample (friedman.csv)": (HERE.parent / "sample_data" / "friedman.csv", HERE.parent / "sample_data" / "groups.csv"),
    "sample (stand_ins.csv)": (HERE.parent / "sample_data" / "stand_ins.csv", None),
}


def fit(table: Path, groups: Path | None, out: Path, seed: int) -> dict:
    command = [sys.executable, "-m", "glselect", "fit", str(table), "--target", "y", "--out", str(out), "--force", "--quiet"]
    command += ["--threads", "1", "--seed", str(seed)] + (["--groups", str(groups)] if groups is not None else [])
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    summary = json.loads((out / "summary.json").read_text())
    path = summary["path"]
    return {
        "steps": path["n_steps"] - 1,
        "unconverged": path["n_unconverged_steps"],
        "from_rank": path["unconverged_from_rank"],
        "solved_ranks": path.get("ranks_solved_to_tol"),
        "worst": path["worst_optimality"],
        "warned": "stopped short of --tol" in done.stderr,
        "path_seconds": summary["timings"]["path_seconds"],
        "selected": len(summary["selected_groups"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=[name for name in PROBLEMS if name != "xor_thousands"])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    print("glselect defaults, `--threads 1`; one fit per problem and seed\n")
    columns = ["problem", "seed", "groups selected", "path steps", "unconverged", "from rank", "ranks solved to --tol"]
    print("| " + " | ".join([*columns, "worst optimality", "warned", "path s"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as folder:
        runs: list[tuple[str, int, Path, Path | None]] = [(name, 0, table, groups) for name, (table, groups) in SAMPLES.items()]
        for name in args.problems:
            for seed in range(args.seeds):
                problem = PROBLEMS[name][1](seed)
                table = Path(folder) / f"{name}_{seed}.csv"
                problem.frame.to_csv(table, index=False)
                groups = None
                if problem.group_of is not None:
                    groups = Path(folder) / f"{name}_{seed}_groups.csv"
                    pd.DataFrame({"feature": list(problem.group_of), "group": list(problem.group_of.values())}).to_csv(groups, index=False)
                runs.append((name, seed, table, groups))
        for name, seed, table, groups in runs:
            row = fit(table, groups, Path(folder) / "out", seed)
            if "error" in row:
                print(f"| {name} | {seed} | error: {row['error']} | | | | | | | |", flush=True)
                continue
            print(
                f"| {name} | {seed} | {row['selected']} | {row['steps']} | {row['unconverged']} | {row['from_rank'] or ''} | "
                f"{row['solved_ranks']} | {row['worst']:.3g} | {'yes' if row['warned'] else 'no'} | {row['path_seconds']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
