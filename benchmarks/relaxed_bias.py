"""Does the relaxed score favour the supports the penalty shrank least? (issue 14)

    .venv/bin/python benchmarks/relaxed_bias.py [--problems friedman wide ...] [--seeds 0 1 2]

Each new support along a default path is scored by a relaxed refit: the penalised step's network,
restricted to the support, trained without penalty (early-stopped on the validation rows) and
measured on them. A support that leaves late (large lambda) starts that refit from heavily shrunk
weights; one that leaves early starts close to its unpenalised optimum. If the refit is cut short
before it undoes the shrinkage, the sparse supports are scored too high and the rule leans toward
large supports.

For every scored support this script records, beside the path's own score (at most
``--relax-iters``, default 3,000 iterations, stopping once the validation loss stops improving):

- ``capped``: the same warm start cut at 100 iterations, the default before this benchmark;
- ``fresh``: a fresh seeded network on the support trained to convergence, as the refit is: the
  score of the support itself, whatever the path did to its weights;

and the support's shrinkage, the ratio of its groups' first-layer norm at the step to the dense
model's. It reports how much a 100-iteration cap leaves undone against that shrinkage, and which
step the 1se rule chooses by each score. The tables come from `benchmarks/selection.py`'s
generators; the input is standardised as the command line does (centred, unit variance).

Writes `benchmarks/results/relaxed_bias.md` (and `.json`).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from selection import PROBLEMS, TARGET  # noqa: E402

from glselect.config import SelectionConfig  # noqa: E402
from glselect.path import walk  # noqa: E402
from glselect.path.problem import Problem, Settings  # noqa: E402
from glselect.select.choose import StepScores, choose_step, stack_row_losses  # noqa: E402

TASKS = {"regression": "regression", "classification": "binary"}
CAP_BEFORE = 100  # relaxed-refit iterations before issue 14 (--relax-iters)


def encoded_problem(name: str, seed: int) -> tuple[Problem, list[str], set[str]]:
    """The generated table, standardised, split 80 / 20 into training and validation rows."""
    generated = PROBLEMS[name][1](seed)
    frame = generated.frame
    names = [c for c in frame.columns if c != TARGET]
    X = frame[names].to_numpy(np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = frame[TARGET].to_numpy(np.float64)
    task = TASKS[generated.task]
    if task == "regression":
        y = (y - y.mean()) / y.std()
    elif len(np.unique(y)) > 2:
        task = "multiclass"
    n_train = int(0.8 * len(y))
    X_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    if task == "multiclass":
        y_t = y_t.long()
    group_of = generated.group_of or {c: c for c in names}
    groups = list(dict.fromkeys(group_of[c] for c in names))
    group_ids = np.array([groups.index(group_of[c]) for c in names])
    n_encoded = np.bincount(group_ids, minlength=len(groups))
    problem = Problem.from_arrays(
        (X_t[:n_train], y_t[:n_train]), (X_t[n_train:], y_t[n_train:]), group_ids, n_encoded, task, Settings(), seed=seed
    )
    return problem, groups, set(generated.truth)


def run(name: str, seed: int) -> dict:
    problem, groups, truth = encoded_problem(name, seed)
    torch.manual_seed(seed)
    extra: dict[bytes, dict] = {}
    dense: dict = {}
    original = walk.relaxed_val_loss

    def recording(problem_: Problem, model, keep: np.ndarray, key: int = 3):
        scored = original(problem_, model, keep, key)
        support = np.packbits(keep).tobytes()
        capped = original(problem_.with_path(relax_iters=CAP_BEFORE), model, keep, key)
        narrow = problem_.restrict(keep)
        fresh_model = narrow.new_model()
        narrow.train(fresh_model, "train", key=key)
        step_norm = float(torch.linalg.vector_norm(model.first_weight.detach()[:, torch.as_tensor(keep)]))
        dense_norm = float(torch.linalg.vector_norm(dense["model"].first_weight.detach()[:, torch.as_tensor(keep)]))
        extra[support] = {
            "capped": capped,
            "fresh": walk._mean_and_se(fresh_model, narrow.val, problem_.datafit.row_loss),
            "shrinkage": step_norm / dense_norm if dense_norm > 0 else float("nan"),
        }
        return scored

    # the dense model (step 0) is what the shrinkage is measured against: keep a copy as the walk makes it
    original_start = walk._start

    def start(problem_: Problem, model):
        state = original_start(problem_, model)
        dense["model"] = copy.deepcopy(model)  # the walk goes on training ``model`` in place
        return state

    walk.relaxed_val_loss, walk._start = recording, start
    started = time.perf_counter()
    try:
        path = walk.fit_path(problem)
    finally:
        walk.relaxed_val_loss, walk._start = original, original_start
    seconds = time.perf_counter() - started

    # per step: the support key as the walk computed it
    keys = [np.packbits(step.group_norms[problem.group_ids] > 0).tobytes() for step in path.steps]
    records = []
    scores: dict[str, list] = {"path": [], "capped": [], "fresh": []}
    for index, (step, key) in enumerate(zip(path.steps, keys)):
        info = extra.get(key)
        scored = index > 0 and np.isfinite(step.relaxed_val_loss) and info is not None
        scores["path"].append((step.relaxed_val_loss, step.relaxed_val_se, step.relaxed_val_rows))
        for kind in ("capped", "fresh"):
            scores[kind].append(
                info[kind]
                if scored
                else (
                    (step.relaxed_val_loss, step.relaxed_val_se, step.relaxed_val_rows)
                    if index == 0 or step.n_selected == 0
                    else (np.nan, np.nan, None)
                )
            )
        if scored:
            records.append(
                {
                    "step": index,
                    "n_selected": step.n_selected,
                    "shrinkage": info["shrinkage"],
                    "path": step.relaxed_val_loss,
                    "capped": info["capped"][0],
                    "fresh": info["fresh"][0],
                    "true_in": sum(groups[g] in truth for g in np.flatnonzero(step.group_norms > 0)),
                }
            )
    chosen = {}
    for kind, values in scores.items():
        step_scores = StepScores(
            loss=np.array([v[0] for v in values]),
            se=np.array([v[1] for v in values]),
            source="validation",
            rows=stack_row_losses([v[2] for v in values]),
        )
        index, _ = choose_step(path, SelectionConfig(), step_scores)
        kept = [groups[g] for g in np.flatnonzero(path.steps[index].group_norms > 0)]
        chosen[kind] = {
            "step": index,
            "n_selected": len(kept),
            "true": sum(g in truth for g in kept),
            "noise": sum(g not in truth for g in kept),
        }
    return {"problem": name, "seed": seed, "n_true": len(truth), "seconds": seconds, "records": records, "chosen": chosen}


def summarise(results: list[dict]) -> str:
    lines = [
        "# Relaxed scores against the penalty's shrinkage (`benchmarks/relaxed_bias.py`)",
        "",
        "Per scored support: `shrinkage` = first-layer norm of its columns at the step / in the dense model; "
        "`left undone` = the score of the same warm start cut at 100 iterations (the old default) minus the "
        "path's own (at most 3,000, stopping once the validation loss stops improving), in validation loss; "
        "`fresh` = a fresh network on the support trained to convergence. "
        "Spearman correlations over a path's scored supports.",
        "",
        "| problem | seed | scored supports | median shrinkage | left undone at 100: median (max) | corr(left undone, shrinkage) "
        "| corr(path - fresh, shrinkage) | 1se picks by path / capped at 100 / fresh (true + noise) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        records = result["records"]
        shrink = np.array([r["shrinkage"] for r in records])
        left = np.array([r["capped"] - r["path"] for r in records])
        versus_fresh = np.array([r["path"] - r["fresh"] for r in records])

        def spearman(a: np.ndarray, b: np.ndarray) -> float:
            if len(a) < 3:
                return float("nan")
            ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
            return float(np.corrcoef(ra, rb)[0, 1])

        picks = " / ".join(f"{c['true']}+{c['noise']}" for c in result["chosen"].values())
        lines.append(
            f"| {result['problem']} | {result['seed']} | {len(records)} | {np.median(shrink):.2f} | "
            f"{np.median(left):.4f} ({left.max():.4f}) | {spearman(left, shrink):+.2f} | "
            f"{spearman(versus_fresh, shrink):+.2f} | {picks} (of {result['n_true']}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["friedman", "make_classification", "weak_linear", "wide"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "relaxed_bias.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    for name in args.problems:
        for seed in args.seeds:
            results.append(run(name, seed))
            print(summarise(results[-1:]).splitlines()[-1], flush=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    args.out.write_text(summarise(results))
    print(summarise(results))


if __name__ == "__main__":
    main()
