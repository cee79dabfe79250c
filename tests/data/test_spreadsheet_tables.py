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


def test_a_misspelt_target_of_a_streamed_fit_suggests_the_right_name(tmp_path):
    path = tmp_path / "t.parquet"
    wide_table().to_parquet(path, index=False)
    result = invoke("fit", path, "--target", "Y", "--stream", "--out", tmp_path / "out", *FAST)
    columns = ", ".join([f"f{i}" for i in range(20)])
    assert_user_error(result, f"target column 'Y' is not in '{path}'", f"did you mean 'y'? columns are: {columns} ...")


def test_a_misspelt_drop_suggests_the_right_name(tmp_path):
    path = tmp_path / "t.csv"
    wide_table().to_csv(path, index=False)
    result = invoke("fit", path, "--target", "y", "--drop", "agee", "--out", tmp_path / "out", *FAST)
    assert_user_error(
        result,
        f"column(s) 'agee' named by --features/--drop are not in '{path}'",
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


# --- the file as spreadsheets save it ------------------------------------------------------------------------


def binary_table(n: int = 240, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.standard_normal(n), "score": rng.standard_normal(n), "noise": rng.standard_normal(n)})
    frame["y"] = np.where(frame["income"] + frame["score"] + 0.5 * rng.standard_normal(n) > 0, "yes", "no")
    return frame


def fit_summary(tmp_path: Path, path: Path, *args: object) -> tuple[dict, object]:
    result = invoke("fit", path, "--target", "y", "--out", tmp_path / "out", "--force", *FAST[:-1], *args)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "out" / "summary.json").read_text()), result


def test_empty_and_na_cells_of_a_text_target_are_missing_and_excel_trailing_rows_are_dropped(tmp_path):
    """yes/no with 30 empty cells, one 'NA' and Excel's ',,,' rows: a binary target of the other rows, as a
    numeric target would be (it was multiclass ['', 'no', 'yes'], and the empty rows made 'income[missing]')."""
    frame = binary_table()
    frame["y"] = frame["y"].astype(object)
    frame.loc[10:39, "y"] = ""
    frame.loc[50, "y"] = "NA"
    path = tmp_path / "t.csv"
    path.write_text(frame.to_csv(index=False) + ",,,\n" * 4)
    summary, result = fit_summary(tmp_path, path)
    assert summary["task"] == "binary"
    assert summary["sizes"]["rows_dropped_missing_target"] == 31
    assert summary["reading"]["rows_dropped_missing_target"] == 31
    assert summary["reading"]["trailing_empty_rows_dropped"] == 4
    assert summary["reading"]["kinds"] == {"numeric": 3}
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model["encoder"]["target"]["classes"] == ["no", "yes"]
    assert not any("[missing]" in column for column in (tmp_path / "out" / "importances.csv").read_text().split())
    assert "dropped 4 empty rows at the end of the file" in result.stderr
    assert "dropped 31 rows with a missing target" in result.stderr


def test_an_empty_text_cell_is_missing_when_read():
    from glselect.data.io import read_table

    path = Path(__file__).parent / "_empty_text_cells.csv"
    try:
        path.write_text("a,b\n1,x\n2,\n3,NA\n")
        frame = read_table(path)
    finally:
        path.unlink()
    assert frame["b"].tolist()[0] == "x" and frame["b"].isna().tolist() == [False, True, True]


def test_a_windows_1252_csv_with_accented_headers_and_cells_is_read(tmp_path):
    """Excel on Windows saves cp1252: it was a UnicodeDecodeError traceback (accented header) or a column
    dropped as 'type binary' (accented cells)."""
    frame = binary_table()
    frame = frame.rename(columns={"income": "revenu_é"})
    frame["région"] = np.where(
        np.arange(len(frame)) % 3 == 0, "Île-de-France", np.where(np.arange(len(frame)) % 3 == 1, "Rhône", "Bretagne")
    )
    path = tmp_path / "excel.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    summary, result = fit_summary(tmp_path, path)
    assert summary["reading"]["encoding"] == "cp1252"
    assert summary["reading"]["kinds"] == {"numeric": 3, "categorical": 1}
    assert "read the file as Windows-1252 (cp1252) text: it is not UTF-8" in result.stderr
    assert list(summary["columns"]) == ["revenu_é", "score", "noise", "région"]
    assert summary["columns"]["région"]["treatment"] == "categorical: one-hot over 3 levels, standardised"
    from glselect.data.io import read_table

    assert sorted(read_table(path)["région"].unique()) == ["Bretagne", "Rhône", "Île-de-France"]


def test_a_utf8_csv_with_a_byte_order_mark_reads_its_first_name_clean(tmp_path):
    from glselect.data.io import read_table

    path = tmp_path / "bom.csv"
    path.write_bytes(binary_table().to_csv(index=False).encode("utf-8-sig"))
    frame = read_table(path)
    assert list(frame.columns) == ["income", "score", "noise", "y"] and frame.attrs == {}


def test_a_file_no_encoding_decodes_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"a,y\n1,\x81\x8d\n2,no\n")
    result = invoke("fit", path, "--target", "y", "--out", tmp_path / "out", *FAST)
    assert_user_error(
        result,
        f"cannot read table '{path}': it is not text in UTF-8 or Windows-1252 (byte 7 of the file, 0x81, is neither)",
        "save the file as UTF-8 (in Excel: Save As, 'CSV UTF-8'), or convert it, e.g. iconv -f ENCODING -t UTF-8",
    )


def test_spreadsheet_dates_are_dates_as_iso_dates_are(tmp_path):
    """mm/dd/yyyy dates that repeat were one-hot encoded, unique dd/mm/yyyy dates ignored as 'ID-like': both
    are ignored as date columns now, as the ISO dates in the same file are."""
    frame = binary_table()
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.arange(len(frame)) // 20, unit="D")  # each day 20 times
    frame["visit_us"] = days.strftime("%m/%d/%Y")
    frame["born_eu"] = (pd.Timestamp("1990-01-01") + pd.to_timedelta(np.arange(len(frame)), unit="D")).strftime("%d/%m/%Y")
    frame["seen_iso"] = days.strftime("%Y-%m-%d")
    frame["stamp"] = (pd.Timestamp("2023-03-01 08:00") + pd.to_timedelta(np.arange(len(frame)), unit="h")).strftime("%m/%d/%Y %H:%M")
    path = tmp_path / "dates.csv"
    frame.to_csv(path, index=False)
    summary, result = fit_summary(tmp_path, path)
    reason = "date/time column: not used as-is (derive numeric features from it)"
    assert summary["reading"]["ignored"] == {"visit_us": reason, "born_eu": reason, "seen_iso": reason, "stamp": reason}
    assert summary["reading"]["dates"] == {"visit_us": "mm/dd/yyyy", "born_eu": "dd/mm/yyyy", "stamp": "mm/dd/yyyy hh:mm"}
    assert "read as dates: 'visit_us' (mm/dd/yyyy), 'born_eu' (dd/mm/yyyy), 'stamp' (mm/dd/yyyy hh:mm)" in result.stderr


def test_what_is_not_a_date_stays_text():
    import pyarrow as pa

    from glselect.data.io import spreadsheet_dates

    table = pa.table(
        {
            "impossible": ["02/30/2024", "01/01/2024"],  # no 30th of February
            "both_over_12": ["13/01/2024", "01/13/2024"],  # neither order reads every value
            "code": ["12/34/5678", "01/02/2024"],
            "ambiguous": ["01/02/2024", None],  # every part 12 or less: read month first
        }
    )
    converted, formats = spreadsheet_dates(table)
    assert formats == {"ambiguous": "mm/dd/yyyy"}
    assert converted.column("ambiguous").to_pylist()[0] == pd.Timestamp("2024-01-02").to_pydatetime()
    assert converted.column("ambiguous").null_count == 1


# --- warnings ------------------------------------------------------------------------------------------------


def test_a_mostly_empty_column_is_warned_about_by_name_and_share(tmp_path):
    """A column 99% empty got no warning and ranked 5th."""
    frame = binary_table(n=300)
    frame["notes_amount"] = np.where(np.arange(300) < 3, 1.0, np.nan)
    frame["half"] = np.where(np.arange(300) % 2 == 0, 1.0, np.nan)  # 50% missing: no warning
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    summary, result = fit_summary(tmp_path, path, "--quiet")
    warning = (
        "mostly empty column(s): 'notes_amount' (99% missing): what they add rests on the few rows that have a value, "
        "and on which rows are empty; fill them in, or pass --drop for any that should not be used"
    )
    assert f"warning: {warning}" in result.stderr.replace("\n", " ")
    assert warning in summary["reading"]["warnings"]
    assert summary["reading"]["mostly_empty"] == {"notes_amount": 0.99}


def test_a_one_row_typo_class_is_named_with_the_class_it_misspells(tmp_path):
    """'yse' in a yes/no target made it multiclass with only a small-class warning; the data stays as it is."""
    frame = binary_table()
    frame.loc[7, "y"] = "yse"
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    summary, result = fit_summary(tmp_path, path, "--quiet")
    warning = (
        "target 'y': 'yse' (1 row) looks like a typo of 'yes', and makes the target multiclass (3 classes instead of 2); "
        "correct the label in the file, or drop its rows"
    )
    assert summary["reading"]["warnings"] == [warning]
    assert f"warning: {warning}" in result.stderr.replace("\n", " ")
    assert summary["task"] == "multiclass"  # not silently changed
