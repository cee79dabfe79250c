"""Join the group map onto the encoded columns and give each group its penalty weight."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

from glselect.data.names import with_suggestion
from glselect.errors import GlselectError


@dataclass(frozen=True)
class GroupIndex:
    """A partition of the encoded columns into penalty groups.

    ``group_ids[j]`` is the group (index into ``names``) of encoded column j; ``members[g]`` lists
    the table columns in group g; ``n_encoded[g]`` counts its encoded columns (one-hot levels,
    missing indicators), which is what the penalty weight sqrt(d_g) is built from.
    """

    names: tuple[str, ...]
    group_ids: np.ndarray  # int64, (n_features,)
    members: tuple[tuple[str, ...], ...]
    n_encoded: np.ndarray  # int64, (n_groups,)
    group_by_column: dict[str, str]  # table column -> its group's name

    @property
    def n_groups(self) -> int:
        return len(self.names)

    def group_of(self, column: str) -> str:
        return self.group_by_column[column]


def _is_pattern(entry: str) -> bool:
    return any(char in entry for char in "*?[")


def resolve_patterns(group_map: dict[str, str], table_columns: list[str], target: str, map_source: str) -> dict[str, str]:
    """Expand glob entries (``sensor_*``) into the columns they match; exact names win over patterns.

    Raises
    ------
    GlselectError
        A pattern matches no column, or patterns of two groups claim the same column.
    """
    resolved = {entry: group for entry, group in group_map.items() if not _is_pattern(entry) or entry in table_columns}
    claimed_by: dict[str, str] = {}
    for entry, group in group_map.items():
        if entry in resolved:
            continue
        # the target is never a feature, so a pattern that happens to match it skips it
        matches = [column for column in table_columns if fnmatch.fnmatchcase(column, entry) and column != target]
        if not matches:
            raise GlselectError(f"group map '{map_source}': pattern '{entry}' (group '{group}') matches no column")
        for column in matches:
            if column in resolved:
                continue
            if column in claimed_by and group_map[claimed_by[column]] != group:
                raise GlselectError(
                    f"group map '{map_source}': column '{column}' matches patterns of two groups, "
                    f"'{group_map[claimed_by[column]]}' ('{claimed_by[column]}') and '{group}' ('{entry}')",
                    hint="name the column explicitly to settle its group",
                )
            claimed_by[column] = entry
    return {**{column: group_map[entry] for column, entry in claimed_by.items()}, **resolved}


def build_group_index(
    sources: list[str] | tuple[str, ...],
    group_map: dict[str, str] | None,
    *,
    table_columns: list[str],
    target: str,
    map_source: str = "<group map>",
) -> GroupIndex:
    """Group the encoded columns: by the map where given, else one group per table column.

    Parameters
    ----------
    sources
        The table column of every encoded column (all encoded parts of a column share its group).
    group_map
        ``{column: group}`` from ``--groups``; columns it does not name are groups of their own.
    table_columns
        Every column of the table, to tell a misspelt name from a column that was not encoded.
    target
        The target column, which must not be in any group.

    Raises
    ------
    GlselectError
        The map names a column the table lacks, names the target, or reuses a column's own name
        for a group of other columns.
    """
    group_map = resolve_patterns(group_map or {}, table_columns, target, map_source)
    known = set(table_columns)
    unknown = [column for column in group_map if column not in known]
    if unknown:
        raise GlselectError(
            f"group map '{map_source}' names column(s) not in the table: {', '.join(map(repr, unknown[:5]))}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
            hint=with_suggestion("check the spelling against the table's header", unknown[:5], table_columns),
        )
    if target in group_map:
        raise GlselectError(
            f"group map '{map_source}' puts the target column '{target}' in group '{group_map[target]}'",
            hint="remove the target from the group map",
        )
    unmapped = {source for source in sources if source not in group_map}
    clashes = sorted(set(group_map.values()) & unmapped)
    if clashes:
        raise GlselectError(
            f"group map '{map_source}' uses the name '{clashes[0]}' for a group, but '{clashes[0]}' "
            "is also a column outside the map (its own group)",
            hint=f"rename the group or add '{clashes[0]}' to the map",
        )
    group_names: list[str] = []
    position: dict[str, int] = {}
    members: list[list[str]] = []
    group_ids = np.empty(len(sources), dtype=np.int64)
    for j, source in enumerate(sources):
        group = group_map.get(source, source)
        if group not in position:
            position[group] = len(group_names)
            group_names.append(group)
            members.append([])
        g = position[group]
        if source not in members[g]:
            members[g].append(source)
        group_ids[j] = g
    n_encoded = np.bincount(group_ids, minlength=len(group_names)).astype(np.int64)
    return GroupIndex(
        names=tuple(group_names),
        group_ids=group_ids,
        members=tuple(tuple(m) for m in members),
        n_encoded=n_encoded,
        group_by_column={column: group_names[group_ids[j]] for j, column in enumerate(sources)},
    )
