"""Rank groups and table columns: the selected ones first (the minimal selection, then what each
all-relevant round added), each part by how long it survives on the path, with the other
importance measures beside the rank.

- ``importance``: path survival, the largest lambda at which the group is still non-zero;
  per table column also ``column_importance``, the largest lambda at which any of the column's
  own encoded weights is non-zero (with ``--l1-ratio`` a column can leave before its group);
- ``norm``: the group's first-layer norm at the chosen step; ``dense_norm``: in the dense model;
- ``permutation``: how much the refit model's held-out loss grows when the group's columns are
  shuffled together (mean over repeats, ``permutation_std`` their spread; see ``permutation.py``);
- ``stability``: the group's selection frequency over complementary-pairs subsamples (``--stability``);
- ``knockoff_statistic``: W, the signed max of the group's and its knockoff copy's areas under
  the norm curve of a path on both (``knockoffs.py``), averaged over the knockoff draws, with
  ``knockoff_e_value`` (averaged e-value) and ``knockoff_frequency`` (share of draws whose own
  threshold selects the group) (``--fdr``; see ``knockoffs.py``);
- ``perm_not_positive``: a selected group (or column) whose mean permutation importance is at or
  below zero: shuffling it did not raise the refit's held-out loss, so its place in the selection
  rests on the path and confirmation alone.

The rank follows the columns shown: ``selected`` first, then each stage's rank key (``round``: the
all-relevant round that found the group, 0 for the minimal selection), then ``importance``
(survival; ties: the norm where last alive, then the name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from glselect.data.encoder import Encoder
from glselect.data.groups import GroupIndex
from glselect.path.walk import LambdaPath
from glselect.select.choose import Selection

if TYPE_CHECKING:  # the stages' modules read survival from here
    from glselect.select.base import Part


@dataclass(frozen=True)
class Importances:
    """``groups``: one row per group; ``features``: one row per table column (target excluded).

    Both are sorted by rank (1 = most important). ``importance`` is path survival: the largest
    lambda at which the group is still non-zero.
    """

    groups: pd.DataFrame
    features: pd.DataFrame


def survival(path: LambdaPath) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the largest lambda with a non-zero norm, and the norm there (the tie-breaker)."""
    lams = np.array([step.lam for step in path.steps])
    norms = np.stack([step.group_norms for step in path.steps])  # (n_steps, n_groups)
    alive = norms > 0
    # index of the last step at which each group is alive (0, the dense step, if never after)
    last = np.where(alive.any(axis=0), len(lams) - 1 - np.argmax(alive[::-1], axis=0), 0)
    columns = np.arange(norms.shape[1])
    return np.where(alive.any(axis=0), lams[last], 0.0), norms[last, columns]


def survival_order(lams: np.ndarray, last_norms: np.ndarray) -> np.ndarray:
    """Group indices best first, as ``survival`` ranks them: the longest survival first, ties broken
    by the larger norm where last alive, then by index (``np.lexsort`` is stable)."""
    return np.lexsort((-last_norms, -lams))


def column_survival(path: LambdaPath, group_ids: np.ndarray) -> np.ndarray:
    """Per encoded column, shape (n_features,): the largest lambda at which its first-layer weights are non-zero.

    One pass over the steps with one row of memory: a wide table's path would not fit as a matrix.
    """
    survival = np.zeros(group_ids.size)
    for step in path.steps:
        survival = np.where(step.column_mask(group_ids), step.lam, survival)
    return survival


def _cell(value: Any) -> Any:
    """A group's value copied to its table columns: a number as a float, text as it is."""
    return value if isinstance(value, str) else float(value)


def rank_groups(
    path: LambdaPath,
    selection: Selection,
    group_index: GroupIndex,
    encoder: Encoder,
    dense_column_norms: np.ndarray,
    parts: Sequence[Part] = (),
) -> Importances:
    """Rank the selected groups first (the minimal selection, then each all-relevant round's), then
    by path survival (ties: norm where last alive, then name); columns within.

    Parameters
    ----------
    dense_column_norms
        Shape (n_features,): norm of each encoded column's first-layer weights in the dense model.
    parts
        What the selection stages measured, in the tables' column order (``Plan.column_parts``):
        each part's ``group_columns`` (per group, in ``group_index`` order) follow ``dense_norm``;
        a table column takes its own value from ``column_values`` where the part measured it per
        column, else its group's. The first part with a ``rank_key`` (the all-relevant round that
        found a group) orders the selected groups before survival does.
    """
    importance, last_norm = survival(path)
    chosen_norms = path.steps[selection.step_index].group_norms
    dense_norms = path.steps[0].group_norms
    groups = pd.DataFrame(
        {
            "group": list(group_index.names),
            "n_features": [len(members) for members in group_index.members],
            "columns": [";".join(members) for members in group_index.members],
            "selected": selection.group_mask,
            "importance": importance,
            "norm": chosen_norms,
            "dense_norm": dense_norms,
            **{name: values for part in parts for name, values in part.group_columns.items()},
            "_last_norm": last_norm,
        }
    )
    # a stage's rank key is shown for the selected groups only: the unselected ones rank after them
    # whatever their key, and a blank says so (nullable integers: the CSV writes 0, 1, and blanks)
    rank_columns = [part.rank_column for part in parts if part.rank_key is not None]
    for part in parts:
        if part.rank_key is not None:
            groups.insert(groups.columns.get_loc("importance"), part.rank_column, pd.array(part.rank_key, dtype="Int64"))
            groups.loc[~groups["selected"], part.rank_column] = pd.NA
    groups["perm_not_positive"] = _not_positive(groups["selected"], groups.get("permutation"))
    # the selected groups come first, so the top k ranks are the selection; almost always they
    # survive longest anyway, but a group the confirmation step dropped can outlive a kept one.
    # Among them the minimal selection leads and each all-relevant round's groups follow it (a
    # copy can outlive its original on the path; measured on digits: ranked by survival alone, the
    # union's top 20 scored 0.938 against 0.946 for the minimal set's lead)
    groups = groups.sort_values(
        ["selected", *rank_columns, "importance", "_last_norm", "group"],
        ascending=[False, *(True for _ in rank_columns), False, False, True],
        kind="mergesort",
        na_position="last",
    )
    groups = groups.drop(columns=["_last_norm"]).reset_index(drop=True)
    groups.insert(0, "rank", np.arange(1, len(groups) + 1))
    group_rank = dict(zip(groups["group"], groups["rank"]))
    group_row = groups.set_index("group")

    sources = np.asarray(encoder.sources)
    # plain dicts, read once per table column (a wide table has 10,000s: a pandas lookup each took a second)
    column_norm = (pd.Series(dense_column_norms**2).groupby(sources).sum() ** 0.5).to_dict()
    # a table column is selected when the refit reads any of its encoded columns: under the sparse
    # group lasso a kept group can leave some of its columns (or some one-hot levels) out
    column_selected = pd.Series(selection.feature_mask).groupby(sources).any().to_dict()
    column_importance = pd.Series(column_survival(path, group_index.group_ids)).groupby(sources).max().to_dict()
    group_info = group_row.to_dict("index")
    measures = [(name, part) for part in parts for name in part.group_columns]
    rows = []
    for column in encoder.columns:
        if column.kind == "ignored":  # never read: measured per column as 0, no group to copy from
            rows.append(
                (
                    column.name,
                    "",
                    False,
                    0.0,
                    0.0,
                    0.0,
                    column.kind,
                    len(groups) + 1,
                    0.0,
                    *(0.0 if part.column_values else np.nan for _, part in measures),
                )
            )
            continue
        group = group_index.group_of(column.name)
        info = group_info[group]
        rows.append(
            (
                column.name,
                group,
                bool(column_selected.get(column.name, False)),
                float(info["importance"]),
                float(column_importance.get(column.name, 0.0)),
                float(info["norm"]),
                column.kind,
                group_rank[group],
                float(column_norm.get(column.name, 0.0)),
                *(
                    part.column_values[name].get(column.name, part.unread) if name in part.column_values else _cell(info[name])
                    for name, part in measures
                ),
            )
        )
    features = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "group",
            "selected",
            "importance",
            "column_importance",
            "group_norm",
            "kind",
            "_group_rank",
            "dense_norm",
            *(name for name, _ in measures),
        ],
    )
    for name in rank_columns:  # the group's key, as the group's rank is the column's first key
        features.insert(features.columns.get_loc("importance"), name, features["group"].map(group_row[name]).astype("Int64"))
    features["perm_not_positive"] = _not_positive(features["selected"], features.get("permutation"))
    # within a group: the columns the refit reads first, then those that stayed longest on the path
    # (the group lasso keeps or drops a group whole, so there this falls back to the dense norm)
    features = features.sort_values(
        ["_group_rank", "selected", "column_importance", "dense_norm", "feature"],
        ascending=[True, False, False, False, True],
        kind="mergesort",
    )
    features = features.drop(columns="_group_rank").reset_index(drop=True)
    features.insert(0, "rank", np.arange(1, len(features) + 1))
    return Importances(groups=groups, features=features)


def _not_positive(selected: pd.Series, permutation: pd.Series | None) -> pd.Series:
    """Per row: selected, and its permutation importance measured and at or below zero."""
    if permutation is None:
        return pd.Series(False, index=selected.index)
    return selected.astype(bool) & (pd.to_numeric(permutation, errors="coerce") <= 0)
