"""Stream keys: which shuffles of a stream's batches a solver run reads (``MiniBatches.stream(key)``).

A run's key fixes its shuffles, so a resumed walk, a rank under torchrun and a rerun with the same
seed read the same batches. Every run that reads a stream takes its key from here, so no two
jobs share shuffles by accident.
"""

from __future__ import annotations

DENSE_KEY = 0  # the dense fit at the start of the path
PROBE_KEY = 1  # the gradient at a zero first layer (the lambda-max probe)
REFIT_KEY = 2  # the refit on the chosen columns
RELAXED_KEY = 3  # a relaxed score (a support refitted without penalty) outside the path's own keys
REFIT_RETRY_KEY = RELAXED_KEY  # the refit's second try, without the neuron penalty: a refit like a relaxed score
SCREEN_KEY = 4  # the sample the pair screen and the all-relevant gate read


def lambda_key(n_steps: int, n_rejected: int) -> int:
    """The key of a path's solve at step ``n_steps`` after ``n_rejected`` undone lambdas: the same on a resumed walk."""
    return 1000 + 1009 * n_steps + n_rejected


def relaxed_key(solve_key: int) -> int:
    """The key of the relaxed score of the support a solve keyed ``solve_key`` reached."""
    return solve_key + 1


__all__ = ["DENSE_KEY", "PROBE_KEY", "REFIT_KEY", "REFIT_RETRY_KEY", "RELAXED_KEY", "SCREEN_KEY", "lambda_key", "relaxed_key"]
