"""Messy real tables: each column kind, free text, booleans with missing cells, --max-levels, and integer labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glselect._synthetic import make_mixed_table
from glselect.data.encoder import ColumnRules, encode_features, fit_encoder


def kinds(df: pd.DataFrame, **options) -> dict[str, tuple[str, str]]:
    encoder = fit_encoder(df, "y", rules=ColumnRules(**options))
    return {column.name: (column.kind, column.reason) for column in encoder.columns}


def test_each_column_kind_of_a_mixed_table():
    found = kinds(make_mixed_table(600))
    assert found["customer_id"] == ("ignored", "ID-like: every value is unique")
    assert found["signup"][0] == "ignored" and found["signup"][1].startswith("date/time column")
    assert found["colour"] == ("categorical", "categorical: one-hot over 4 levels, standardised")
    assert found["city"] == ("categorical", "categorical: one-hot over 21 levels, standardised (20 rare levels pooled as <other>)")
    assert found["dose"] == ("numeric", "numeric: standardised")
    assert found["noise"] == ("numeric", "numeric: standardised; missing cells imputed with the mean and flagged")
    assert found["flag"] == ("boolean", "boolean: 0/1, standardised; missing cells set to 0 and flagged")
    assert found["batch"] == ("ignored", "constant: every value is 'B1'")


def test_free_text_is_not_one_hot_encoded():
    rng = np.random.default_rng(0)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"]
    notes = [" ".join(rng.choice(words, 12)) for _ in range(30)]
    notes[1] = notes[0]  # not all unique, so not an ID
    df = pd.DataFrame({"notes": notes, "x": rng.normal(size=30), "y": rng.normal(size=30)})
    assert kinds(df)["notes"] == ("ignored", "free text: long, mostly distinct values")


def test_booleans_with_missing_cells_encode_to_value_and_flag():
    df = pd.DataFrame({"ok": pd.array([True, None, False, True], dtype="boolean"), "y": [1.0, 2.0, 3.0, 4.0]})
    encoder = fit_encoder(df, "y")
    assert encoder.feature_names == ["ok", "ok[missing]"]
    raw = encode_features(encoder, df) * np.array(encoder.columns[0].scales) + np.array(encoder.columns[0].centers)
    assert raw == pytest.approx(np.array([[1, 0], [0, 1], [0, 0], [1, 0]]), abs=1e-6)


def test_max_levels_and_forced_categorical():
    df = pd.DataFrame({"grade": [1, 2, 3, 1, 2, 3, 4, 4], "y": np.arange(8.0)})
    assert kinds(df)["grade"][0] == "numeric"
    assert kinds(df, categorical=frozenset({"grade"}), max_levels=2)["grade"] == (
        "categorical",
        "categorical: one-hot over 3 levels, standardised (2 rare levels pooled as <other>)",
    )


def test_integer_labels_with_missing_cells_are_still_classes():
    from glselect.data.target import detect_task

    assert detect_task(pd.Series([1.0, 2.0, 3.0, 2.0, 1.0], name="grade")) == "multiclass"
