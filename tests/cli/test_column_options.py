"""Columns and groups chosen from the command line: --features and --drop, group maps in every format, named bad
cells, and a categorical that drives the target."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glselect._synthetic import make_mixed_table
from tests.conftest import assert_user_error, invoke


def test_numbers_with_a_few_bad_cells_are_named(tmp_path):
    path = tmp_path / "t.csv"
    ages = [str(20 + k) for k in range(30)]
    ages[16] = "unknown"
    path.write_text("age,y\n" + "".join(f"{age},{k}\n" for k, age in enumerate(ages)))
    assert_user_error(
        invoke("fit", path, "-t", "y", "--out", tmp_path / "o"),
        "column 'age' has 1 non-numeric values among numbers (first at data row 17: 'unknown')",
    )


@pytest.mark.slow
def test_a_categorical_that_drives_the_target_ranks_first_as_one_row(tmp_path):
    table = tmp_path / "mixed.parquet"
    make_mixed_table(600, seed=1).to_parquet(table, index=False)
    result = invoke("fit", table, "-t", "y", "--hidden", "8", "--json", "-q", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    importances = pd.read_csv(tmp_path / "o" / "importances.csv")
    assert importances["feature"].tolist()[:2] == ["colour", "dose"]
    assert len(importances) == 8 and importances["feature"].is_unique  # one row per table column
    assert set(summary["selected_features"]) == {"colour", "dose"}
    assert summary["columns"]["customer_id"]["kind"] == "ignored"


def test_features_and_drop_choose_the_columns(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    result = invoke(
        "fit", table, "-t", "y", "--hidden", "0", "--features", "a", "--features", "n1", "--json", "-q", "--out", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    columns = json.loads(result.stdout)["columns"]
    assert [name for name, info in columns.items() if info["kind"] != "ignored"] == ["a", "n1"]
    result = invoke("fit", table, "-t", "y", "--hidden", "0", "--drop", "a", "--json", "-q", "--out", tmp_path / "o")
    assert json.loads(result.stdout)["columns"]["a"]["treatment"] == "left out by the user (--drop / --features)"


def test_unknown_names_in_features_or_drop(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    assert_user_error(invoke("fit", table, "-t", "y", "--drop", "zz"), f"column(s) 'zz' named by --features/--drop are not in '{table}'")
    assert_user_error(invoke("fit", table, "-t", "y", "--features", "y"), "the target 'y' cannot be named by --features or --drop")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("g.json", '{"signal": ["a", "b"], "noise": ["n*"]}', {"signal": {"a", "b"}, "noise": {"n1", "n2", "n3", "n4", "n5"}}),
        ("g.csv", "feature,group\nn*,noise\nn5,special\n", {"noise": {"n1", "n2", "n3", "n4"}, "special": {"n5"}}),
    ],
)
def test_json_and_pattern_group_maps(tmp_path, write_table, linear_table, name, text, expected):
    group_map = tmp_path / name
    group_map.write_text(text)
    result = invoke("fit", write_table(linear_table), "-t", "y", "--hidden", "0", "--groups", group_map, "-q", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    groups = pd.read_csv(tmp_path / "o" / "groups.csv").set_index("group")
    for group, members in expected.items():
        assert set(groups.loc[group, "columns"].split(";")) == members


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("g.json", '{"g": []}', "group map '{map}': group 'g' is empty"),
        ("g.json", '{"g": ["a"], "h": ["a"]}', "group map '{map}': column 'a' is in two groups, 'g' and 'h'"),
        ("g.json", "[1, 2]", "group map '{map}' must be a non-empty JSON object of groups"),
        (
            "g.json",
            "{oops",
            "group map '{map}' is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ("g.csv", "feature,group\nz*,g\n", "group map '{map}': pattern 'z*' (group 'g') matches no column"),
        (
            "g.csv",
            "feature,group\nn*,g\n*1,h\n",
            "group map '{map}': column 'n1' matches patterns of two groups, 'g' ('n*') and 'h' ('*1')",
        ),
    ],
)
def test_bad_json_and_pattern_group_maps(tmp_path, write_table, linear_table, name, text, message):
    group_map = tmp_path / name
    group_map.write_text(text)
    result = invoke("fit", write_table(linear_table), "-t", "y", "--groups", group_map, "--out", tmp_path / "o")
    assert_user_error(result, message.format(map=group_map))
