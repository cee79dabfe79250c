"""Second-order Gaussian group knockoffs of the encoded columns (model-X knockoffs, Candès et al. 2018;
groups as in Dai & Barber 2016).

A knockoff copy ``X~`` of the encoded row ``X`` is drawn so that ``[X, X~]`` has the first two
moments of a Gaussian whose covariance is unchanged when any group is swapped with its copy:

    Cov([X, X~]) = [[Sigma, Sigma - S], [Sigma - S, Sigma]],   S = gamma * blockdiag(Sigma_gg)

``S`` is the equicorrelated group construction: one ``gamma`` for all groups, as large as keeps
``2 Sigma - S`` positive semi-definite (capped at 1), so each copy is as unlike its group as the
correlations allow. Given ``X``, the copy is ``X - (X - mu) Sigma^-1 S + Z R^T`` with
``R R^T = 2S - S Sigma^-1 S`` and ``Z`` standard normal.

``Z`` is a hash of (seed, draw, row position, column), not a random stream: a row's copy is the
same whichever batch, epoch, process or order it is read in, so a streamed fit, a torchrun rank
and an in-memory fit of the same table see the same knockoffs. Everything is computed on the
correlation scale (columns standardised by their training standard deviation) with a small
shrinkage towards the identity, which keeps ``Sigma`` invertible when columns are collinear
(a categorical column's one-hot columns sum to one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glselect.data.split import _mix
from glselect.errors import GlselectError

SHRINKAGE = 0.01  # correlation matrix -> (1 - a) C + a I: invertible whatever the columns, at a small cost in power
GAMMA_MARGIN = 0.98  # stay a little inside the PSD limit, so the conditional covariance is not numerically singular
MAX_ENCODED_COLUMNS = 4000  # the construction takes dense p x p eigendecompositions: O(p^3) time, O(p^2) memory


@dataclass(frozen=True)
class Moments:
    """Mean and covariance of the encoded training columns (float64), from one pass over them."""

    n_rows: int
    mean: np.ndarray  # (p,)
    cov: np.ndarray  # (p, p)

    @classmethod
    def of(cls, X: np.ndarray) -> Moments:
        sums = MomentSums.empty(X.shape[1])
        sums.add(X)
        return sums.moments()


@dataclass
class MomentSums:
    """Running sums for ``Moments``: added batch by batch, summed over torchrun ranks."""

    n_rows: int
    total: np.ndarray  # (p,)
    cross: np.ndarray  # (p, p): sum of x x^T (encoded columns are centred and scaled already, so this stays well conditioned)

    @classmethod
    def empty(cls, p: int) -> MomentSums:
        return cls(0, np.zeros(p), np.zeros((p, p)))

    def add(self, X: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float64)
        self.n_rows += len(X)
        self.total += X.sum(axis=0)
        self.cross += X.T @ X

    def moments(self) -> Moments:
        if self.n_rows < 2:
            raise GlselectError(f"knockoffs need the covariance of the training rows, but there are {self.n_rows}")
        mean = self.total / self.n_rows
        cov = (self.cross - self.n_rows * np.outer(mean, mean)) / (self.n_rows - 1)
        return Moments(self.n_rows, mean, (cov + cov.T) / 2)


@dataclass(frozen=True)
class GaussianKnockoffs:
    """A seeded sampler of knockoff copies; ``draw`` gives the copy of rows by their global positions."""

    mean: np.ndarray  # (p,)
    scale: np.ndarray  # (p,): training standard deviations (1 for constant columns)
    shift: np.ndarray  # (p, p): C^-1 S on the correlation scale
    root: np.ndarray  # (p, p): R with R R^T = 2S - S C^-1 S
    gamma: float
    seed: int

    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    def draw(self, X: np.ndarray, positions: np.ndarray, draw: int) -> np.ndarray:
        """The knockoff copy (float32, same shape as ``X``) of rows ``X`` at global ``positions``, for draw ``draw``."""
        standard = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        noise = row_normals(positions, self.n_features, self.seed, draw)
        copy = standard - standard @ self.shift + noise @ self.root.T
        return (copy * self.scale + self.mean).astype(np.float32)


def row_normals(positions: np.ndarray, n_columns: int, seed: int, draw: int) -> np.ndarray:
    """Standard normals (n_rows, n_columns), each a hash of (seed, draw, position, column): Box-Muller on two hashes."""
    with np.errstate(over="ignore"):
        keys = positions.astype(np.uint64)[:, None] * np.uint64(n_columns) + np.arange(n_columns, dtype=np.uint64)
        salt = np.uint64(0x9E3779B97F4A7C15) * (np.uint64(seed) * np.uint64(0x100000001B3) + np.uint64(draw) + np.uint64(1))
        first = _mix(_mix(keys + salt) ^ np.uint64(0xD6E8FEB86659FD93))
        second = _mix(_mix(keys + salt) ^ np.uint64(0xA0761D6478BD642F))
    u1 = ((first >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # in (0, 1): the log is finite
    u2 = (second >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def gaussian_knockoffs(moments: Moments, group_ids: np.ndarray, seed: int) -> GaussianKnockoffs:
    """The equicorrelated group-knockoff sampler for columns with these moments and groups.

    Raises
    ------
    GlselectError
        More than ``MAX_ENCODED_COLUMNS`` encoded columns (the dense construction would not fit).
    """
    p = moments.mean.size
    if p > MAX_ENCODED_COLUMNS:
        raise GlselectError(
            f"--fdr builds knockoffs from a dense {p} x {p} covariance; at most {MAX_ENCODED_COLUMNS} encoded columns are supported",
            hint="select fewer columns (--features / --drop, a lower --max-levels), or run without --fdr",
        )
    variance = np.diag(moments.cov).copy()
    scale = np.where(variance > 1e-12, np.sqrt(np.maximum(variance, 0)), 1.0)
    correlation = moments.cov / np.outer(scale, scale)
    correlation[variance <= 1e-12, :] = 0.0
    correlation[:, variance <= 1e-12] = 0.0
    np.fill_diagonal(correlation, 1.0)  # a constant column is taken as independent noise of unit variance
    correlation = (1 - SHRINKAGE) * correlation + SHRINKAGE * np.eye(p)
    blocks = np.zeros_like(correlation)
    group_ids = np.asarray(group_ids)
    for g in np.unique(group_ids):  # one small block per group; groups are few and small next to p^3
        members = np.flatnonzero(group_ids == g)
        blocks[np.ix_(members, members)] = correlation[np.ix_(members, members)]
    gamma = min(1.0, 2.0 * _smallest_generalised_eigenvalue(correlation, blocks)) * GAMMA_MARGIN
    S = gamma * blocks
    shift = np.linalg.solve(correlation, S)
    conditional = 2 * S - S @ shift
    values, vectors = np.linalg.eigh((conditional + conditional.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return GaussianKnockoffs(mean=moments.mean, scale=scale, shift=shift, root=root, gamma=float(gamma), seed=seed)


def _smallest_generalised_eigenvalue(A: np.ndarray, B: np.ndarray) -> float:
    """Smallest lambda with ``A v = lambda B v`` (B positive definite): 2 Sigma - gamma B is PSD iff gamma <= 2 lambda."""
    lower = np.linalg.cholesky(B)
    inverse = np.linalg.inv(lower)
    return float(np.linalg.eigvalsh(inverse @ A @ inverse.T)[0])
