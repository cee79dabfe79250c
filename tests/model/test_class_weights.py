"""Class weights: balanced weights and the weighted loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glselect.model.datafits import ACROSS_ROWS_FROM_ROWS
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


@pytest.mark.parametrize("n_rows", [37, ACROSS_ROWS_FROM_ROWS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiclass_row_loss_is_each_rows_softmax_cross_entropy(dtype, n_rows):
    # on many rows the loss is taken with the classes laid across rows (a faster CPU kernel): each
    # row's value and its gradient must still be that row's own -log softmax of its true class
    generator = torch.Generator().manual_seed(0)
    out = (torch.randn(n_rows, 5, generator=generator, dtype=dtype) * 4).requires_grad_()
    y = torch.randint(0, 5, (n_rows,), generator=generator)
    rows = row_loss_function("multiclass")(out, y)
    expected = -torch.log_softmax(out.double(), dim=1)[torch.arange(n_rows), y]
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(rows.double(), expected, rtol=tolerance, atol=tolerance)
    (gradient,) = torch.autograd.grad(rows[3] * 2.0, out)
    softmax = torch.softmax(out.detach().double()[3], dim=0)
    one_hot = torch.nn.functional.one_hot(y[3], 5).double()
    torch.testing.assert_close(gradient[3].double(), 2.0 * (softmax - one_hot), rtol=tolerance, atol=tolerance)
    assert torch.count_nonzero(gradient[torch.arange(n_rows) != 3]) == 0  # row 3's loss reads row 3 only
