"""Leakage: a group that alone predicts the target almost perfectly is listed and warned about; an honest one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glselect.data.open import frame_dataset
from glselect.options import config_from
from glselect.outputs.report import fit_warnings
from glselect.pipeline import fit_frame, make_problem
from glselect.select.leakage import group_scores

CHEAP = {"hidden": "0", "permutation_repeats": 0, "max_iters": 200, "lambda_step": 1.3, "max_iters_per_lambda": 20}
CHEAP_FIT = {**CHEAP, "goal": "minimal", "confirm": 0, "val_fraction": 0.25}


def numbers(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.standard_normal(n) for name in ("a", "z", "n1")})


def scores(frame: pd.DataFrame, **options: object) -> np.ndarray | None:
    config = config_from({"target": "y", **CHEAP, "val_fraction": 0.25, **options}, table=Path("t.csv"))
    return group_scores(make_problem(frame_dataset(frame, config, None, torch.device("cpu")), config))


def test_a_copy_of_the_regression_target_is_listed_and_warned_about_and_an_honest_predictor_is_not() -> None:
    frame = numbers()
    frame["y"] = 2 * frame["a"] + 0.66 * np.random.default_rng(1).standard_normal(len(frame))  # R^2 about 0.9
    frame["leak"] = 3 * frame["y"] + 1
    result = fit_frame(frame, config_from({"target": "y", **CHEAP_FIT}, table=Path("t.csv")))
    assert result.summary["leakage"] == [{"group": "leak", "score": 1.0, "metric": "r2"}]
    assert fit_warnings(result.summary)[0] == (
        "group 'leak' alone predicts the target almost perfectly (r2 1 on the validation rows): it may copy the target "
        "or be computed from it; drop it (--drop) unless its values are known before the target's"
    )
    honest = fit_frame(frame.drop(columns="leak"), config_from({"target": "y", **CHEAP_FIT}, table=Path("t.csv")))
    assert honest.summary["leakage"] == []
    assert not any("predicts the target" in line for line in fit_warnings(honest.summary))


def test_a_categorical_copy_of_the_class_is_listed_with_its_balanced_accuracy() -> None:
    frame = numbers(seed=2)
    frame["y"] = np.where(frame["a"] + 0.5 * frame["z"] > 0, "yes", "no")
    frame["status"] = np.where(frame["y"] == "yes", "closed", "open")  # a one-hot group: read through its projection
    result = fit_frame(frame, config_from({"target": "y", **CHEAP_FIT}, table=Path("t.csv")))
    assert result.summary["leakage"] == [{"group": "status", "score": 1.0, "metric": "balanced_accuracy"}]
    assert "group 'status' alone predicts the target almost perfectly (balanced_accuracy 1 on" in fit_warnings(result.summary)[0]


def test_scores_follow_any_function_of_one_column_and_stay_low_for_noise_and_honest_signal() -> None:
    frame = numbers()
    rng = np.random.default_rng(3)
    # groups a, z, n1: y = z^2 is no straight line and not monotone, but a function of z alone
    squared = scores(frame.assign(y=frame["z"] ** 2))
    assert squared is not None and squared[1] >= 0.99 and max(squared[0], squared[2]) < 0.2
    strong = scores(frame.assign(y=2 * frame["a"] + 0.66 * rng.standard_normal(len(frame))))
    assert strong is not None and 0.7 < strong[0] < 0.9  # about 1 - 1.5 to 2 times (1 - 0.9): the noise enters twice
    # same table, same options: the same scores
    again = scores(frame.assign(y=frame["z"] ** 2))
    assert again is not None and np.array_equal(squared, again)


def test_a_copy_of_the_survival_time_is_listed_by_concordance() -> None:
    frame = numbers()
    rng = np.random.default_rng(4)
    frame["time"] = np.exp(0.5 * frame["a"] + rng.standard_normal(len(frame)))
    frame["event"] = (rng.random(len(frame)) < 0.7).astype(int)
    frame["follow_up"] = frame["time"]
    survival = {"time": "time", "event": "event", "task": "survival"}
    config = config_from({**CHEAP, "val_fraction": 0.25, **survival}, table=Path("t.csv"))
    measured = group_scores(make_problem(frame_dataset(frame, config, None, torch.device("cpu")), config))
    assert measured is not None and measured[3] >= 0.99 and measured[:3].max() < 0.75


def test_too_few_validation_rows_are_not_measured_and_the_summary_says_null() -> None:
    frame = numbers(200)  # 40 validation rows
    frame["y"] = frame["a"]
    assert scores(frame, val_fraction=0.2) is None
    result = fit_frame(frame, config_from({"target": "y", **CHEAP_FIT, "val_fraction": 0.2}, table=Path("t.csv")))
    assert result.summary["leakage"] is None
