"""The arithmetic of losses and metrics: the Cox row loss, Harrell's C, AUC, balanced accuracy, class weights.

Which of them a task uses is said by its datafit (``glselect.model.datafits``). The task-keyed entry
points ``loss_function``, ``row_loss_function``, ``evaluate`` and ``PRIMARY_METRIC`` live there and are
forwarded from here for the callers that import them from this module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from glselect.data.survival import unfold

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cox_row_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each row's share of the negative Cox partial log-likelihood (Breslow ties), shape (n_samples,).

    ``out[:, 0]`` is the log-hazard (risk score) eta; ``y`` the folded target (``glselect.data.survival``:
    the sign is the event, ``|y|`` orders the times). An event row i has the term
    ``log(sum over j with t_j >= t_i of exp(eta_j)) - eta_i``; censored rows count only inside others'
    risk sets. Breslow's rule: rows tied in time share one risk set, which holds all of them. The mean
    over the rows is the Cox loss (``datafits.Cox``).

    Each event row's term has the null model's (eta = 0: ``log |R_i|``) taken off, and the mean of
    those null terms is added back to every row. The mean stays the Cox loss and the difference between
    two models stays the same row by row (permutation importance and confirmation read differences), but
    the spread of the row losses loses the part no model can explain: ``log |R_i|`` runs from log n for
    the first event to 0 for the last, and left in, it made the standard error of the 1se rule several
    times the differences between models (the rule then chose far too few columns).

    Vectorised: sort by time, a reversed log-cumsum-exp gives each position's risk set, and each tie
    group reads it at its first position. No rows, or no event, give zeros, never NaN. The risk sets are
    those of the rows passed in: a mini-batch's partial likelihood is taken within the batch.
    """
    eta = out[:, 0]
    time, is_event = unfold(y)
    n = eta.numel()
    if n == 0:
        return eta
    order = torch.argsort(time, stable=True)
    sorted_time, sorted_eta = time[order], eta[order]
    # log sum_{m >= k} exp(eta_sorted[m]): the risk set of position k in ascending time order
    log_risk = torch.logcumsumexp(sorted_eta.flip(0), dim=0).flip(0)
    first_of_tie = torch.searchsorted(sorted_time, sorted_time, right=False)
    log_size = torch.log((n - first_of_tie).to(eta.dtype))  # the null model's log-risk: log |R_i|
    excess = torch.zeros_like(eta)
    null = torch.zeros_like(eta)
    excess[order] = log_risk[first_of_tie] - sorted_eta - log_size
    null[order] = log_size
    is_event = is_event.to(eta.dtype)
    return is_event * excess + (is_event * null).sum() / n


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_classes * count_c)`` per class: every class weighs as much in the loss as any other.

    A class absent from ``y`` gets weight 1 (it has no rows to weigh).
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties given half credit."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # average ranks over tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels``."""
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls)) if recalls else float("nan")


def _count_later_smaller(keys: np.ndarray) -> np.ndarray:
    """For each i, how many j > i have ``keys[j] < keys[i]``; ``keys`` are ints in [0, n).

    Bottom-up merge sort, one vectorised step per level: at width w, each left run counts the
    elements of its right neighbour run that are smaller (one ``searchsorted``, the runs told apart
    by adding ``run pair * n``), then the pair is merged by a sort. O(n log^2 n) time, O(n) memory.
    """
    n = keys.size
    counts = np.zeros(n, dtype=np.int64)
    index, values = np.arange(n), keys.astype(np.int64)
    width = 1
    while width < n:
        position = np.arange(n)
        pair = position // (2 * width)
        is_right = (position // width) % 2 == 1
        offset = pair * n + values  # sorted within each run, and the right runs in order: sorted together
        right = offset[is_right]
        left = ~is_right
        start = np.searchsorted(right, pair[left] * n, side="left")
        counts[index[left]] += np.searchsorted(right, offset[left], side="left") - start
        merged = np.argsort(offset, kind="stable")
        index, values = index[merged], values[merged]
        width *= 2
    return counts


def concordance_index(risk: np.ndarray, time: np.ndarray, is_event: np.ndarray) -> float:
    """Harrell's C: the share of comparable pairs that the risk score orders as the times do.

    A pair (i, j) is comparable when row i had its event and j outlived it: ``t_i < t_j`` (whether j's event
    came or j was censored later), or ``t_i == t_j`` with j censored (a row censored at the time of an event
    was still at risk then). Two events at one time are not comparable. This is the convention of lifelines
    (``concordance_index``) and scikit-survival (``concordance_index_censored``), so the numbers compare. A
    pair is concordant when ``risk_i > risk_j`` and counts half when the risks tie. 0.5 is a random score, 1 a
    perfect one; NaN when no pair is comparable. Counted in O(n log^2 n) time and O(n) memory (no n x n
    matrix): a 100,000-row holdout takes about a second.
    """
    n = time.size
    if n == 0:
        return float("nan")
    _, rank = np.unique(risk, return_inverse=True)  # equal risks, equal ranks
    rank = rank.reshape(-1)
    events = np.asarray(is_event, dtype=bool).reshape(-1)
    censored = (~events).astype(np.int8)
    # later rows in sort order are the ones outliving: at one time, censored rows come after the events; within
    # a tie of time and event, order them so that they never count: by ascending risk when counting smaller
    # risks, by descending risk when counting larger ones
    ascending = np.lexsort((rank, censored, time))
    descending = np.lexsort((-rank, censored, time))
    concordant = np.zeros(n, dtype=np.int64)
    discordant = np.zeros(n, dtype=np.int64)
    concordant[ascending] = _count_later_smaller(rank[ascending])
    discordant[descending] = _count_later_smaller(rank.max() - rank[descending])
    censored_times = np.sort(time[~events])
    tied_censored = np.searchsorted(censored_times, time, side="right") - np.searchsorted(censored_times, time, side="left")
    comparable = n - np.searchsorted(np.sort(time), time, side="right") + tied_censored
    n_comparable = int(comparable[events].sum())
    if n_comparable == 0:
        return float("nan")
    n_concordant, n_discordant = int(concordant[events].sum()), int(discordant[events].sum())
    n_tied = n_comparable - n_concordant - n_discordant
    return (n_concordant + 0.5 * n_tied) / n_comparable


FORWARDED = ("PRIMARY_METRIC", "evaluate", "loss_function", "row_loss_function")


def __getattr__(name: str) -> object:
    # the datafits build on this module's arithmetic, so they cannot be imported at its top
    if name in FORWARDED:
        from glselect.model import datafits

        return getattr(datafits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
