"""The sparse group lasso (--l1-ratio) end to end: inside a kept group the columns that carry no
signal are left out, and every artifact says so (importances, summary, model, predict)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from glselect.cli.app import app

runner = CliRunner()
GROUPS = {"ga": ["a", "a_noise1", "a_noise2"], "gb": ["b", "b_noise"], "gn": ["n1", "n2"]}


def _grouped_table(n: int = 500) -> pd.DataFrame:
    """One column per true group matters (a in ga, b in gb) and one level of a categorical; gn is noise."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "a_noise1", "a_noise2", "b", "b_noise", "n1", "n2"]})
    df["colour"] = rng.choice(["red", "green", "blue"], n)
    df["y"] = 2 * df["a"] - 1.5 * df["b"] + 1.5 * (df["colour"] == "red") + 0.3 * rng.standard_normal(n)
    return df


def _fit(tmp_path: Path, l1_ratio: float) -> tuple[dict, pd.DataFrame, dict, Path]:
    data, groups, out = tmp_path / "data.csv", tmp_path / "groups.json", tmp_path / f"out{l1_ratio}"
    _grouped_table().to_csv(data, index=False)
    groups.write_text(json.dumps(GROUPS))
    result = runner.invoke(
        app,
        [
            "fit",
            str(data),
            "--target",
            "y",
            "--groups",
            str(groups),
            "--hidden",
            "0",
            "--l1-ratio",
            str(l1_ratio),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    importances = pd.read_csv(out / "importances.csv").set_index("feature")
    model = json.loads((out / "model.json").read_text())
    return summary, importances, model, out


def test_sparse_group_lasso_leaves_noise_columns_of_kept_groups_out_of_every_artifact(tmp_path: Path) -> None:
    summary, importances, model, out = _fit(tmp_path, 0.5)
    assert summary["selected_groups"] == ["ga", "gb", "colour"]
    assert summary["selected_features"] == ["a", "b", "colour"]
    assert {"a_noise1", "a_noise2", "b_noise"} <= set(summary["dropped_within_groups"])
    assert importances.loc[["a_noise1", "a_noise2", "b_noise"], "selected"].eq(False).all()
    # the noise columns left before their groups did: column survival below group survival
    noise = importances.loc[["a_noise1", "a_noise2", "b_noise"]]
    assert (noise["column_importance"] < noise["importance"]).all()
    assert (importances.loc[["a", "b"], "column_importance"] == importances.loc[["a", "b"], "importance"]).all()
    # the saved model reads only the kept encoded columns, and predict picks them by name
    assert "a_noise1" not in model["inputs"] and {"a", "b", "colour=red"} <= set(model["inputs"])
    predicted = tmp_path / "predicted.csv"
    result = runner.invoke(app, ["predict", str(out), str(tmp_path / "data.csv"), "--out", str(predicted)])
    assert result.exit_code == 0, result.output
    correlation = np.corrcoef(pd.read_csv(predicted)["prediction"], _grouped_table()["y"])[0, 1]
    assert correlation > 0.95


def test_group_lasso_keeps_whole_groups(tmp_path: Path) -> None:
    summary, importances, _, _ = _fit(tmp_path, 0.0)
    assert summary["selected_groups"] == ["ga", "gb", "colour"]
    assert summary["dropped_within_groups"] == []
    assert importances.loc[["a_noise1", "a_noise2", "b_noise"], "selected"].all()


def test_l1_ratio_outside_0_1_is_a_user_error(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    _grouped_table(50).to_csv(data, index=False)
    result = runner.invoke(app, ["fit", str(data), "--target", "y", "--l1-ratio", "1.5"])
    assert result.exit_code == 2
    assert "l1_ratio must be between 0 (group lasso) and 1 (lasso on the encoded columns), got 1.5" in result.output
    assert "Traceback" not in result.output


def test_a_streamed_sparse_group_fit_writes_consistent_artifacts(tmp_path: Path) -> None:
    """Streamed (proximal SGD through the same penalty object): the true groups are kept, and what
    the artifacts call selected is exactly what the saved model reads, which predict can apply."""
    data, groups, out = tmp_path / "data.parquet", tmp_path / "groups.json", tmp_path / "out"
    _grouped_table(1200).to_parquet(data, index=False, row_group_size=300)
    groups.write_text(json.dumps(GROUPS))
    result = runner.invoke(
        app,
        [
            "fit",
            str(data),
            "--target",
            "y",
            "--groups",
            str(groups),
            "--hidden",
            "0",
            "--stream",
            "--l1-ratio",
            "0.5",
            "--batch-size",
            "256",
            "--max-epochs",
            "2",
            "--max-steps",
            "20",
            "--permutation-repeats",
            "0",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["streaming"]["processes"] == 1
    assert {"ga", "gb", "colour"} <= set(summary["selected_groups"])
    importances = pd.read_csv(out / "importances.csv")
    inputs = json.loads((out / "model.json").read_text())["inputs"]
    read = {name.split("=")[0] for name in inputs}
    assert set(importances.loc[importances["selected"], "feature"]) == read == set(summary["selected_features"])
    dropped = set(summary["dropped_within_groups"])
    assert not dropped & set(inputs)
    predicted = runner.invoke(app, ["predict", str(out), str(data), "--out", str(tmp_path / "predicted.csv")])
    assert predicted.exit_code == 0, predicted.output
