"""The selection options from the command line: bad values are one line and exit 2, and cross-validation, stability,
--max-features and --goal run end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from glselect.cli.app import app
from tests.conftest import FAST, assert_user_error, invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "1"], "cv must be 0 (one validation split), at least 2 folds, or 'auto', got 1"),
        (["--stability-threshold", "0.5"], "stability_threshold must be in (0.5, 1], got 0.5"),
        (["--stability", "-1"], "stability pairs must be >= 0, got -1"),
        (["--class-weight", "heavy"], "class_weight must be one of none, balanced, got 'heavy'"),
        (["--class-weight", "balanced"], "--class-weight balanced needs a classification target; this one is numeric (regression)"),
        (["--permutation-repeats", "-2"], "permutation_repeats must be >= 0, got -2"),
        (["--confirm", "-1"], "confirm must be >= 0, got -1.0"),
    ],
)
def test_bad_selection_options_are_one_line_errors(tmp_path, write_table, linear_table, args, message):
    out = tmp_path / "out"
    result = invoke("fit", write_table(linear_table), "-t", "y", "--out", out, *FAST, *args)
    assert_user_error(result, message)
    assert not out.exists()


@pytest.mark.slow
def test_cv_and_stability_from_the_command_line(tmp_path, write_table, linear_table):
    out = tmp_path / "out"
    result = invoke(
        "fit",
        write_table(linear_table),
        "-t",
        "y",
        "--out",
        out,
        "--json",
        "--cv",
        "3",
        "--stability",
        "2",
        "--stability-q",
        "3",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scored_by"] == "cv3" and summary["stability"]["pairs"] == 2
    assert summary["confirmed_by"] == "cross-fit3"  # the path's folds
    groups = pd.read_csv(out / "groups.csv")
    assert {"permutation", "permutation_std", "stability"} <= set(groups.columns)
    assert {"cv_loss", "cv_se"} <= set(pd.read_csv(out / "path.csv").columns)
    shown = invoke("show", out)
    assert shown.exit_code == 0, shown.output


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "many"], "--cv must be a whole number of folds (0: off) or 'auto', got 'many'"),
        (["--max-correlation", "0"], "max_correlation must be in (0, 1] (1: off), got 0.0"),
        (["--max-correlation", "1.5"], "max_correlation must be in (0, 1] (1: off), got 1.5"),
        (["--fdr", "0.2", "--cv", "auto"], "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
    ],
)
def test_bad_recall_options_exit_2_with_one_line(write_table, linear_table, args, message):
    result = runner.invoke(app, ["fit", str(write_table(linear_table)), "-t", "y", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == f"error: {message}"


def _near_copies(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """y leans on a and its near-copy a2 (correlation 0.96) and, less, on b: the path's last two
    survivors are the copies, a redundancy-aware top 2 is one copy and b."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "n1", "n2", "n3"]})
    df["a2"] = df["a"] + 0.3 * rng.standard_normal(n)
    df["y"] = 2 * (df["a"] + df["a2"]) + 1.0 * df["b"] + 0.5 * rng.standard_normal(n)
    return df


def _selected(args: list[str]) -> set[str]:
    result = runner.invoke(app, ["fit", *args])
    assert result.exit_code == 0, result.output
    return set(json.loads(result.stdout)["selected_features"])


def test_max_features_skips_a_near_copy_of_a_column_taken(tmp_path):
    # streamed and under torchrun: tests/cli/test_distributed.py (both runs there take --max-correlation)
    data = tmp_path / "data.csv"
    _near_copies().to_csv(data, index=False)
    common = [str(data), "-t", "y", "--hidden", "0", "--max-features", "2", "--json", "-q"]
    taken = _selected([*common, "--out", str(tmp_path / "skip")])
    assert len(taken) == 2 and "b" in taken and len({"a", "a2"} & taken) == 1
    assert json.loads((tmp_path / "skip" / "summary.json").read_text())["confirmed_by"] is None  # top k: not confirmed
    # the path's own two survivors: both copies (what the walk avoids)
    assert _selected([*common, "--max-correlation", "1", "--out", str(tmp_path / "own")]) == {"a", "a2"}


def _redundant(n: int = 500, seed: int = 1) -> pd.DataFrame:
    """y = a + b + c + noise; r = a + b exactly (make_classification's redundant kind); n1..n4 noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "c", "n1", "n2", "n3", "n4"]})
    df["r"] = df["a"] + df["b"]
    df["y"] = df["a"] + df["b"] + df["c"] + 0.5 * rng.standard_normal(n)
    return df


@pytest.mark.parametrize("stream", [False, True])
def test_the_default_names_a_redundant_column_a_substitute_and_all_relevant_selects_it(tmp_path, stream):
    # streamed, 260 validation rows: the comparisons are made on them; in memory, 100: cross-fitted
    table = _redundant(1300 if stream else 500)
    data = tmp_path / ("data.parquet" if stream else "data.csv")
    table.to_parquet(data, index=False) if stream else table.to_csv(data, index=False)
    # streamed at the stream's own settings: STREAM_FAST's 25 steps leave every refit short of the dense fit
    common = [str(data), "-t", "y", "--hidden", "0", "--json", "-q"] + (["--stream"] if stream else [])
    result = runner.invoke(app, ["fit", *common, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # y = r + c with r = a + b: the smallest set is r and c (a and b together stand in for r), or
    # two of a, b, r and c (the third stands in for one of them); never a noise column
    selected = set(summary["selected_features"])
    assert "c" in selected and selected < {"a", "b", "c", "r"}
    stand_ins = summary["stand_ins"]["selected"]
    substitutes = {name for found in stand_ins.values() for name in found["substitutes"]}
    assert selected | substitutes == {"a", "b", "c", "r"} and not selected & substitutes
    assert stand_ins["r"]["together"] if selected == {"r", "c"} else len(substitutes) == 1
    assert summary["as_good_as_all"]["compared_on"] == ("validation" if stream else "cross-fit5")
    result = runner.invoke(app, ["fit", *common, "--goal", "all-relevant", "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["selected_features"]) == {"a", "b", "c", "r"}  # the substitute too, no noise column
    assert summary["rule"].endswith(", all-relevant")


def test_the_default_names_no_stand_in_where_only_noise_is_left_out(tmp_path):
    table = _redundant().drop(columns="r")
    data = tmp_path / "data.csv"
    table.to_csv(data, index=False)
    common = [str(data), "-t", "y", "--hidden", "0", "--json", "-q"]
    result = runner.invoke(app, ["fit", *common, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["selected_features"]) == {"a", "b", "c"}
    assert summary["stand_ins"] == {
        "selected": {name: {"substitutes": [], "together": False, "proxies": []} for name in summary["selected_groups"]},
        "own_signal": [],
    }
    assert "all_relevant_rounds" not in summary and summary["rule"] == "1se, as good as all columns"
    result = runner.invoke(app, ["fit", *common, "--max-features", "2", "--out", str(tmp_path / "top")])
    assert result.exit_code == 0, result.output
    assert "stand_ins" not in json.loads(result.stdout) and "as_good_as_all" not in json.loads(result.stdout)
