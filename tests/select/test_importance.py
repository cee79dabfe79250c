"""The ranked tables tell one story: the rank follows the columns shown, a selected group that shuffling
does not hurt is flagged, and the selection line says what the step held and what confirmation kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glselect import ModelConfig, PathConfig, RunConfig, SelectionConfig, run
from glselect.outputs.report import metrics_lines, table_warnings, top_features_table
from glselect.select.base import Part
from glselect.select.importance import rank_groups
from tests.conftest import assert_rank_follows_the_shown_keys, invoke, make_linear_table


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory):
    """A linear fit whose rule takes a step with noise groups that confirmation then leaves out."""
    folder = tmp_path_factory.mktemp("fit")
    make_linear_table().to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv",
        target="y",
        out=folder / "out",
        seed=1,
        model=ModelConfig(hidden=()),
        path=PathConfig(max_iters_per_lambda=30, tol=0.1),
        selection=SelectionConfig(rule="min", goal="minimal"),
    )
    return run(config)


def test_the_rank_follows_selected_then_survival_on_a_fit_confirmation_cut(confirmed):
    summary = confirmed.summary
    assert summary["unconfirmed_groups"]  # the fit this test is about: confirmation left groups of the step out
    for name in ("importances.csv", "groups.csv"):
        table = pd.read_csv(confirmed.out_dir / name)
        assert_rank_follows_the_shown_keys(table)
        assert "round" not in table.columns  # --goal minimal: no stage gave a rank key


def test_the_selection_line_says_the_step_and_what_confirmation_kept(confirmed):
    summary = confirmed.summary
    at_step, kept = summary["path"]["groups_at_step"], summary["n_selected_groups"]
    assert at_step == kept + len(summary["unconfirmed_groups"]) and at_step > kept
    expected = (
        f"selected {summary['n_selected_features']} of 8 columns ({kept} of 8 groups): the step at λ={summary['lambda']:.3g} "
        f"({at_step} groups) by rule min ({summary['scored_by']}), confirmation kept {kept}"
    )
    assert metrics_lines(summary)[0] == expected
    shown = invoke("show", confirmed.out_dir)
    assert shown.exit_code == 0, shown.output
    assert expected in shown.stdout


def test_the_not_positive_flag_is_selected_with_a_permutation_at_or_below_zero(confirmed):
    for name in ("importances.csv", "groups.csv"):
        table = pd.read_csv(confirmed.out_dir / name)
        assert table["perm_not_positive"].dtype == bool
        assert list(table["perm_not_positive"]) == list(table["selected"] & (table["permutation"] <= 0))


def test_a_selected_group_that_shuffling_does_not_hurt_is_flagged_marked_and_named(confirmed):
    result = confirmed
    index = result.path, result.selection, result.encoder
    group_index = _group_index(result)
    selected = np.flatnonzero(result.selection.group_mask)
    assert len(selected) >= 2
    permutation = np.full(group_index.n_groups, 0.5)
    permutation[selected[-1]] = -0.002  # the refit's loss fell when it was shuffled
    permutation[~result.selection.group_mask] = 0.0  # unselected: not flagged, whatever their value
    part = Part("permutation", group_columns={"permutation": permutation, "permutation_std": np.full(group_index.n_groups, 0.001)})
    ranked = rank_groups(index[0], index[1], group_index, index[2], np.ones(len(result.encoder.feature_names)), [part])
    flagged_group = group_index.names[selected[-1]]
    assert list(ranked.groups.loc[ranked.groups["perm_not_positive"], "group"]) == [flagged_group]
    assert list(ranked.features.loc[ranked.features["perm_not_positive"], "feature"]) == [flagged_group]
    assert table_warnings(ranked.features) == [
        "1 selected column with a permutation importance at or below zero (shuffling it did not raise the test loss; "
        f"marked ! in the table): {flagged_group}"
    ]
    rows = {row[1]: row for row in _rendered_rows(top_features_table(ranked.features, 8))}
    assert rows[flagged_group][-1] == "-0.002±0.001 !"
    assert all(not row[-1].endswith("!") for name, row in rows.items() if name != flagged_group)


def test_an_all_relevant_round_is_a_column_the_rank_follows_and_the_table_shows(confirmed):
    result = confirmed
    group_index = _group_index(result)
    selected = np.flatnonzero(result.selection.group_mask)
    found = np.zeros(group_index.n_groups, dtype=np.int64)
    found[selected[0]] = 1  # the longest survivor, as if the first round had added it
    part = Part("all-relevant", rank_key=found)
    ranked = rank_groups(result.path, result.selection, group_index, result.encoder, np.ones(len(result.encoder.feature_names)), [part])
    for table in (ranked.groups, ranked.features):
        assert_rank_follows_the_shown_keys(table)
        assert list(table.columns[table.columns.get_loc("selected") + 1 : table.columns.get_loc("importance")]) == ["round"]
    assert list(ranked.groups["round"].iloc[: len(selected)]) == [0] * (len(selected) - 1) + [1]
    assert ranked.groups["round"].iloc[len(selected) :].isna().all()  # unselected: blank, they rank after anyway
    header = [column.header for column in top_features_table(ranked.features, 3).columns]
    assert header[:5] == ["rank", "feature", "sel", "round", "survival λ"]


def _group_index(result):
    from glselect.data.groups import build_group_index

    table = make_linear_table()
    return build_group_index(result.encoder.sources, None, table_columns=list(table.columns), target="y")


def _rendered_rows(table) -> list[list[str]]:
    """The plain text of each row of a rich table."""
    cells = [[str(cell) for cell in column._cells] for column in table.columns]
    rows = [list(row) for row in zip(*cells)]
    return [[pd.Series([cell]).str.replace(r"\[/?[a-z ]*\]", "", regex=True).iloc[0] for cell in row] for row in rows]
