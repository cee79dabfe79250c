"""How converged each lambda of the path is when the solver stops (issue 18: convergence by the
proximal-gradient norm rather than a window of objective changes?).

Runs one default in-memory fit of the selection benchmark's Friedman #1 table (2,000 x 100,
seed 0) in this process, with the solver's ``run`` wrapped: before and after each penalised solve
it measures the gradient mapping ``||(x - prox(x - s grad f(x))) / s||`` (zero exactly at a
stationary point; the solver never computes it itself). Prints, for the solves the window test
called converged and for those that hit the iteration cap, the iterations and the ratio of the
end norm to the start norm.

    .venv/bin/python benchmarks/convergence.py [--rows 2000] [--columns 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import glselect.solve.fista as fista
from glselect._synthetic import make_friedman1

records: list[tuple[int, bool, bool, float, float]] = []  # iterations, converged, stopped, start norm, end norm


def gradient_mapping_norm(solver: fista.ProximalGradient) -> float:
    with torch.enable_grad():
        x = solver._x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(solver._loss(x), [x])
    with torch.no_grad():
        moved = x.detach() - solver._step * grad
        solver._prox_(moved, solver._step)
        return float(torch.linalg.vector_norm((x.detach() - moved) / solver._step))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = fista.ProximalGradient.run

    def measured_run(self, max_iters, tol, stop=None):
        if self.lam <= 0:
            return run(self, max_iters, tol, stop)
        start = gradient_mapping_norm(self)
        result = run(self, max_iters, tol, stop)
        records.append((result.n_iters, result.converged, result.stopped, start, gradient_mapping_norm(self)))
        return result

    fista.ProximalGradient.run = measured_run
    from glselect.cli.app import app

    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "friedman.csv"
        make_friedman1(args.rows, args.columns, noise=1.0, seed=args.seed).to_csv(table, index=False)
        try:
            app(["fit", str(table), "--target", "y", "--out", str(Path(folder) / "out"), "--quiet", "--threads", "1"])
        except SystemExit as stop:
            if stop.code:
                raise
    a = np.array([(n, c, s, end / max(start, 1e-30)) for n, c, s, start, end in records])
    print(
        f"{len(a)} penalised solves, {a[:, 0].sum():.0f} iterations (mean {a[:, 0].mean():.1f}); "
        f"window test converged {a[:, 1].mean():.0%}, stopped by the walker {a[:, 2].mean():.0%}"
    )
    for name, part in (("converged by the window test", a[a[:, 1] == 1]), ("hit the iteration cap", a[(a[:, 1] == 0) & (a[:, 2] == 0)])):
        if len(part):
            q10, q50, q90 = np.quantile(part[:, 3], [0.1, 0.5, 0.9])
            print(
                f"{name}: {len(part)} solves, median {np.median(part[:, 0]):.0f} iterations; "
                f"end / start gradient-mapping norm: 10% {q10:.3f}, median {q50:.3f}, 90% {q90:.3f}"
            )


if __name__ == "__main__":
    sys.exit(main())
