"""Survival targets: the Cox loss, the concordance index, a known-answer fit, streaming, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from glselect import distributed
from glselect._synthetic import make_survival
from glselect.config import DataConfig, RunConfig
from glselect.data.split import VALIDATION_ROWS
from glselect.data.stream import StreamData
from glselect.model.metrics import concordance_index, cox_row_loss, loss_function
from glselect.pipeline import frame_dataset
from tests.conftest import assert_user_error, invoke, write_parquet

SURVIVAL = ["--task", "survival", "--time", "time", "--event", "event"]
LINEAR = ["--hidden", "0", "--quiet", "--json"]


def test_cox_loss_is_the_breslow_partial_likelihood_by_hand():
    # times 2, 2, 1, 4, 2 with events 1, 0, 1, 1, 1: three rows tie at t = 2, two of them events
    eta = torch.tensor([[0.5], [1.0], [-0.3], [0.2], [0.1]], dtype=torch.float64)
    y = torch.tensor([3.0, -3.0, 2.0, 5.0, 3.0], dtype=torch.float64)  # +(1 + t) event, -(1 + t) censored
    e = np.exp(eta[:, 0].numpy())
    at_two = math.log(e[0] + e[1] + e[3] + e[4])  # Breslow: each tied event's risk set holds every row tied with it
    by_hand = [at_two - 0.5, 0.0, math.log(e.sum()) + 0.3, math.log(e[3]) - 0.2, at_two - 0.1]
    assert float(loss_function("survival")(eta, y)) == pytest.approx(sum(by_hand) / 5, abs=1e-12)
    rows = cox_row_loss(eta, y)
    assert float(rows.mean()) == pytest.approx(sum(by_hand) / 5, abs=1e-12)
    # row by row, the rows differ from the hand terms by one shared constant for events and another for censored
    # rows (the null model's log risk-set size is moved out of each event row): two models still differ row by row
    other = eta * 2
    other_by_hand = cox_row_loss(other, y) - rows
    e2 = np.exp(other[:, 0].numpy())
    at_two2 = math.log(e2[0] + e2[1] + e2[3] + e2[4])
    expected = np.array([at_two2 - 1.0, 0.0, math.log(e2.sum()) + 0.6, math.log(e2[3]) - 0.4, at_two2 - 0.2]) - by_hand
    assert other_by_hand.numpy() == pytest.approx(expected, abs=1e-12)
    # a batch without events (every row censored): 0, not NaN
    assert cox_row_loss(eta, -y.abs()).tolist() == [0.0] * 5


def _brute_force_concordance(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    # comparable: i had its event before j's time, or at the time j was censored (lifelines, scikit-survival)
    earlier = event[:, None] & ((time[:, None] < time[None, :]) | ((time[:, None] == time[None, :]) & ~event[None, :]))
    score = (risk[:, None] > risk[None, :]) + 0.5 * (risk[:, None] == risk[None, :])
    return float((score * earlier).sum() / earlier.sum())


def test_concordance_index_matches_a_brute_force_count_with_ties(rng):
    for n in (2, 9, 250):
        time = rng.integers(0, 12, n).astype(float)  # many ties in time
        risk = rng.integers(0, 6, n).astype(float)  # and in risk
        event = rng.random(n) < 0.6
        event[0], time[0], time[-1] = True, 0.0, 20.0  # at least one comparable pair
        assert concordance_index(risk, time, event) == pytest.approx(_brute_force_concordance(risk, time, event), abs=1e-12)
    time = rng.random(60)
    event = np.ones(60, dtype=bool)
    assert concordance_index(-time, time, event) == 1.0 and concordance_index(time, time, event) == 0.0
    assert math.isnan(concordance_index(np.zeros(3), np.ones(3), np.ones(3, dtype=bool)))  # equal event times: nothing comparable


def test_concordance_counts_a_row_censored_at_an_event_time_as_outliving_it():
    """lifelines and scikit-survival both give 0.5 here: row 1, censored at row 0's event time, outlived it with a higher risk."""
    risk, time, event = np.array([0.0, 1.0, -1.0]), np.array([1.0, 1.0, 2.0]), np.array([True, False, True])
    assert concordance_index(risk, time, event) == 0.5


def test_concordance_index_matches_lifelines_with_ties(rng):
    utils = pytest.importorskip("lifelines.utils")
    for n in (5, 40, 300):
        time = rng.integers(0, 10, n).astype(float)
        risk = rng.integers(0, 5, n).astype(float)
        event = rng.random(n) < 0.5
        event[0] = True
        time[0] = 0.0
        # lifelines scores predicted survival times (higher: lives longer), so the risk enters negated
        expected = utils.concordance_index(time, -risk, event)
        assert concordance_index(risk, time, event) == pytest.approx(expected, abs=1e-12)


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
        (None, [], "--target is required: name the column to predict (for a survival target: --task survival --time COL --event COL)"),
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
