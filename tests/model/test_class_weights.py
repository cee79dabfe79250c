"""Class weights: balanced weights and the weighted loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glselect.model.metrics import balanced_class_weights, loss_function, row_loss_function


def test_balanced_weights_make_every_class_weigh_the_same():
    y = np.array([0] * 90 + [1] * 10)
    weights = balanced_class_weights(y, 2)
    np.testing.assert_allclose(weights, [100 / 180, 100 / 20])
    assert weights[y].mean() == pytest.approx(1.0)  # the weighted loss keeps the unweighted loss's scale
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 2]), 3), [0.75, 1.0, 1.5])


def test_weighted_loss_is_the_weighted_mean_of_row_losses():
    out = torch.tensor([[0.3], [-1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    weights = np.array([0.5, 2.0])
    plain = row_loss_function("binary")(out, y)
    weighted = loss_function("binary", weights)(out, y)
    assert float(weighted) == pytest.approx(float((plain * torch.tensor([2.0, 0.5, 0.5], dtype=torch.float64)).mean()))
