"""The reading report from the command line: a fit prints it and keeps it in the summary, and a small streamed
classification learns both classes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.cli.reading import print_reading
from tests.conftest import report_table

runner = CliRunner()


def test_a_small_streamed_classification_learns_both_classes(tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    X = rng.standard_normal((n, 4))
    probability = 1 / (1 + np.exp(-(2.5 * X[:, 0] + 1.5 * X[:, 1] - 1.5)))  # about 30% positives
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=(rng.random(n) < probability).astype(int))
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--target",
            "y",
            "--stream",
            "--out",
            str(out),
            "--quiet",
            "--hidden",
            "0",
            "--max-steps",
            "3",
            "--epochs-per-lambda",
            "0.25",
            "--permutation-repeats",
            "0",
            "--confirm",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["streaming"]["steps_per_epoch"] >= 32
    assert summary["streaming"]["batch_size"] == -(-summary["sizes"]["train_rows"] // 32)
    speeds = summary["streaming"]["rows_per_second_per_epoch"]  # whole epochs of the dense fit and the refit, timed
    assert summary["streaming"]["epochs_timed"] >= 2 and 0 < speeds["min"] <= speeds["median"] <= speeds["max"]
    assert summary["metrics"]["pruned"]["balanced_accuracy"] > 0.7  # one class for every row scores 0.5
    assert summary["reading"]["warnings"] == []


def test_the_fit_prints_the_reading_report_and_keeps_it_in_the_summary(tmp_path, capsys):
    df = report_table()
    df["label"] = np.where(df["a"] > 0, "pos", "neg")
    df.loc[[0, 1, 2], "label"] = "odd"  # a class of 3 rows
    df = df.drop(columns=["y"]).dropna()
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--target",
            "label",
            "--out",
            str(out),
            "--hidden",
            "0",
            "--max-steps",
            "4",
            "--permutation-repeats",
            "0",
            "--confirm",
            "0",
            "--goal",
            "minimal",  # the rule's step: the default's cross-fitted search is not what the reading report is about
        ],
    )
    assert result.exit_code == 0, result.output
    assert "read 240 rows; columns: 4 numeric, 1 ignored, 1 categorical" in result.stderr
    assert "ignored 'note': constant: every value is 'same'" in result.stderr
    assert "warning: target 'label' has small classes ('odd': 3 rows)" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reading"]["warnings"][0].startswith("target 'label' has small classes ('odd': 3 rows)")
    assert summary["reading"]["ignored"] == {"note": "constant: every value is 'same'"}
    print_reading(summary["reading"], quiet=True)  # --quiet: the warnings still show, the facts do not
    printed = capsys.readouterr().err
    assert "read 240 rows" not in printed and "warning: target 'label' has small classes" in printed


def test_the_reading_report_is_printed_before_training(tmp_path, monkeypatch):
    import glselect.pipeline
    from glselect.errors import GlselectError

    def stop(*args, **kwargs):
        raise GlselectError("stopped where training starts")

    monkeypatch.setattr(glselect.pipeline, "fit_dataset", stop)
    df = report_table()
    df["label"] = np.where(df["a"] > 0, "pos", "neg")
    df.loc[[0, 1, 2], "label"] = "odd"  # a class of 3 rows
    path = tmp_path / "t.csv"
    df.drop(columns=["y"]).dropna().to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "--target", "label", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "read 240 rows; columns: 4 numeric, 1 ignored, 1 categorical"
    assert "ignored 'note': constant: every value is 'same'" in lines
    assert any(line.startswith("warning: target 'label' has small classes") for line in lines)
    assert lines[-1] == "error: stopped where training starts"
