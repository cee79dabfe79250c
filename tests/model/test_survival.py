"""Survival targets: the Cox loss and the concordance index, by hand, by brute force and against lifelines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glselect.model.metrics import concordance_index, cox_row_loss, loss_function


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
