"""Measures a fit did not compute are blank, never 0: the files, the printed table and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import invoke, make_linear_table

CHEAP = ["--hidden", "0", "--max-steps", "6", "--max-iters-per-lambda", "30", "--relax-iters", "20", "--confirm", "0"]


@pytest.fixture(scope="module")
def no_permutation(tmp_path_factory) -> tuple[Path, str, str]:
    """(out dir, stdout, stderr) of a fit with ``--permutation-repeats 0``."""
    folder = tmp_path_factory.mktemp("repeats0")
    make_linear_table().to_csv(folder / "data.csv", index=False)
    result = invoke("fit", folder / "data.csv", "--target", "y", "--out", folder / "out", "--permutation-repeats", "0", *CHEAP)
    assert result.exit_code == 0, result.output
    return folder / "out", result.stdout, result.stderr


@pytest.mark.parametrize("name", ["importances.csv", "groups.csv"])
def test_zero_repeats_leave_the_permutation_columns_blank(no_permutation, name):
    table = pd.read_csv(no_permutation[0] / name)
    assert {"permutation", "permutation_std"} <= set(table.columns)  # every out dir has the same columns
    assert table[["permutation", "permutation_std"]].isna().all().all(), table[["permutation", "permutation_std"]]
    # and the file says so: empty cells, not a 0 that reads as "shuffling it changed nothing"
    text = (no_permutation[0] / name).read_text()
    assert ",0.0," not in text.split("\n", 2)[1]


def test_zero_repeats_print_no_permutation_column(no_permutation):
    printed = no_permutation[1]
    assert "Top " in printed and "survival" in printed  # the ranked table was printed
    assert "perm" not in printed


def test_zero_repeats_run_no_permutation_stage(tmp_path):
    from glselect.config import ImportanceConfig, RunConfig
    from glselect.select.plan import resolve

    config = RunConfig(table=tmp_path / "t.csv", target="y", importance=ImportanceConfig(permutation_repeats=0))
    assert "permutation" not in resolve(config).names
    assert "permutation" in resolve(RunConfig(table=tmp_path / "t.csv", target="y")).names


def test_a_path_that_stopped_early_is_warned_about_once(no_permutation):
    # --max-steps 6 stops the path with groups still in: fit prints the report's fit_warnings, each once
    stderr = no_permutation[2]
    assert stderr.count("warning: the path stopped after 6 lambdas with groups still non-zero") == 1, stderr
