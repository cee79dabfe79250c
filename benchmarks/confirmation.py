"""Confirmation's t statistics on the validation rows against cross-fitted over all model rows (issue 14).

    .venv/bin/python benchmarks/confirmation.py [--seeds 0 1 2]

On `selection.make_wide(seed)` (600 x 2,000: six linear columns x0..x5, a U-shape x6, a wave x7),
standardised and split 80 / 20 into training and validation rows, a support of the eight true
columns and four random noise columns is refitted and each group shuffled (10 times):

- on the validation rows: one refit on the training rows, early-stopped on and tested on the
  validation rows (120), as confirmation does on a table with many validation rows;
- cross-fitted: five refits, each on four folds' rows (early-stopped on a share of them) and tested
  on the fifth fold, the per-row increases pooled over all 600 model rows (`select/confirm.py`).

A column passes at t >= 3 (`--confirm`). Writes `benchmarks/results/confirmation.md`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from relaxed_bias import encoded_problem  # noqa: E402

from glselect.path.walk import LambdaPath, PathStep  # noqa: E402
from glselect.select.confirm import CROSS_FIT_FOLDS, FoldRefits, cross_fit_folds, t_cross_fitted, t_on_validation  # noqa: E402
from glselect.select.refit import refit  # noqa: E402

N_NOISE = 4


def one_step_path(group_mask: np.ndarray) -> LambdaPath:
    """A path whose only step keeps ``group_mask``: what refit reads the support from."""
    step = PathStep(
        lam=0.0,
        n_selected=int(group_mask.sum()),
        group_norms=group_mask.astype(float),
        train_loss=0.0,
        val_loss=0.0,
        objective=0.0,
        n_iters=0,
        converged=True,
        relaxed_val_loss=0.0,
        relaxed_val_se=0.0,
    )
    return LambdaPath(steps=(step,), dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)


def run(seed: int, n_folds: int) -> list[dict]:
    problem, groups, truth = encoded_problem("wide", seed)
    rng = np.random.default_rng(seed)
    noise = list(rng.choice([g for g in groups if g not in truth], N_NOISE, replace=False))
    chosen = sorted(truth) + noise
    mask = np.isin(np.arange(len(groups)), [groups.index(name) for name in chosen])
    path = one_step_path(mask)
    started = time.perf_counter()
    t_val = t_on_validation(refit(problem, path, 0, "1se"), problem)
    validation_seconds = time.perf_counter() - started
    folds = cross_fit_folds(problem, n_folds)
    state = FoldRefits(mask, tuple((fold, tested, refit(fold, path, 0, "1se")) for fold, tested in folds))
    t_cf = t_cross_fitted(state)
    cross_seconds = time.perf_counter() - started - validation_seconds
    print(f"seed {seed}: {validation_seconds:.1f} s on the validation rows, {cross_seconds:.1f} s cross-fitted", flush=True)
    return [
        {
            "seed": seed,
            "column": name,
            "true": name in truth,
            "t_validation": float(t_val[groups.index(name)]),
            "t_cross_fitted": float(t_cf[groups.index(name)]),
            "validation_rows": len(problem.val),
            "model_rows": sum(len(tested) for _, tested in folds),
        }
        for name in chosen
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=CROSS_FIT_FOLDS, help="cross-fitting folds (default: what confirmation uses)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "confirmation.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = [record for seed in args.seeds for record in run(seed, args.folds)]
    lines = [
        "# Confirmation on the validation rows against cross-fitted (`benchmarks/confirmation.py`)",
        "",
        f"`wide` (600 x 2,000), the eight true columns and {N_NOISE} random noise columns refitted; "
        f"{records[0]['validation_rows']} validation rows, {records[0]['model_rows']} model rows cross-fitted over {args.folds} folds. "
        "A column passes at t >= 3.",
        "",
        "| seed | column | true | t, validation rows | t, cross-fitted |",
        "|---:|---|---|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['seed']} | {r['column']} | {'yes' if r['true'] else 'no'} | {r['t_validation']:.2f} | {r['t_cross_fitted']:.2f} |"
        )
    for kind in ("t_validation", "t_cross_fitted"):
        true_t = [r[kind] for r in records if r["true"]]
        noise_t = [r[kind] for r in records if not r["true"]]
        passed = sum(t >= 3 for t in true_t)
        lines.append("")
        lines.append(
            f"{kind.replace('t_', '').replace('_', '-')}: true columns passing {passed} of {len(true_t)} "
            f"(t {min(true_t):.2f} to {max(true_t):.2f}); noise columns passing {sum(t >= 3 for t in noise_t)} "
            f"of {len(noise_t)} (t {min(noise_t):.2f} to {max(noise_t):.2f})."
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
