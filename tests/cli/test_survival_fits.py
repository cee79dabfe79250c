"""Survival fits end to end: a known-answer linear Cox fit, predict and the out dir, a streamed survival target, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from glselect import distributed
from glselect._synthetic import make_survival
from glselect.config import DataConfig, RunConfig
from glselect.data.split import VALIDATION_ROWS
from glselect.data.stream import StreamData
from glselect.pipeline import frame_dataset
from tests.conftest import assert_user_error, invoke, write_parquet

SURVIVAL = ["--task", "survival", "--time", "time", "--event", "event"]


LINEAR = ["--hidden", "0", "--quiet", "--json"]


@pytest.fixture(scope="module")
def survival_fit(tmp_path_factory):
    """400 rows, 8 columns of which x0..x2 set the hazard, about 30% censored; the linear Cox model."""
    folder = tmp_path_factory.mktemp("survival")
    table = make_survival(400, 8, 3, seed=0)
    table.to_csv(folder / "data.csv", index=False)
    result = invoke("fit", folder / "data.csv", *SURVIVAL, *LINEAR, "--out", folder / "out")
    assert result.exit_code == 0, result.output
    return folder, table, json.loads(result.stdout)


def test_a_linear_cox_fit_selects_the_true_columns(survival_fit):
    _folder, table, summary = survival_fit
    assert 0.2 < 1 - table["event"].mean() < 0.4
    assert summary["task"] == "survival" and summary["primary_metric"] == "c_index"
    assert summary["target"] == "time" and summary["event"] == "event"
    assert summary["selected_features"] == ["x0", "x1", "x2"]
    assert summary["columns"].keys() == {f"x{j}" for j in range(8)}  # time and event are the target, not features
    assert summary["metrics"]["pruned"]["c_index"] > 0.75
    assert summary["metrics"]["pruned"].keys() == {"c_index", "cox_loss"}


def test_predict_gives_risk_scores_and_the_out_dir_reads_back(survival_fit):
    folder, table, _ = survival_fit
    meta = json.loads((folder / "out" / "model.json").read_text())
    assert (meta["task"], meta["target"], meta["event"]) == ("survival", "time", "event")
    assert meta["encoder"]["target"]["event"] == "event"
    features = table.drop(columns=["time", "event"])  # new rows need no time or event
    features.to_csv(folder / "new.csv", index=False)
    result = invoke("predict", folder / "out", folder / "new.csv")
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(predictions.columns) == ["risk_score"] and len(predictions) == 400
    true_log_hazard = table["x0"] - 0.9 * table["x1"] + 0.8 * table["x2"]
    assert np.corrcoef(predictions["risk_score"], true_log_hazard)[0, 1] > 0.95
    assert invoke("show", folder / "out").exit_code == 0
    assert invoke("select", folder / "out", folder / "data.csv", "-o", folder / "selected.csv").exit_code == 0
    assert list(pd.read_csv(folder / "selected.csv").columns) == ["x0", "x1", "x2", "time", "event"]


def test_a_streamed_survival_target_folds_as_in_memory(tmp_path):
    table = make_survival(300, 4, 2, seed=1)
    table.loc[5, "event"] = np.nan  # a row without its event has no target, like a missing target
    path = write_parquet(table, tmp_path / "data.parquet", row_group_size=64)
    config = RunConfig(table=path, time="time", event="event", data=DataConfig(task="survival"))
    streamed = StreamData.open(config, torch.device("cpu"), distributed.SINGLE)
    in_memory = frame_dataset(pd.read_parquet(path), config, None, torch.device("cpu"))
    assert streamed.n_missing_target == in_memory.n_missing_target == 1
    assert streamed.encoder.target == in_memory.encoder.target and streamed.encoder.target.event == "event"
    assert [column.name for column in streamed.encoder.columns] == [f"x{j}" for j in range(4)]  # not time, not event
    for ours, theirs in zip(streamed.encoder.columns, in_memory.encoder.columns):  # merged moments: equal to rounding
        assert ours.centers == pytest.approx(theirs.centers, rel=1e-9, abs=1e-12)
    assert torch.equal(streamed.holdout(VALIDATION_ROWS).y, in_memory.holdout(VALIDATION_ROWS).y)
    result = invoke("fit", path, *SURVIVAL, *LINEAR, "--stream", "--max-steps", "3", "--max-epochs", "1", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["streaming"]["processes"] == 1 and 0 <= summary["metrics"]["dense"]["c_index"] <= 1


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (
            None,
            ["--task", "survival", "--time", "time"],
            "--task survival needs --time COL (the follow-up time) and --event COL (1 if the event happened, 0 if censored)",
        ),
        (
            None,
            ["--time", "time", "--event", "event"],
            "--time and --event name a survival target: add --task survival (or drop them and pass --target)",
        ),
        (
            None,
            [*SURVIVAL, "--target", "x0"],
            "--target 'x0' is not used with --task survival: the target is --time 'time' and --event 'event'; drop --target",
        ),
        (
            None,
            [*SURVIVAL, "--class-weight", "balanced"],
            "--class-weight needs a classification target; a survival target has no classes (drop --class-weight)",
        ),
        (
            None,
            [*SURVIVAL, "--drop", "event"],
            "the event column 'event' is part of the target: it cannot be named by --features or --drop",
        ),
        (None, ["--task", "survival", "--time", "tme", "--event", "event"], "time column 'tme' (--time) is not in '{data}'"),
        ("negative", SURVIVAL, "time column 'time' has negative values (1, first at data row 8: -2)"),
        ("not binary", SURVIVAL, "event column 'event' must hold 0/1 or True/False; 1 values do not (first at data row 4: 2)"),
        ("text event", SURVIVAL, "event column 'event' must hold 0/1 or True/False; 1 values do not (first at data row 4: 'died')"),
        ("censored", SURVIVAL, "event column 'event' has no events: every row is censored"),
    ],
)
def test_bad_survival_input_is_a_one_line_user_error(tmp_path, change, args, message):
    table = make_survival(40, 3, 2, seed=2)
    if change == "negative":
        table.loc[7, "time"] = -2.0
    elif change == "not binary":
        table.loc[3, "event"] = 2
    elif change == "text event":
        table["event"] = table["event"].astype(object)
        table.loc[3, "event"] = "died"
    elif change == "censored":
        table["event"] = 0
    data = tmp_path / "data.csv"
    table.to_csv(data, index=False)
    assert_user_error(invoke("fit", data, *args, "--quiet"), message.format(data=data))
