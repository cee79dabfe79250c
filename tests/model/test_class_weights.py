"""Class weights: balanced weights and the weighted loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glselect.model.datafits import ACROSS_ROWS_FROM_ROWS, Binary, Multiclass, Regression
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


def test_sets_are_compared_by_each_rows_brier_score_for_classes():
    # a binary logit z is the two-class softmax of (0, z): both give the same Brier score
    out = torch.tensor([[0.0], [3.0], [-25.0], [40.0]], dtype=torch.float64)
    y = torch.tensor([1, 1, 1, 0])
    binary = Binary().comparison_row_loss(out, y)
    two_classes = Multiclass(outputs=2).comparison_row_loss(torch.cat([torch.zeros_like(out), out], dim=1), y)
    torch.testing.assert_close(binary, two_classes)
    p = torch.sigmoid(out[:, 0])
    torch.testing.assert_close(binary, 2 * (p - y.double()) ** 2)
    # a confidently wrong row costs at most 2, where its log-loss is 25 or 40
    assert binary[2] == pytest.approx(2.0) and binary[3] == pytest.approx(2.0)
    assert float(Binary().row_loss(out, y)[3]) == pytest.approx(40.0)
    # class weights multiply it as they do the row loss
    weighted = Binary(class_weights=np.array([0.5, 2.0])).comparison_row_loss(out, y)
    torch.testing.assert_close(weighted, binary * torch.tensor([2.0, 2.0, 2.0, 0.5], dtype=torch.float64))
    # regression compares by its own row loss, the squared error
    regression_out, target = torch.tensor([[1.0], [-2.0]]), torch.tensor([0.5, 1.0])
    torch.testing.assert_close(Regression().comparison_row_loss(regression_out, target), Regression().row_loss(regression_out, target))
    assert Regression.compares_by_row_loss and not Binary.compares_by_row_loss and not Multiclass.compares_by_row_loss
