"""--fdr from the command line: a streamed knockoff fit, and bad options as usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from glselect.cli.app import app
from tests.conftest import knockoff_table

runner = CliRunner()


def test_streamed_fit_with_fdr_selects_by_knockoffs(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = knockoff_table(200, 1, 6, 1.0, p=10)
    frame["colour"] = np.random.default_rng(2).choice(["red", "green", "blue"], len(frame))  # one group of 3 one-hot columns
    frame.to_parquet(path, index=False)
    out = tmp_path / "out"
    args = [
        "fit",
        str(path),
        "-t",
        "y",
        "--stream",
        "--hidden",
        "0",
        "--fdr",
        "0.2",
        "--knockoff-draws",
        "1",
        "--lambda-step",
        "1.3",
        "--batch-size",
        "100",
        "--max-epochs",
        "1",
        "--out",
        str(out),
        "--permutation-repeats",
        "0",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    block = summary["fdr"]
    assert block["q"] == 0.2 and len(block["statistic"]) == 11 and "colour" in block["statistic"]
    assert set(summary["selected_groups"]) == set(block["selected_groups"])
    assert summary["streaming"] is not None
    columns = pd.read_csv(out / "importances.csv").columns
    assert {"knockoff_statistic", "knockoff_e_value", "knockoff_frequency"} <= set(columns)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fdr", "1.5"], "fdr must be in (0, 1), got 1.5"),
        (["--fdr", "0.1", "--max-features", "3"], "--fdr and --max-features both choose the selected set: give one of them"),
        (["--fdr", "0.1", "--cv", "3"], "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
        (["--fdr", "0.1", "--knockoff-draws", "0"], "knockoff_draws must be at least 1, got 0"),
    ],
)
def test_bad_fdr_options_are_usage_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    path = tmp_path / "t.csv"
    knockoff_table(40, 0, 2, 1.0).to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "-t", "y", "--out", str(tmp_path / "out"), *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
