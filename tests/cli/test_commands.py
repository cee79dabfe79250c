"""The commands around a fit: predict, select, show, check, and the neuron-pruned model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from glselect import ModelConfig, PathConfig, RunConfig, run
from glselect._synthetic import make_mixed_table
from glselect.config import SelectionConfig
from glselect.data.encoder import encode_features
from tests.conftest import assert_user_error, invoke


@pytest.fixture(scope="module")
def mixed_fit(tmp_path_factory):
    """A classification fit on a messy table: colour (categorical) and dose drive the label."""
    folder = tmp_path_factory.mktemp("mixed")
    table = make_mixed_table(500, seed=2)
    table["y"] = np.where(table["y"] > 0, "high", "low")
    table.to_parquet(folder / "train.parquet", index=False)
    config = RunConfig(
        table=folder / "train.parquet",
        target="y",
        out=folder / "out",
        model=ModelConfig(hidden=(6,)),
        path=PathConfig(max_iters_per_lambda=30, tol=0.1),
        # the rule's step: the commands after fit are the question, not the default's cross-fitted search
        selection=SelectionConfig(goal="minimal", confirm=0),
    )
    return run(config), table, folder


def test_predict_reproduces_the_refit_model_on_the_training_table(mixed_fit, tmp_path):
    result, table, folder = mixed_fit
    cli = invoke("predict", result.out_dir, folder / "train.parquet", "--out", tmp_path / "p.csv", "--keep", "customer_id")
    assert cli.exit_code == 0, cli.output
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert list(predicted.columns) == ["customer_id", "prediction", "probability_high", "probability_low"]
    X = torch.from_numpy(encode_features(result.encoder, table))[:, torch.as_tensor(np.flatnonzero(result.selection.feature_mask))]
    with torch.no_grad():
        expected = torch.sigmoid(result.selection.model(X)[:, 0]).double().numpy()  # P(class 1 = "low")
    assert predicted["probability_low"].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert (predicted["prediction"] == np.where(expected > 0.5, "low", "high")).all()
    assert (predicted["prediction"] == table["y"]).mean() > 0.8


def test_predict_copes_with_new_levels_missing_cells_and_absent_unused_columns(mixed_fit, tmp_path):
    result, table, _ = mixed_fit
    used = set(result.summary["selected_features"])
    assert "colour" in used
    new = table.head(6)[sorted(used)].copy()
    new.loc[new.index[0], "colour"] = "ultraviolet"  # a level never seen in training
    new.loc[new.index[1], "dose"] = np.nan if "dose" in used else None
    new.to_csv(tmp_path / "new.csv", index=False)
    cli = invoke("predict", result.out_dir, tmp_path / "new.csv")
    assert cli.exit_code == 0, cli.output
    predicted = pd.read_csv(pd.io.common.StringIO(cli.stdout))
    assert len(predicted) == 6 and predicted["probability_high"].between(0, 1).all()


def test_predict_notes_unseen_categories_with_the_column_and_count(mixed_fit, tmp_path):
    result, table, _ = mixed_fit
    new = table.head(5)[["colour", "dose"]].copy()
    new["colour"] = ["ultraviolet", "pink", "ultraviolet", "red", "blue"]
    new.to_csv(tmp_path / "new.csv", index=False)
    cli = invoke("predict", result.out_dir, tmp_path / "new.csv", "-o", tmp_path / "p.csv")
    assert cli.exit_code == 0, cli.output
    levels = json.loads((result.out_dir / "model.json").read_text())["encoder"]["columns"][0]["levels"]
    assert "<other>" not in levels  # four colours, none pooled: an unseen one has no level of its own
    assert cli.stderr.splitlines()[0] == (
        "note: column 'colour': 3 rows with a category the fit never saw ('ultraviolet', 'pink'), encoded as none of its known categories"
    )


def test_predict_fills_a_column_empty_in_every_row_as_missing_cells(mixed_fit, tmp_path):
    result, table, _ = mixed_fit
    assert "dose" in result.summary["selected_features"]
    new = table.head(3)[["colour", "dose"]].copy()
    (tmp_path / "new.csv").write_text("colour,dose\n" + "".join(f"{colour},\n" for colour in new["colour"]))
    cli = invoke("predict", result.out_dir, tmp_path / "new.csv", "-o", tmp_path / "p.csv")
    assert cli.exit_code == 0, cli.output
    assert cli.stderr.splitlines()[0] == "note: column 'dose' is empty in every row: filled with its training mean, as a missing cell is"
    new["dose"] = np.nan  # the same rows with the cells missing one by one: the same predictions
    new.to_parquet(tmp_path / "nan.parquet", index=False)
    assert invoke("predict", result.out_dir, tmp_path / "nan.parquet", "-o", tmp_path / "q.csv").exit_code == 0
    assert pd.read_csv(tmp_path / "p.csv").equals(pd.read_csv(tmp_path / "q.csv"))


@pytest.mark.parametrize("name", ["header.csv", "header.parquet"])
def test_predict_on_a_header_only_table_writes_a_header_only_file(mixed_fit, tmp_path, name):
    result, table, _ = mixed_fit
    empty = table.head(0)[["customer_id", "colour", "dose"]]
    if name.endswith(".csv"):
        (tmp_path / name).write_text("customer_id,colour,dose\n")
    else:
        empty.to_parquet(tmp_path / name, index=False)
    cli = invoke("predict", result.out_dir, tmp_path / name, "-o", tmp_path / "p.csv", "--keep", "customer_id")
    assert cli.exit_code == 0, cli.output
    assert (tmp_path / "p.csv").read_text() == "customer_id,prediction,probability_high,probability_low\n"
    assert cli.stderr.strip() == f"wrote 0 predictions to {tmp_path / 'p.csv'}"


def test_predict_names_a_missing_column(mixed_fit, tmp_path):
    result, table, _ = mixed_fit
    table.drop(columns="colour").to_csv(tmp_path / "t.csv", index=False)
    assert_user_error(invoke("predict", result.out_dir, tmp_path / "t.csv"), "the table lacks column(s) the model was fitted on: 'colour'")


def test_regression_predictions_are_in_the_targets_units(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    assert invoke("fit", table, "-t", "y", "--hidden", "0", "-q", "--out", tmp_path / "o").exit_code == 0
    cli = invoke("predict", tmp_path / "o", table)
    predicted = pd.read_csv(pd.io.common.StringIO(cli.stdout))["prediction"]
    residual = predicted - linear_table["y"]
    assert residual.std() < 0.2 * linear_table["y"].std()  # y = 3a - 2b + ... is nearly linear


def test_select_writes_the_selected_columns_and_the_target(mixed_fit, tmp_path):
    result, _, folder = mixed_fit
    cli = invoke("select", result.out_dir, folder / "train.parquet", "--out", tmp_path / "reduced.parquet")
    assert cli.exit_code == 0, cli.output
    reduced = pd.read_parquet(tmp_path / "reduced.parquet")
    assert list(reduced.columns) == [*result.summary["selected_features"], "y"]
    assert len(reduced) == 500


def test_select_keeps_named_columns_beside_the_selected_ones(mixed_fit, tmp_path):
    result, _, folder = mixed_fit
    selected = result.summary["selected_features"]
    assert "customer_id" not in selected and "colour" in selected
    cli = invoke("select", result.out_dir, folder / "train.parquet", "-o", tmp_path / "r.csv", "--keep", "customer_id", "--keep", "colour")
    assert cli.exit_code == 0, cli.output
    reduced = pd.read_csv(tmp_path / "r.csv")
    assert list(reduced.columns) == ["customer_id", "colour", *[name for name in selected if name != "colour"], "y"]
    assert reduced["customer_id"].tolist() == pd.read_parquet(folder / "train.parquet")["customer_id"].tolist()


@pytest.mark.parametrize("command", ["select", "predict"])
def test_keep_names_an_unknown_column_and_suggests_the_closest(mixed_fit, tmp_path, command):
    result, _, folder = mixed_fit
    data = folder / "train.parquet"
    cli = invoke(command, result.out_dir, data, "-o", tmp_path / "r.csv", "--keep", "customer-id", "--keep", "nothing")
    assert_user_error(cli, f"--keep names column(s) not in '{data}': 'customer-id', 'nothing'")
    assert cli.stderr.splitlines()[1] == "hint: did you mean 'customer_id' for 'customer-id'?"
    assert not (tmp_path / "r.csv").exists()


def test_predict_and_select_read_semicolon_decimal_comma_files_with_sep_and_decimal(mixed_fit, tmp_path):
    result, table, _ = mixed_fit
    used = sorted(result.summary["selected_features"])
    new = table.head(8)[["customer_id", *used]]
    new.to_csv(tmp_path / "comma.csv", index=False)
    new.to_csv(tmp_path / "semicolon.csv", index=False, sep=";", decimal=",")
    expected = invoke("predict", result.out_dir, tmp_path / "comma.csv")
    assert expected.exit_code == 0, expected.output
    cli = invoke("predict", result.out_dir, tmp_path / "semicolon.csv", "--sep", ";", "--decimal", ",")
    assert cli.exit_code == 0, cli.output
    assert cli.stdout == expected.stdout
    cli = invoke("select", result.out_dir, tmp_path / "semicolon.csv", "--sep", ";", "--decimal", ",", "-o", tmp_path / "r.csv")
    assert cli.exit_code == 0, cli.output
    assert list(pd.read_csv(tmp_path / "r.csv").columns) == used
    assert_user_error(
        invoke("predict", result.out_dir, tmp_path / "comma.csv", "--sep", ",", "--decimal", ","),
        "the decimal mark ',' cannot also be the field separator (--sep)",
    )


def test_show_json_comes_from_the_artifacts_alone(mixed_fit, tmp_path):
    result, _, _ = mixed_fit
    copy = tmp_path / "copied"
    shutil.copytree(result.out_dir, copy)
    cli = invoke("show", copy, "--json", "--top", "3")
    assert cli.exit_code == 0, cli.output
    shown = json.loads(cli.stdout)
    assert shown["selected_features"] == result.summary["selected_features"]
    assert [row["feature"] for row in shown["top_features"]] == result.importances.features["feature"].head(3).tolist()


def test_commands_refuse_a_directory_that_is_not_an_output(tmp_path):
    assert_user_error(invoke("show", tmp_path), f"'{tmp_path}' is not a glselect output: 'summary.json' is missing or not ours")
    assert_user_error(invoke("predict", tmp_path, tmp_path / "x.csv"), f"'{tmp_path}' is not a glselect output: 'model.json' is missing")


@pytest.mark.parametrize(
    ("rule", "passes"),
    [
        (["--expect", "colour"], True),
        (["--expect", "city"], False),
        (["--forbid", "customer_id"], True),
        (["--forbid", "colour"], False),
        (["--max-share", "0.99"], True),
        (["--max-share", "0.05"], False),
    ],
)
def test_check_rules_pass_and_fail_with_distinct_exit_codes(mixed_fit, rule, passes):
    result, _, _ = mixed_fit
    cli = invoke("check", result.out_dir, *rule, "--json")
    assert cli.exit_code == (0 if passes else 3), cli.output
    outcome = json.loads(cli.stdout)
    assert outcome["passed"] is passes and len(outcome["rules"]) == 1


def test_check_baseline_overlap(mixed_fit, tmp_path):
    result, _, _ = mixed_fit
    assert invoke("check", result.out_dir, "--baseline", result.out_dir, "--min-overlap", "1").exit_code == 0
    drifted = tmp_path / "drifted"
    shutil.copytree(result.out_dir, drifted)
    summary = json.loads((drifted / "summary.json").read_text())
    summary["selected_features"] = [*summary["selected_features"][:1], "city"]
    (drifted / "summary.json").write_text(json.dumps(summary))
    cli = invoke("check", result.out_dir, "--baseline", drifted, "--min-overlap", "0.9")
    assert cli.exit_code == 3 and "FAIL" in cli.stdout and "new:" in cli.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no rule to check"),
        (["--expect", "nonexistent"], "--expect names column(s) that the fit in '{out}' never saw: 'nonexistent'"),
        (["--min-overlap", "0.5"], "--baseline and --min-overlap go together"),
        (["--max-share", "1.5"], "--max-share must be in (0, 1], got 1.5"),
    ],
)
def test_check_usage_errors_exit_2(mixed_fit, args, message):
    result, _, _ = mixed_fit
    assert_user_error(invoke("check", result.out_dir, *args), message.format(out=result.out_dir))


def test_check_suggests_the_closest_column_for_an_unknown_name(mixed_fit):
    result, _, _ = mixed_fit
    cli = invoke("check", result.out_dir, "--expect", "dos", "--forbid", "customer_id")
    assert_user_error(cli, f"--expect names column(s) that the fit in '{result.out_dir}' never saw: 'dos'")
    assert cli.stderr.splitlines()[1] == "hint: did you mean 'dose'?"


@pytest.mark.slow
def test_neuron_penalty_prunes_hidden_units_at_a_small_cost(tmp_path, write_table):
    from glselect._synthetic import make_friedman1

    # 1,500 rows: 250+ validation rows, so the default search compares on them without cross-fitting;
    # six columns (the five that drive Friedman #1 and one of noise) keep the path short
    table = write_table(make_friedman1(1500, 6, noise=0.5, seed=4))
    summaries = {}
    for penalty in ("0", "0.01"):
        cli = invoke("fit", table, "-t", "y", "--hidden", "32", "--neuron-penalty", penalty, "--json", "-q", "--out", tmp_path / penalty)
        assert cli.exit_code == 0, cli.output
        summaries[penalty] = json.loads(cli.stdout)
    plain, pruned = summaries["0"], summaries["0.01"]
    assert pruned["sizes"]["pruned_hidden"][0] < 16 and pruned["sizes"]["pruned_neurons_removed"] > 16
    assert pruned["sizes"]["pruned_parameters"] < plain["sizes"]["pruned_parameters"] / 2
    assert pruned["metrics"]["pruned"]["r2"] > plain["metrics"]["pruned"]["r2"] - 0.03
    cli = invoke("predict", tmp_path / "0.01", table)  # the pruned architecture loads and predicts
    assert cli.exit_code == 0, cli.output


def test_report_command_writes_the_plot_and_the_page(mixed_fit, tmp_path):
    result, _, _ = mixed_fit
    copy = tmp_path / "copied"
    shutil.copytree(result.out_dir, copy)
    cli = invoke("report", copy)
    assert cli.exit_code == 0, cli.output
    assert (copy / "path.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (copy / "report.html").read_text()
