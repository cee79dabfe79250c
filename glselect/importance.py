"""Rank groups and table columns by how long they survive on the path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from glselect.encoding import Encoder
from glselect.groups import GroupIndex
from glselect.path import LambdaPath
from glselect.selection import Selection


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


def rank_groups(
    path: LambdaPath,
    selection: Selection,
    group_index: GroupIndex,
    encoder: Encoder,
    dense_column_norms: np.ndarray,
) -> Importances:
    """Rank groups by path survival (ties: norm where they were last alive, then name) and columns within.

    Parameters
    ----------
    dense_column_norms
        Shape (n_features,): norm of each encoded column's first-layer weights in the dense model.
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
            "_last_norm": last_norm,
        }
    )
    groups = groups.sort_values(["importance", "_last_norm", "group"], ascending=[False, False, True], kind="mergesort")
    groups = groups.drop(columns="_last_norm").reset_index(drop=True)
    groups.insert(0, "rank", np.arange(1, len(groups) + 1))
    group_rank = dict(zip(groups["group"], groups["rank"]))
    group_row = groups.set_index("group")

    column_norm = pd.Series(dense_column_norms**2).groupby(np.asarray(encoder.sources)).sum() ** 0.5
    rows = []
    for column in encoder.columns:
        if column.kind == "ignored":
            rows.append((column.name, "", False, 0.0, 0.0, column.kind, len(groups) + 1, 0.0))
            continue
        group = group_index.group_of(column.name)
        info = group_row.loc[group]
        rows.append(
            (column.name, group, bool(info["selected"]), float(info["importance"]), float(info["norm"]), column.kind,
             group_rank[group], float(column_norm.get(column.name, 0.0)))
        )
    features = pd.DataFrame(
        rows, columns=["feature", "group", "selected", "importance", "group_norm", "kind", "_group_rank", "dense_norm"]
    )
    features = features.sort_values(["_group_rank", "dense_norm", "feature"], ascending=[True, False, True], kind="mergesort")
    features = features.drop(columns="_group_rank").reset_index(drop=True)
    features.insert(0, "rank", np.arange(1, len(features) + 1))
    return Importances(groups=groups, features=features)
