"""The Gaussian group-knockoff sampler: copies match the first and second moments and are swap-exchangeable."""

from __future__ import annotations

import numpy as np
import pytest

from glselect.data.knockoffs import SHRINKAGE, Moments, gaussian_knockoffs, row_normals


def test_copies_match_first_and_second_moments_and_are_swap_exchangeable() -> None:
    X = correlated_columns(20_000, seed=0)
    moments = Moments.of(X)
    sampler = gaussian_knockoffs(moments, GROUPS, seed=3)
    D = np.outer(sampler.scale, sampler.scale)
    C = (1 - SHRINKAGE) * moments.cov / D + SHRINKAGE * np.eye(6)
    S = C @ sampler.shift
    # the construction itself: S is gamma times the within-group blocks of C, and 2C - S is PSD
    same_group = GROUPS[:, None] == GROUPS[None, :]
    assert np.allclose(S[~same_group], 0, atol=1e-10) and np.allclose(S[same_group], sampler.gamma * C[same_group])
    assert 0 < sampler.gamma <= 1 and np.linalg.eigvalsh(2 * C - S).min() > -1e-10
    joint = np.block([[C, C - S], [C - S, C]])
    # the implied joint covariance of [X, X~]: Cov(X~) = (I - A)^T C (I - A) + R R^T, Cov(X, X~) = C (I - A)
    A, R = sampler.shift, sampler.root
    implied = np.block([[C, C @ (np.eye(6) - A)], [(np.eye(6) - A).T @ C, (np.eye(6) - A).T @ C @ (np.eye(6) - A) + R @ R.T]])
    assert np.allclose(implied, joint, atol=1e-8)
    # swapping any group with its copy leaves the joint covariance unchanged
    for g in range(3):
        swap = np.arange(12)
        members = np.flatnonzero(g == GROUPS)
        swap[members], swap[members + 6] = members + 6, members
        assert np.allclose(joint[np.ix_(swap, swap)], joint)
    # and on a large sample: the copies' means, covariance and cross-covariance, in the data's own units
    copies = sampler.draw(X, np.arange(len(X)), draw=0).astype(np.float64)
    assert np.allclose(copies.mean(axis=0), X.mean(axis=0), atol=0.06 * sampler.scale)
    empirical = np.cov(np.hstack([X, copies]), rowvar=False) / np.outer(np.tile(sampler.scale, 2), np.tile(sampler.scale, 2))
    assert np.abs(empirical - joint).max() < 0.05
    # another draw is another copy; the same draw of the same rows is the same copy, however they are batched
    assert not np.allclose(sampler.draw(X[:50], np.arange(50), draw=1), copies[:50])
    assert np.array_equal(sampler.draw(X[30:50], np.arange(30, 50), draw=0), sampler.draw(X, np.arange(len(X)), 0)[30:50])


def test_row_normals_are_standard_normal() -> None:
    z = row_normals(np.arange(50_000), 4, seed=1, draw=2)
    assert z.mean() == pytest.approx(0, abs=0.02) and z.std() == pytest.approx(1, abs=0.02)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.02


GROUPS = np.array([0, 0, 1, 2, 2, 2])


def correlated_columns(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [0.6, 0.8, 0, 0, 0, 0],
            [0.3, 0.2, 0.9, 0, 0, 0],
            [0, 0.4, 0.3, 0.8, 0, 0],
            [0, 0, 0.2, 0.5, 0.8, 0],
            [0.2, 0, 0, 0.4, 0.3, 0.8],
        ]
    )
    return rng.standard_normal((n, 6)) @ mixing.T * np.array([1, 2, 0.5, 1, 3, 1]) + np.arange(6)
