"""A column that copies the target: the fit warns, a streamed fit too, and ``check --fail-on-leakage`` fails the job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.errors import ExitCode

runner = CliRunner()
CHEAP = ["--hidden", "0", "--goal", "minimal", "--confirm", "0", "--permutation-repeats", "0", "--val-fraction", "0.25"]
CHEAP += ["--lambda-step", "1.3", "--max-iters-per-lambda", "20", "--max-iters", "200"]
WARNING = (
    "warning: group 'leak' alone predicts the target almost perfectly (r2 1 on the validation rows): it may copy the target "
    "or be computed from it; drop it (--drop) unless its values are known before the target's"
)


def leaking_table(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({name: rng.standard_normal(n) for name in ("a", "b", "n1")})
    frame["y"] = 2 * frame["a"] - frame["b"] + 0.5 * rng.standard_normal(n)
    frame["leak"] = frame["y"].round(3)
    return frame


def fit(table: Path, out: Path, *extra: str):
    result = runner.invoke(app, ["fit", str(table), "-t", "y", "--out", str(out), *CHEAP, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_the_fit_warns_and_check_fail_on_leakage_fails_the_job_on_it_alone(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    leaking_table().to_csv(table, index=False)
    result = fit(table, tmp_path / "leaky")
    assert WARNING in result.stderr.splitlines(), result.stderr
    checked = runner.invoke(app, ["check", str(tmp_path / "leaky"), "--fail-on-leakage", "--json"])
    assert checked.exit_code == ExitCode.CHECK_FAILED, checked.output
    rules = json.loads(checked.stdout)["rules"]
    assert rules == [
        {
            "rule": "no leakage",
            "passed": False,
            "detail": "group(s) alone predict the target almost perfectly: 'leak' (r2 1.0)",
        }
    ]
    printed = runner.invoke(app, ["check", str(tmp_path / "leaky"), "--fail-on-leakage"])
    assert printed.exit_code == ExitCode.CHECK_FAILED and "FAIL" in printed.stdout and "'leak' (r2 1.0)" in printed.stdout
    assert "Traceback" not in printed.output
    leaking_table().drop(columns="leak").to_csv(table, index=False)
    fit(table, tmp_path / "clean")
    clean = runner.invoke(app, ["check", str(tmp_path / "clean"), "--fail-on-leakage", "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["rules"][0]["detail"] == "no group alone predicts the target almost perfectly"


def test_a_streamed_fit_lists_the_leak_too(tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    leaking_table().to_parquet(table, index=False)
    stream = ["--stream", "--batch-size", "128", "--learning-rate", "0.02", "--max-epochs", "2", "--max-steps", "20"]
    fit(table, tmp_path / "out", *stream)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["streaming"] is not None
    assert summary["leakage"] == [{"group": "leak", "score": 1.0, "metric": "r2"}]
