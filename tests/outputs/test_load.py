"""``glselect.load_model`` in Python: a saved model predicts a raw table as ``glselect predict`` does, and its
encoder turns the raw table into the network's inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import glselect
from glselect import GlselectError, ModelConfig, PathConfig, RunConfig, run
from glselect._synthetic import make_mixed_table
from glselect.cli.app import app
from glselect.config import ImportanceConfig, SelectionConfig
from glselect.data.encoder import encode_features, fit_encoder
from tests.conftest import make_linear_table

QUICK = {
    "model": ModelConfig(hidden=(2,)),
    "path": PathConfig(max_iters_per_lambda=5, tol=0.1, max_steps=6, relax_iters=5),
    "importance": ImportanceConfig(permutation_repeats=0),
    # the rule's step as it stands: these tests read a saved model back, whichever columns it was fitted on
    "selection": SelectionConfig(goal="minimal", confirm=0),
}


def fit(table: pd.DataFrame, folder: Path) -> Path:
    table.to_csv(folder / "data.csv", index=False)
    return run(RunConfig(table=folder / "data.csv", target="y", out=folder / "out", **QUICK)).out_dir


def cli_predictions(out_dir: Path, table: Path, written: Path) -> pd.DataFrame:
    result = CliRunner().invoke(app, ["predict", str(out_dir), str(table), "--out", str(written)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(written)


def test_a_loaded_classifier_predicts_labels_and_probabilities_as_glselect_predict_writes_them(tmp_path):
    table = make_mixed_table(120, seed=5)
    table["y"] = np.where(table["y"] > 0, "high", "low")
    loaded = glselect.load_model(fit(table, tmp_path))
    new = table.drop(columns="y").head(30)  # the raw columns, as read; no target
    new.to_csv(tmp_path / "new.csv", index=False)
    raw = pd.read_csv(tmp_path / "new.csv")
    written = cli_predictions(tmp_path / "out", tmp_path / "new.csv", tmp_path / "predictions.csv")

    labels = loaded.predict(raw)
    assert labels.tolist() == written["prediction"].tolist()
    assert set(labels) <= {"high", "low"}
    probabilities = loaded.predict_proba(raw)
    assert probabilities.shape == (30, 2)
    np.testing.assert_allclose(probabilities, written[["probability_high", "probability_low"]].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.asarray(loaded.encoder.target.classes, dtype=object)[probabilities.argmax(axis=1)].tolist() == labels.tolist()
    pd.testing.assert_frame_equal(loaded.predict_table(raw), written, check_exact=False, rtol=1e-12)


def test_a_loaded_regression_predicts_values_in_the_targets_units(tmp_path):
    table = make_linear_table()
    loaded = glselect.load_model(fit(table, tmp_path))
    new = table.drop(columns="y").head(40)
    new.to_csv(tmp_path / "new.csv", index=False)
    written = cli_predictions(tmp_path / "out", tmp_path / "new.csv", tmp_path / "predictions.csv")
    values = loaded.predict(new)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, written["prediction"].to_numpy(), rtol=1e-12)
    # the model learnt the target: its predictions follow it (not a constant, not in standardised units)
    assert np.corrcoef(values, table["y"].head(40))[0, 1] > 0.8
    assert abs(values.mean() - table["y"].head(40).mean()) < table["y"].std()
    with pytest.raises(GlselectError, match="predict_proba needs a classification model; this one was fitted for regression"):
        loaded.predict_proba(new)


def test_the_encoder_turns_a_raw_table_into_the_inputs_a_model_reads():
    frame = pd.DataFrame(
        {
            "a": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
            "colour": ["red", "blue", "red", "green", "blue", "red"],
            "y": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3],
        }
    )
    encoder = fit_encoder(frame, "y")
    raw = frame.drop(columns="y")  # no target needed
    X = encoder.transform(raw)
    assert X.dtype == np.float32 and X.shape == (6, len(encoder.feature_names))
    np.testing.assert_array_equal(X, encode_features(encoder, frame))
    # a model that reads some encoded columns only (the sparse group lasso), in its own order
    inputs = ("colour=red", "a")
    np.testing.assert_array_equal(encoder.transform(raw, inputs), X[:, [encoder.feature_names.index(name) for name in inputs]])
    # an unseen level is encoded as in training, not an error
    assert encoder.transform(raw.assign(colour=["purple"] * 6)).shape == X.shape
    with pytest.raises(GlselectError) as raised:
        encoder.transform(raw.assign(a=["1", "2", "x", "4", "5", "6"]))
    assert str(raised.value) == "column 'a' was numeric when the model was fitted, but data row 3 holds 'x' (1 unreadable cell in all)"
    with pytest.raises(GlselectError, match=r"^the table lacks column\(s\) the model was fitted on: 'colour'$"):
        encoder.transform(raw.drop(columns="colour"))
    with pytest.raises(GlselectError, match=r"^the encoding has no input\(s\) 'b'$"):
        encoder.transform(raw, ("a", "b"))
