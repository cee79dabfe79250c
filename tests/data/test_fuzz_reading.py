"""Property-based test of reading a CSV file as spreadsheets write them: encodings (UTF-8 with and without a
byte order mark, Windows-1252), delimiters, decimal commas, dates in several formats, empty and NA target
cells, Excel's trailing empty rows and ragged rows. Every draw either reads with the right column kinds and
the right target (rows with a missing target dropped, the classes unchanged) or raises ``GlselectError`` with
one line: never another exception, never a silently changed target.

It reads and encodes (``read_table``, ``drop_missing_target``, ``fit_encoder_and_stats``); it does not fit.
The suite draws ``GLSELECT_FUZZ_EXAMPLES`` tables (default 30); for a longer search run e.g.

    GLSELECT_FUZZ_EXAMPLES=2000 python -m pytest tests/data/test_fuzz_reading.py -q -p no:cacheprovider
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glselect.data.encoder import fit_encoder_and_stats
from glselect.data.io import read_table
from glselect.data.stats import DATE_TIME
from glselect.data.target import drop_missing_target
from glselect.errors import GlselectError

EXAMPLES = int(os.environ.get("GLSELECT_FUZZ_EXAMPLES", "30"))
MISSING_CELLS = ("", "NA", "N/A", "NULL")
LABELS = (("yes", "no"), ("oui", "non", "été"), ("Zürich", "Genève"))
LEVELS = ("red", "grün", "Île", "blue sky")
DATE_FORMATS = {
    "iso": "%Y-%m-%d",
    "mdy": "%m/%d/%Y",
    "dmy": "%d/%m/%Y",
    "dmy_dots": "%d.%m.%Y",
    "mdy_time": "%m/%d/%Y %H:%M",
    "iso_time": "%Y-%m-%d %H:%M:%S",
}


@st.composite
def tables(draw):
    n = draw(st.integers(3, 30))
    labels = draw(st.sampled_from(LABELS))
    target = [draw(st.sampled_from(labels)) for _ in range(n)]
    missing_target = [draw(st.booleans()) and draw(st.integers(0, 3)) == 0 for _ in range(n)]
    target_cells = [draw(st.sampled_from(MISSING_CELLS)) if gone else label for label, gone in zip(target, missing_target)]
    amounts = [round(draw(st.floats(-1e4, 1e4, allow_nan=False)), 3) for _ in range(n)]
    counts = [draw(st.one_of(st.integers(-50, 50).map(str), st.just(""))) for _ in range(n)]
    levels = [draw(st.sampled_from(LEVELS)) for _ in range(n)]
    date_format = draw(st.sampled_from(sorted(DATE_FORMATS)))
    start = datetime(2020, 1, 1) + timedelta(days=draw(st.integers(0, 2000)))
    dates = [
        (start + timedelta(days=draw(st.integers(0, 400)), hours=draw(st.integers(0, 23)), minutes=draw(st.integers(0, 59)))).strftime(
            DATE_FORMATS[date_format]
        )
        for _ in range(n)
    ]
    return {
        "target": target,
        "missing_target": missing_target,
        "target_cells": target_cells,
        "amounts": amounts,
        "counts": counts,
        "levels": levels,
        "dates": dates,
        "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])),
        "delimiter": draw(st.sampled_from([",", "\t", ";"])),
        "decimal_comma": draw(st.booleans()),
        "trailing_empty": draw(st.integers(0, 3)),
        "ragged": draw(st.integers(0, 6)) == 0,
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
    }


def write(case: dict, folder: Path) -> tuple[Path, str]:
    delimiter = case["delimiter"]
    decimal_comma = case["decimal_comma"] and delimiter == ";"  # decimal commas come with semicolon files
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=case["newline"])
    writer.writerow(["amount", "count", "colour", "when", "y"])
    for i in range(len(case["target"])):
        amount = repr(case["amounts"][i]).replace(".", ",") if decimal_comma else repr(case["amounts"][i])
        row = [amount, case["counts"][i], case["levels"][i], case["dates"][i], case["target_cells"][i]]
        if case["ragged"] and i == len(case["target"]) // 2:
            row.append("extra")
        writer.writerow(row)
    text = buffer.getvalue() + (delimiter * 4 + case["newline"]) * case["trailing_empty"]
    path = folder / ("table.tsv" if delimiter == "\t" else "table.csv")
    path.write_bytes(text.encode(case["encoding"]))
    return path, text


def read_or_refuse(read):
    """``(what read() returns, None)``, or ``(None, the message)`` when it raises GlselectError: either is an answer."""
    try:
        return read(), None
    except GlselectError as err:
        return None, str(err)


def check(case: dict, path: Path, text: str) -> None:
    frame, refusal = read_or_refuse(lambda: read_table(path))
    if refusal is not None:
        assert "\n" not in refusal
        # only a ragged row or a semicolon file (read as one column, or split wrong) is refused
        assert case["ragged"] or case["delimiter"] == ";", refusal
        return
    assert not case["ragged"], "a ragged row was read"
    assert list(frame.columns) == ["amount", "count", "colour", "when", "y"]
    assert len(frame) == len(case["target"])  # the trailing empty rows are gone, no other row
    assert pd.api.types.is_float_dtype(frame["amount"])
    assert pd.api.types.is_numeric_dtype(frame["count"]) or frame["count"].isna().all()
    assert frame["colour"].tolist() == case["levels"]
    assert pd.api.types.is_datetime64_any_dtype(frame["when"]), frame["when"].head().tolist()
    expected_encoding = "cp1252" if case["encoding"] == "cp1252" and not text.isascii() else "utf-8"
    assert frame.attrs.get("glselect.reading", {}).get("encoding", "utf-8") == expected_encoding
    table, n_dropped = drop_missing_target(frame, "y", str(path))
    assert n_dropped == sum(case["missing_target"])
    assert table["y"].tolist() == [label for label, gone in zip(case["target"], case["missing_target"]) if not gone]
    fitted, refusal = read_or_refuse(lambda: fit_encoder_and_stats(table, "y"))
    if refusal is not None:
        assert "\n" not in refusal
        return
    encoder, _ = fitted
    assert set(encoder.target.classes) == set(table["y"])
    kinds = {column.name: column for column in encoder.columns}
    assert kinds["when"].kind == "ignored" and kinds["when"].reason in (DATE_TIME, "every value is missing")
    assert kinds["amount"].kind in ("numeric", "ignored")
    assert kinds["colour"].kind in ("categorical", "ignored")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_reading_a_spreadsheet_csv_reads_right_or_fails_in_one_line(case):
    with tempfile.TemporaryDirectory() as folder:
        check(case, *write(case, Path(folder)))
