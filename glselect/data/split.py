"""The one row split: every row's part (training, validation, test) and every resampling (CV folds,
stability halves) is decided by a hash of the row's global position and the seed.

A streamed pass never has to remember which row went where, an in-memory fit splits the same
table the same way, and a torchrun rank can tell the part of each of its rows on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
PART_NAMES = ("train", "val", "test")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-mixed 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def row_hash(positions: np.ndarray, seed: int, salt: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) for each global row position, fixed by the seed (and a salt per use)."""
    with np.errstate(over="ignore"):
        key = np.uint64(seed + 1) + np.uint64(0x632BE59BD9B4E019) * np.uint64(salt)
        keyed = positions.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * key
    return (_mix(keyed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_of(positions: np.ndarray, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """int8 per row: ``TEST`` when its hash is below test_fraction, ``VAL`` in the next val_fraction, else ``TRAIN``."""
    u = row_hash(positions, seed)
    return np.where(u < test_fraction, TEST, np.where(u < test_fraction + val_fraction, VAL, TRAIN)).astype(np.int8)


@dataclass(frozen=True)
class SplitSettings:
    """What fixes every row's part: the seed and the validation and test shares (``split_of``)."""

    seed: int
    val_fraction: float
    test_fraction: float

    def parts(self, positions: np.ndarray) -> np.ndarray:
        """``split_of`` the rows at ``positions``."""
        return split_of(positions, self.seed, self.val_fraction, self.test_fraction)


@dataclass(frozen=True)
class HashSlice:
    """Rows whose salted hash falls in ``[low, high)`` (or outside it, with ``inside=False``)."""

    salt: int
    low: float
    high: float
    inside: bool = True

    def mask(self, positions: np.ndarray, seed: int) -> np.ndarray:
        u = row_hash(positions, seed, self.salt)
        within = (u >= self.low) & (u < self.high)
        return within if self.inside else ~within


@dataclass(frozen=True)
class RowSet:
    """A set of rows named by rule, not by list: the parts it takes, narrowed by hash slices.

    The same ``RowSet`` picks the same rows from a table in memory and from a stream of record
    batches, on one process or across torchrun ranks.
    """

    parts: tuple[int, ...]
    slices: tuple[HashSlice, ...] = ()

    def mask(self, parts: np.ndarray, positions: np.ndarray, seed: int) -> np.ndarray:
        """Bool per row, from each row's part (``split_of``) and global position."""
        keep = np.isin(parts, self.parts)
        for piece in self.slices:
            keep &= piece.mask(positions, seed)
        return keep

    def narrowed(self, piece: HashSlice) -> RowSet:
        return RowSet(self.parts, (*self.slices, piece))


TRAINING_ROWS = RowSet((TRAIN,))
VALIDATION_ROWS = RowSet((VAL,))
TEST_ROWS = RowSet((TEST,))
MODEL_ROWS = RowSet((TRAIN, VAL))  # every row but the test rows: what CV and stability resample

CV_SALT = 1  # salts keep the folds and halves independent of the split and of each other
HALF_SALT = 1_000
HALF_VAL_SALT = 100_000
CROSS_FIT_SALT = 200_000


def cv_fold(fold: int, n_folds: int) -> tuple[RowSet, RowSet]:
    """(fitting rows, held-out rows) of fold ``fold`` of ``n_folds`` among the model rows."""
    held_out = HashSlice(CV_SALT, fold / n_folds, (fold + 1) / n_folds)
    return MODEL_ROWS.narrowed(HashSlice(CV_SALT, held_out.low, held_out.high, inside=False)), MODEL_ROWS.narrowed(held_out)


def cross_fit_fold(fold: int, n_folds: int, val_fraction: float) -> tuple[RowSet, RowSet, RowSet]:
    """(fitting rows, early-stopping rows, tested rows) of fold ``fold`` of ``n_folds`` among the model rows.

    The tested rows are CV fold ``fold``'s held-out rows; the other folds' rows are split by hash into
    fitting and early-stopping rows (``val_fraction`` of them), so the model tested never saw its
    tested rows, not even to decide when to stop.
    """
    fitting, tested = cv_fold(fold, n_folds)
    stopping = HashSlice(CROSS_FIT_SALT + fold, 0.0, val_fraction)
    return fitting.narrowed(HashSlice(stopping.salt, 0.0, val_fraction, inside=False)), fitting.narrowed(stopping), tested


def stability_half(pair: int, half: int, val_fraction: float) -> tuple[RowSet, RowSet]:
    """(fitting rows, early-stopping rows) of one half of complementary pair ``pair`` of the model rows."""
    rows = MODEL_ROWS.narrowed(HashSlice(HALF_SALT + pair, 0.5 * half, 0.5 * (half + 1)))
    salt = HALF_VAL_SALT + 2 * pair + half
    return rows.narrowed(HashSlice(salt, 0.0, val_fraction, inside=False)), rows.narrowed(HashSlice(salt, 0.0, val_fraction))
