"""What the default `--goal auto` costs against `--goal minimal`, side by side, on the known-answer problems.

    .venv/bin/python benchmarks/goal_cost.py                              # 9 problems, seed 0 (about 8 minutes)
    .venv/bin/python benchmarks/goal_cost.py --problems make_classification wide --seeds 2

`--goal auto` walks the all-relevant rounds only while a group left out of the minimal selection
has first-order signal (glselect/select/relevant.py), so its cost is a screen of the rows where the
minimal set leaves only noise out and a path fit per round where it does not. Both goals run
through the CLI (`benchmarks/methods.py`), one thread each, one after the other on the same table
(which goes first alternates by problem, so neither always meets a warmer machine). Prints a
markdown table (selected-set F1 of each, seconds of each, their ratio, and the groups each round
of `auto` added), writes it to `--out` and the per-run numbers to the same path with `.json`.
xor_thousands is left out of the default list (about 3 minutes a fit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from methods import select_glselect, write_results
from selection import PROBLEMS, score

DEFAULT_PROBLEMS = [name for name in PROBLEMS if name != "xor_thousands"]
GOALS = ("minimal", "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=DEFAULT_PROBLEMS)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "goal_cost.md")
    args = parser.parse_args()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for index, problem_name in enumerate(args.problems):
            for seed in range(args.seeds):
                problem = PROBLEMS[problem_name][1](seed)
                for goal in GOALS if (index + seed) % 2 == 0 else reversed(GOALS):
                    workdir = Path(folder) / f"{problem_name}_{seed}_{goal}"
                    workdir.mkdir()
                    choice = select_glselect(problem.frame, workdir, seed, f"--threads 1 --goal {goal}", problem.group_of)
                    summary = json.loads((workdir / "table.glselect" / "summary.json").read_text())
                    row = {
                        "problem": problem_name,
                        "seed": seed,
                        "goal": goal,
                        "f1": score(choice, problem)["f1"],
                        "seconds": choice.seconds,
                        "rounds": summary.get("all_relevant_rounds"),
                    }
                    rows.append(row)
                    print(
                        f"  {problem_name} seed {seed} {goal}: F1 {row['f1']:.2f}, {row['seconds']:.1f} s, rounds added {row['rounds']}",
                        flush=True,
                    )
    lines = [
        "| problem | minimal F1 | auto F1 | minimal s | auto s | auto / minimal | auto's rounds added |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for problem_name in args.problems:
        by_goal = {goal: [row for row in rows if row["problem"] == problem_name and row["goal"] == goal] for goal in GOALS}
        f1 = {goal: statistics.mean(row["f1"] for row in runs) for goal, runs in by_goal.items()}
        seconds = {goal: statistics.mean(row["seconds"] for row in runs) for goal, runs in by_goal.items()}
        added = "; ".join(
            f"seed {row['seed']}: " + (" / ".join(", ".join(names) for names in row["rounds"]) or "none") for row in by_goal["auto"]
        )
        lines.append(
            f"| {problem_name} | {f1['minimal']:.2f} | {f1['auto']:.2f} | {seconds['minimal']:.1f} | "
            f"{seconds['auto']:.1f} | {seconds['auto'] / seconds['minimal']:.2f} | {added} |"
        )
    header = f"one thread each, seeds 0..{args.seeds - 1}, means over seeds; the two goals run one after the other\n"
    table = "\n".join(lines) + "\n"
    print("\n" + header + "\n" + table)
    write_results(args.out, [header, table], "--threads 1 --goal minimal | auto", rows)


if __name__ == "__main__":
    main()
