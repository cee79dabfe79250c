"""The target's outputs for the pair screen (``Datafit.target_outputs``): for survival, martingale residuals."""

import numpy as np
import torch

from glselect.model.datafits import make_datafit


def test_survival_outputs_are_martingale_residuals_that_see_a_hazard_column():
    rng = np.random.default_rng(1)
    n = 1500
    x = rng.standard_normal((n, 20))
    time = rng.exponential(1 / np.exp(0.8 * x[:, 0]))
    censor = rng.exponential(2.0, n)
    event = time <= censor
    y = np.where(event, 1 + np.minimum(time, censor), -(1 + np.minimum(time, censor)))  # data/survival.py's fold
    residuals = make_datafit("survival").target_outputs(torch.as_tensor(y, dtype=torch.float32))
    assert residuals.shape == (n, 1) and abs(float(residuals.sum())) < 1e-6  # Nelson-Aalen residuals sum to 0
    products = (x - x.mean(axis=0)) * (residuals.numpy() - float(residuals.mean()))
    t = np.abs(products.mean(axis=0)) / (products.std(axis=0, ddof=1) / np.sqrt(n))  # each column's association
    assert t[0] > 10 and t[1:].max() < 4
    classes = make_datafit("multiclass", 3).target_outputs(torch.tensor([0, 2, 1, 2]))
    assert classes.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
