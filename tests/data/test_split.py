"""The row split's folds: cross-validation folds, stability halves and cross-fit folds partition the model rows reproducibly."""

from __future__ import annotations

import numpy as np

from glselect.data.split import MODEL_ROWS, TEST, TRAIN, VAL, cv_fold, stability_half


def test_folds_partition_the_model_rows_reproducibly():
    positions = np.arange(5000)
    parts = np.array([TRAIN, VAL, TEST] * 1666 + [TRAIN, VAL])
    model_rows = MODEL_ROWS.mask(parts, positions, seed=4)
    held_out = [cv_fold(k, 5)[1].mask(parts, positions, seed=4) for k in range(5)]
    assert (np.sum(held_out, axis=0) == model_rows).all()  # every model row in exactly one fold, no test row
    assert all(abs(fold.sum() - model_rows.sum() / 5) < 0.1 * model_rows.sum() / 5 for fold in held_out)
    for k in range(5):
        fitting, out = cv_fold(k, 5)
        assert not (fitting.mask(parts, positions, 4) & out.mask(parts, positions, 4)).any()
        assert ((fitting.mask(parts, positions, 4) | out.mask(parts, positions, 4)) == model_rows).all()
    assert (cv_fold(2, 5)[1].mask(parts, positions, 4) == held_out[2]).all()
    assert not (cv_fold(2, 5)[1].mask(parts, positions, 5) == held_out[2]).all()  # the seed moves them


def test_stability_halves_are_complementary_and_hold_out_an_early_stopping_share():
    positions, parts = np.arange(4000), np.zeros(4000, dtype=np.int8)
    halves = [stability_half(3, j, 0.2) for j in (0, 1)]
    fitting = [half[0].mask(parts, positions, 0) for half in halves]
    stopping = [half[1].mask(parts, positions, 0) for half in halves]
    together = [f | s for f, s in zip(fitting, stopping)]
    assert not (together[0] & together[1]).any() and (together[0] | together[1]).all()
    assert all(abs(s.sum() / t.sum() - 0.2) < 0.03 for s, t in zip(stopping, together))


def test_cross_fit_folds_test_every_model_row_once_on_refits_that_never_saw_it():
    from glselect.data.split import MODEL_ROWS, TEST, cross_fit_fold

    positions = np.arange(5000)
    parts = np.where(positions % 7 == 0, TEST, 0).astype(np.int8)
    tested = np.zeros(positions.size, dtype=int)
    for k in range(5):
        fitting, stopping, rows = (r.mask(parts, positions, 3) for r in cross_fit_fold(k, 5, 0.2))
        assert not (fitting & stopping).any() and not ((fitting | stopping) & rows).any()
        assert np.array_equal(fitting | stopping | rows, MODEL_ROWS.mask(parts, positions, 3))
        assert 0.15 < stopping.sum() / (fitting | stopping).sum() < 0.25
        tested += rows
    assert np.array_equal(tested, (parts != TEST).astype(int))
