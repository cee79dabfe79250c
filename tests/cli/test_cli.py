"""End-to-end runs of `glselect fit` and the exact messages of bad input."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from glselect.config import RunConfig
from glselect.options import FIELDS_WITHOUT_OPTION, OPTIONS
from tests.conftest import ARTIFACTS, FAST, SAMPLES, assert_user_error, config_value, invoke


def config_fields(config_type: type = RunConfig, prefix: str = "") -> set[str]:
    """Every leaf field of a config dataclass, as 'seed' or 'path.lambda_step'."""
    types = typing.get_type_hints(config_type)
    fields = set()
    for spec in dataclasses.fields(config_type):
        inner = types[spec.name]
        if dataclasses.is_dataclass(inner):
            fields |= config_fields(inner, f"{prefix}{spec.name}.")
        else:
            fields.add(prefix + spec.name)
    return fields


# options that go with --task survival only: their run gives --task survival and leaves --target out
SURVIVAL_SAMPLES = {"time", "event"}


def test_every_option_of_the_table_reaches_the_config_from_the_command_line(monkeypatch):
    assert set(SAMPLES) == {option.name for option in OPTIONS}
    seen = []
    monkeypatch.setattr("glselect.pipeline.run", lambda config, **callbacks: seen.append(config) or SimpleNamespace(out_dir=None))
    monkeypatch.setattr("glselect.cli.fit.check_header", lambda config: None)  # no table: the options alone are tested
    monkeypatch.setattr("glselect.select.plan.resolve", lambda config: None)  # every option at once: conflicts are not the point
    result = invoke("fit", "data.csv", *(arg for name, (args, _) in SAMPLES.items() if name not in SURVIVAL_SAMPLES for arg in args))
    assert result.exit_code == 0, result.output
    survival_args = [arg for name in SURVIVAL_SAMPLES for arg in SAMPLES[name][0]]
    result = invoke("fit", "data.csv", "--task", "survival", *survival_args)
    assert result.exit_code == 0, result.output
    config, survival = seen
    assert config.table == Path("data.csv")
    for option in OPTIONS:
        assert config_value(survival if option.name in SURVIVAL_SAMPLES else config, option.field) == SAMPLES[option.name][1], option.name
    assert survival.target == SAMPLES["time"][1]  # a survival target is named by --time and --event, not --target


def test_defaults_on_the_command_line_are_the_config_defaults(monkeypatch):
    seen = []
    monkeypatch.setattr("glselect.pipeline.run", lambda config, **callbacks: seen.append(config) or SimpleNamespace(out_dir=None))
    monkeypatch.setattr("glselect.cli.fit.check_header", lambda config: None)  # no table: the options alone are tested
    monkeypatch.setattr("glselect.select.plan.resolve", lambda config: None)  # every option at once: conflicts are not the point
    assert invoke("fit", "data.csv", "-t", "y").exit_code == 0
    assert seen == [RunConfig(table=Path("data.csv"), target="y")]


def test_every_config_field_has_an_option_or_is_listed_without_one():
    with_option = {option.field for option in OPTIONS}
    assert with_option <= config_fields()
    assert config_fields() - with_option - FIELDS_WITHOUT_OPTION == set()


def test_a_removed_option_is_a_usage_error(tmp_path):
    result = invoke("fit", tmp_path / "data.csv", "-t", "y", "--n-lambdas", "5")
    assert result.exit_code == 2 and "No such option: --n-lambdas" in result.output


@pytest.mark.slow
def test_fit_writes_every_artifact_and_json_parses(tmp_path, write_table, tiny_friedman):
    table = write_table(tiny_friedman)
    groups = tmp_path / "groups.csv"
    groups.write_text("feature,group\nx0,pair\nx1,pair\nx10,noise\nx11,noise\n")
    out = tmp_path / "out"
    result = invoke("fit", table, "--target", "y", "--groups", groups, "--out", out, "--json", *FAST)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds the JSON summary and nothing else
    assert {path.name for path in out.iterdir()} == ARTIFACTS
    assert summary == {**json.loads((out / "summary.json").read_text()), "out_dir": str(out)}
    for key in ("task", "target", "selected_features", "selected_groups", "lambda", "metrics", "seed", "version"):
        assert key in summary
    assert summary["task"] == "regression"
    assert summary["confirmed_by"] == "cross-fit5"  # 600 rows: 120 validation rows, too few to confirm on alone
    assert set(summary["selected_groups"]) >= {"pair", "x2", "x3"}
    importances = pd.read_csv(out / "importances.csv")
    # the default runs no all-relevant round: no "round" key between selected and importance
    assert list(importances.columns[:5]) == ["rank", "feature", "group", "selected", "importance"]
    assert {"stand_in", "stand_in_for"} <= set(importances.columns)
    assert len(importances) == 12 and importances["rank"].tolist() == list(range(1, 13))
    assert set(importances.loc[importances["group"] == "pair", "feature"]) == {"x0", "x1"}
    groups_csv = pd.read_csv(out / "groups.csv")
    assert len(groups_csv) == 10  # 12 columns, two pairs merged
    path = pd.read_csv(out / "path.csv")
    assert path["lambda"].iloc[0] == 0 and path["n_selected"].iloc[-1] == 0
    assert path["lambda"].is_monotonic_increasing


@pytest.mark.slow
@pytest.mark.slow
def test_binary_and_multiclass_targets_and_parquet(tmp_path, write_table, linear_table):
    linear_table["label"] = (linear_table.pop("y") > 0).map({True: "yes", False: "no"})
    table = write_table(linear_table, "data.parquet")
    # a top 3 of the path: the target's kind is the question here, not the default's cross-fitted search
    result = invoke("fit", table, "-t", "label", "--out", tmp_path / "bin", "--json", "--max-features", "3", *FAST)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "binary" and summary["classes"] == ["no", "yes"]
    assert {"a", "b"} <= set(summary["selected_features"])
    assert set(summary["metrics"]["pruned"]) == {"log_loss", "accuracy", "balanced_accuracy", "auc"}


def test_default_out_dir_sits_next_to_the_table(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    result = invoke("fit", table, "-t", "y", "--hidden", "0", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data.glselect" / "summary.json").exists()
    assert result.stdout == ""  # --quiet: nothing on stdout


def test_table_on_stdout_names_the_top_features(tmp_path, write_table, linear_table):
    result = invoke("fit", write_table(linear_table), "-t", "y", "--hidden", "0", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    ranked = [line.split("│")[2].strip() for line in lines if line.startswith("│")]
    assert ranked[:2] == ["a", "b"]


def test_missing_table(tmp_path):
    assert_user_error(invoke("fit", tmp_path / "nope.csv", "-t", "y"), f"table file '{tmp_path / 'nope.csv'}' does not exist")


def test_missing_target_column(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    assert_user_error(invoke("fit", table, "-t", "price"), f"target column 'price' is not in '{table}'")


def test_constant_target(tmp_path, write_table, linear_table):
    linear_table["y"] = 1.0
    assert_user_error(invoke("fit", write_table(linear_table), "-t", "y"), "target column 'y' has only one distinct value (1.0)")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("a,y\n1,2\n")
    assert_user_error(invoke("fit", path, "-t", "y"), f"cannot tell the format of '{path}' from its suffix '.xlsx'")


def test_empty_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("")
    assert_user_error(invoke("fit", path, "-t", "y"), f"cannot read table '{path}': Empty CSV file")


def test_header_only_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n")
    assert_user_error(invoke("fit", path, "-t", "y"), f"table '{path}' has no data rows")


def test_malformed_csv_names_the_problem(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n1,2,3\n1,2\n")
    assert_user_error(invoke("fit", path, "-t", "y"), f"cannot read table '{path}': line 3 has 2 fields but the header has 3")


def test_duplicate_column_names(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,a,y\n1,2,3\n4,5,6\n")
    assert_user_error(invoke("fit", path, "-t", "y"), f"table '{path}' has duplicate column names: 'a'")


def test_too_few_rows(tmp_path, write_table, linear_table):
    assert_user_error(
        invoke("fit", write_table(linear_table.head(12)), "-t", "y"), "the table has 12 usable rows; glselect needs at least 20"
    )


def test_infinite_values_name_the_column_and_row(tmp_path, write_table, linear_table):
    linear_table.loc[0, "c"] = float("inf")
    result = invoke("fit", write_table(linear_table), "-t", "y", "--seed", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert_user_error(result, "column 'c' has non-finite values (1, first at data row 1: inf)")


@pytest.mark.parametrize(
    ("map_text", "message"),
    [
        ("feature,group\nzz,g\n", "group map '{map}' names column(s) not in the table: 'zz'"),
        ("feature,group\ny,g\n", "group map '{map}' puts the target column 'y' in group 'g'"),
        ("feature,group\na,g\na,h\n", "group map '{map}' line 3: column 'a' is listed more than once"),
        ("column,group\na,g\n", "group map '{map}' must start with the header 'feature,group', found 'column,group'"),
        ("feature,group\na\n", "group map '{map}' line 2: expected 'feature,group', found 'a'"),
        ("", "group map '{map}' is empty"),
        (
            "feature,group\na,b\n",
            "group map '{map}' uses the name 'b' for a group, but 'b' is also a column outside the map (its own group)",
        ),
    ],
)
def test_bad_group_maps(tmp_path, write_table, linear_table, map_text, message):
    group_map = tmp_path / "groups.csv"
    group_map.write_text(map_text)
    result = invoke("fit", write_table(linear_table), "-t", "y", "--groups", group_map, "--out", tmp_path / "o")
    assert_user_error(result, message.format(map=group_map))
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_refuses_to_replace_a_foreign_directory(tmp_path, write_table, linear_table):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    result = invoke("fit", write_table(linear_table), "-t", "y", "--out", out, "--hidden", "0")
    assert_user_error(result, f"output directory '{out}' exists and is not a glselect output")
    assert (out / "thesis.tex").read_text() == "years of work"


def test_replaces_an_earlier_output_as_a_whole(tmp_path, write_table, linear_table):
    table, out = write_table(linear_table), tmp_path / "o"
    assert invoke("fit", table, "-t", "y", "--out", out, "--hidden", "0", "-q").exit_code == 0
    (out / "stale.txt").write_text("from before")
    assert invoke("fit", table, "-t", "y", "--out", out, "--hidden", "0", "-q").exit_code == 0
    assert {path.name for path in out.iterdir()} == ARTIFACTS
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".o.")]  # no staging left behind


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--hidden", "64,x", "--hidden must be comma-separated whole numbers like '64' or '64,32', got '64,x'"),
        ("--lambda-step", "1", "lambda_step must be greater than 1, got 1.0"),
        ("--task", "ranking", "task must be one of regression, binary, multiclass, survival, got 'ranking'"),
        ("--rule", "best", "rule must be one of 1se, min, got 'best'"),
        ("--val-fraction", "0.7", "val_fraction must be between 0 and 0.5, got 0.7"),
    ],
)
def test_bad_options(tmp_path, write_table, linear_table, option, value, message):
    assert_user_error(invoke("fit", write_table(linear_table), "-t", "y", option, value), message)


def test_regression_task_on_text_target(tmp_path, write_table, linear_table):
    linear_table["y"] = (linear_table["y"] > 0).map({True: "up", False: "down"})
    result = invoke("fit", write_table(linear_table), "-t", "y", "--task", "regression")
    assert_user_error(result, "target column 'y' is not numeric, so it cannot be a regression target")


def test_force_never_deletes_the_input_or_the_working_directory(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    result = invoke("fit", table, "-t", "y", "--out", tmp_path, "--force")
    assert_user_error(result, f"output directory '{tmp_path}' contains '{table}', which replacing it would delete")
    assert table.exists()


def test_max_features_below_the_path_floor_fails_before_fitting(tmp_path, write_table, linear_table):
    result = invoke("fit", write_table(linear_table), "-t", "y", "--max-features", "2", "--min-features", "3")
    assert_user_error(result, "max_features (2) must be at least min_features (3)")


def test_compressed_csv_gets_a_clean_default_out_dir(tmp_path, linear_table):
    table = tmp_path / "data.csv.gz"
    linear_table.to_csv(table, index=False)
    assert invoke("fit", table, "-t", "y", "--hidden", "0", "-q").exit_code == 0
    assert (tmp_path / "data.glselect" / "summary.json").exists()


def test_max_features_keeps_the_strongest_columns(tmp_path, write_table, linear_table):
    result = invoke(
        "fit", write_table(linear_table), "-t", "y", "--hidden", "0", "--max-features", "2", "--json", "-q", "--out", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["selected_features"] == ["a", "b"] and summary["rule"] == "max_features=2"


def test_multiclass_logistic_group_lasso_finds_the_driving_columns(tmp_path, write_table, linear_table):
    linear_table["y"] = pd.cut(linear_table["y"], [-100, -2, 2, 100], labels=["low", "mid", "high"]).astype(str)
    # the path's top 3 (the multinomial path must rank a and b first), not the default's cross-fitted search
    args = ["--hidden", "0", "--max-features", "3", "--json", "-q", "--out", tmp_path / "o"]
    result = invoke("fit", write_table(linear_table), "-t", "y", *args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "multiclass" and summary["classes"] == ["high", "low", "mid"]
    assert {"a", "b"} <= set(summary["selected_features"])
    assert set(summary["metrics"]["pruned"]) == {"log_loss", "accuracy", "balanced_accuracy"}
    importances = pd.read_csv(tmp_path / "o" / "importances.csv")
    assert set(importances["feature"].head(2)) == {"a", "b"}


def test_control_characters_in_names_stay_on_one_line(tmp_path, write_table, linear_table):
    linear_table["odd\nname"] = 1.0
    result = invoke("fit", write_table(linear_table), "-t", "odd\nname")
    assert_user_error(result, "target column 'odd\\nname' has only one distinct value (1.0)")
