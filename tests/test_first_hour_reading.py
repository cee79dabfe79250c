"""Reading a table as people save it: a text target with empty cells, a file from Excel on Windows, dates as
spreadsheets write them, mostly empty columns, a typo in a class label, and a column name typed nearly right.
Each was a silent wrong result (or a traceback) before; each is read right now, or is one line and exit 2."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.data.encoder import check_named_columns, columns_left_out
from glselect.data.groups import build_group_index
from glselect.data.names import closest_names, did_you_mean, edit_distance, likely_typo_of
from glselect.data.survival import check_survival_columns
from glselect.data.target import drop_missing_target
from glselect.errors import GlselectError

FAST = ["--hidden", "0", "--max-steps", "5", "--permutation-repeats", "0", "--quiet"]


def invoke(*args: object):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_user_error(result, message: str, hint: str | None = None) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {message}"
    if hint is not None:
        assert lines[1] == f"hint: {hint}"


def wide_table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"f{i}": rng.standard_normal(n) for i in range(20)})
    frame["spend"] = rng.standard_normal(n)
    frame["age"] = rng.integers(18, 80, n)
    frame["y"] = (frame["f0"] + 0.5 * rng.standard_normal(n) > 0).astype(int)
    return frame


# --- 8: did you mean -----------------------------------------------------------------------------------------


def test_closest_names_match_case_unicode_form_and_spelling():
    columns = [f"f{i}" for i in range(20)] + ["y", "spend", "age", "score", "café"]
    assert closest_names("Y", columns) == ["y"]
    assert closest_names("Spend", columns) == ["spend"]
    assert closest_names("agee", columns) == ["age"]
    assert closest_names("scor", columns) == ["score"]
    assert closest_names(unicodedata.normalize("NFD", "café"), columns) == ["café"]
    assert closest_names("zzzzzz", columns) == []
    assert did_you_mean(["agee", "scor"], columns) == "did you mean 'age' for 'agee', 'score' for 'scor'?"


def test_a_misspelt_target_suggests_the_right_name(tmp_path):
    path = tmp_path / "t.csv"
    wide_table().to_csv(path, index=False)
    result = invoke("fit", path, "--target", "Y", "--out", tmp_path / "out", *FAST)
    columns = ", ".join([f"f{i}" for i in range(20)])
    assert_user_error(result, f"target column 'Y' is not in '{path}'", f"did you mean 'y'? columns are: {columns} ...")


def test_a_misspelt_drop_suggests_the_right_name(tmp_path):
    path = tmp_path / "t.csv"
    wide_table().to_csv(path, index=False)
    result = invoke("fit", path, "--target", "y", "--drop", "agee", "--out", tmp_path / "out", *FAST)
    assert_user_error(
        result, f"column(s) 'agee' named by --features/--drop are not in '{path}'",
        "did you mean 'age'? check the spelling against the table's header",
    )


def test_every_column_name_check_of_the_data_layer_suggests():
    columns = ["spend", "age", "y", "time", "event"]
    with pytest.raises(GlselectError) as caught:
        check_named_columns(["Spend"], columns, "--categorical", "t.csv")
    assert caught.value.hint == "did you mean 'spend'? check the spelling against the table's header"
    with pytest.raises(GlselectError) as caught:
        columns_left_out(columns, "y", ("spend", "agee"), (), "t.csv")
    assert caught.value.hint.startswith("did you mean 'age'?")
    with pytest.raises(GlselectError) as caught:
        drop_missing_target(pd.DataFrame({"spend": [1.0], "y": [1]}), "Y", "t.csv")
    assert caught.value.hint == "did you mean 'y'? columns are: spend, y"
    with pytest.raises(GlselectError) as caught:
        check_survival_columns(columns, "tme", "event", None, (), "t.csv")
    assert caught.value.hint.startswith("did you mean 'time'? columns are:")
    with pytest.raises(GlselectError) as caught:
        build_group_index(["spend", "age"], {"spnd": "money"}, table_columns=columns, target="y")
    assert caught.value.hint == "did you mean 'spend'? check the spelling against the table's header"
    nfd = unicodedata.normalize("NFD", "café")
    with pytest.raises(GlselectError) as caught:
        check_named_columns([nfd], ["café", "y"], "--drop", "t.csv")
    assert caught.value.hint.startswith("did you mean 'café'?")


def test_edit_distance_and_likely_typos():
    assert edit_distance("yse", "yes") == 1 and edit_distance("kitten", "sitting") == 3
    assert likely_typo_of("yse", ["yes", "no"]) == "yes"
    assert likely_typo_of("Yes ", ["yes", "no"]) == "yes"
    assert likely_typo_of("maybe", ["yes", "no"]) is None
    assert likely_typo_of("b", ["a", "c"]) is None  # one letter from every other one-letter label: no typo
