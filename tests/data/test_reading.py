"""Tables a new user brings, read as they meant them or refused in one line (issue 16), and the
reading report every fit writes: column kinds, ignored columns, dropped rows, warnings (printed by a fit:
tests/cli/test_reading_report.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from glselect import distributed
from glselect.config import DataConfig, RunConfig, StreamConfig
from glselect.data.encoder import ColumnRules, fit_encoder
from glselect.data.io import read_table
from glselect.data.source import require_rows
from glselect.data.stream import StreamData, choose_batch_size, few_steps_warning
from glselect.errors import GlselectError
from glselect.options import parse_separator
from tests.conftest import numbers_table, report_table

# ----- numbers written as text -----------------------------------------------------------------------------


def test_numbers_with_thousands_separators_are_read_as_numbers(tmp_path):
    df = numbers_table()
    amounts = df["a"] * 3000 + 5000  # most above 1,000: written "5,125.73" (quoted) by a spreadsheet export
    df["a"] = [f"{value:,.2f}" for value in amounts]
    df.loc[3, "a"] = ""  # an empty cell is missing, not text
    df["code"] = ["1,5" if i % 2 else "2,25" for i in range(len(df))]  # not a thousands pattern: stays text
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table = read_table(path)
    assert table["a"].dtype == np.float64
    assert np.isnan(table["a"][3])
    expected = np.round(amounts, 2).drop(index=3)
    np.testing.assert_allclose(table["a"].drop(index=3), expected)
    assert not pd.api.types.is_numeric_dtype(table["code"])
    encoder = fit_encoder(table, "y")
    assert {column.name: column.kind for column in encoder.columns}["a"] == "numeric"


def test_numbers_mixed_with_text_are_refused_by_name():
    df = numbers_table()
    df["a"] = [f"{value:.3f}" if i % 3 else "unknown" for i, value in enumerate(df["a"])]  # 2/3 numbers
    with pytest.raises(
        GlselectError,
        match=r"^column 'a' mixes numbers and text: 200 of 300 values are numbers, 100 are not "
        r"\(first at data row 1: 'unknown'\)$",
    ) as raised:
        fit_encoder(df, "y")
    assert "--categorical 'a'" in raised.value.hint
    # the same column as categories is what the user asked for
    assert fit_encoder(df, "y", rules=ColumnRules(categorical=frozenset({"a"}))).columns[0].kind == "categorical"


def test_a_few_number_labels_beside_text_labels_stay_categories():
    df = numbers_table()
    df["children"] = [["0", "1", "2", "3+"][i % 4] for i in range(len(df))]  # 3 of 4 labels are numbers
    encoder = fit_encoder(df, "y")
    children = next(column for column in encoder.columns if column.name == "children")
    assert children.kind == "categorical" and children.levels == ("0", "1", "2", "3+")


def test_a_column_of_infinities_is_an_error_like_one_infinite_cell():
    df = numbers_table()
    df["c"] = np.inf
    with pytest.raises(GlselectError, match=r"^column 'c' has non-finite values \(300, first at data row 1: inf\)$"):
        fit_encoder(df, "y")
    df["c"] = 1.0
    df.loc[7, "c"] = -np.inf
    with pytest.raises(GlselectError, match=r"^column 'c' has non-finite values \(1, first at data row 8: -inf\)$"):
        fit_encoder(df, "y")


# ----- targets that cannot be learned ------------------------------------------------------------------------


def test_a_target_with_a_label_per_row_is_refused():
    df = numbers_table()
    df["y"] = [f"label{i}" for i in range(len(df))]
    with pytest.raises(GlselectError, match=r"^target column 'y' has 300 classes in 300 rows: a class label must repeat"):
        fit_encoder(df, "y")


def test_a_class_with_one_row_is_refused_by_name():
    df = numbers_table()
    df["y"] = np.where(np.arange(len(df)) == 5, "rare", "common")
    with pytest.raises(GlselectError, match=r"^target column 'y' has a class with a single row \('rare'\)"):
        fit_encoder(df, "y")
    df.loc[6, "y"] = "rare"  # two rows: one to learn from, one to score
    assert fit_encoder(df, "y").target.classes == ("common", "rare")


def test_few_whole_numbers_that_never_repeat_are_a_regression_target():
    df = pd.DataFrame({"a": np.arange(8.0), "y": [3, 1, 4, 15, 9, 2, 6, 5]})  # would be 8 classes of one row
    assert fit_encoder(df, "y").target.task == "regression"


# ----- files ---------------------------------------------------------------------------------------------


def test_a_semicolon_separated_csv_gets_a_delimiter_hint(tmp_path):
    path = tmp_path / "semi.csv"
    numbers_table(30).to_csv(path, index=False, sep=";")
    with pytest.raises(GlselectError, match=r"^table '.*semi.csv' was read as a single column named 'a;b;c;y'$") as raised:
        read_table(path)
    assert raised.value.hint == (
        "the header looks separated by semicolons: pass --sep ';' (and --decimal ',' if numbers are written with decimal commas)"
    )
    # with decimal commas the rows split into more fields than the header: the same hint
    path.write_text("a;b;y\n1,5;2;3\n2,5;3;4\n")
    with pytest.raises(GlselectError, match="cannot read table") as raised:
        read_table(path)
    assert raised.value.hint.startswith("the header looks separated by semicolons: pass --sep ';' (and --decimal ','")
    # a comma-separated file read with --sep ';' names the commas
    numbers_table(30).to_csv(path, index=False)
    with pytest.raises(GlselectError, match="read as a single column") as raised:
        read_table(path, sep=";")
    assert raised.value.hint == "the header looks separated by commas: pass --sep ','"


def semicolon_decimal_comma_csv(path: Path, n: int = 300) -> pd.DataFrame:
    """``numbers_table`` as a German or French spreadsheet saves it: ';' between fields, ',' as the decimal mark,
    and a quoted column with '.' between thousands ("5.125,73")."""
    df = numbers_table(n)
    df["big"] = (df["c"] * 3000 + 5000).round(2)

    def comma(value: float) -> str:
        return f"{value:.6f}".replace(".", ",")

    def thousands(value: float) -> str:
        return '"' + f"{value:,.2f}".translate(str.maketrans(",.", ".,")) + '"'

    rows = [";".join([*map(comma, row[:-1]), thousands(row[-1])]) for row in df.itertuples(index=False)]
    path.write_text("\n".join([";".join(df.columns), *rows]) + "\n")
    return df


def test_sep_and_decimal_read_a_semicolon_file_with_decimal_commas(tmp_path):
    path = tmp_path / "de.csv"
    df = semicolon_decimal_comma_csv(path)
    table = read_table(path, sep=";", decimal=",")
    assert list(table.columns) == ["a", "b", "c", "y", "big"]
    assert all(table[name].dtype == np.float64 for name in table.columns)
    np.testing.assert_allclose(table[["a", "b", "c", "y"]], df[["a", "b", "c", "y"]], atol=1e-6)
    np.testing.assert_allclose(table["big"], df["big"].round(2), atol=1e-9)
    # a fit's opener honours the options, in memory and streamed (as every torchrun rank reads a CSV)
    from glselect.data.open import open_dataset

    config = RunConfig(table=path, target="y", data=DataConfig(sep=";", decimal=","), out=tmp_path / "out")
    in_memory = open_dataset(config, torch.device("cpu"), distributed.SINGLE)
    streamed = StreamData.open(config, torch.device("cpu"), distributed.SINGLE)
    for data in (in_memory, streamed):
        assert {column.name: column.kind for column in data.encoder.columns} == dict.fromkeys(["a", "b", "c", "big"], "numeric")
    assert streamed.n_rows_by_part == in_memory.n_rows_by_part


def test_a_tab_and_a_decimal_mark_that_is_the_separator():
    assert parse_separator("\\t") == parse_separator("tab") == "\t"
    assert DataConfig(sep="\t", decimal=",").decimal == ","
    with pytest.raises(GlselectError, match="the decimal mark ',' cannot also be the field separator"):
        DataConfig(sep=",", decimal=",")
    with pytest.raises(GlselectError, match="sep must be one character"):
        DataConfig(sep=";;")


def test_a_ragged_csv_line_is_named_by_its_number(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text('a,b,y\n1,2,3\n"x\ny",5,6\n\n4,5\n6,7,8\n')  # a quoted value over two lines, a blank line
    with pytest.raises(GlselectError) as raised:
        read_table(path)
    assert str(raised.value) == f"cannot read table '{path}': line 6 has 2 fields but the header has 3"
    assert raised.value.hint == (
        "give every line one value per column (an empty one for a missing cell), and quote values that hold the separator ','"
    )


def test_one_usable_row_is_one_row():
    with pytest.raises(GlselectError) as raised:
        require_rows(1)
    assert str(raised.value) == "the table has 1 usable row; glselect needs at least 20"
    with pytest.raises(GlselectError) as raised:
        require_rows(2, 3)
    assert str(raised.value) == "the table has 2 usable rows; glselect needs at least 3"


# ----- streaming: enough optimiser steps ----------------------------------------------------------------------


def test_the_streamed_batch_size_gives_an_epoch_enough_steps():
    assert choose_batch_size(None, 1_000_000) == 1024
    assert choose_batch_size(None, 1_400) == 44  # 32 steps a pass
    assert choose_batch_size(None, 300) == 32  # never fewer rows than 32 a step
    assert choose_batch_size(500, 1_400) == 500  # --batch-size is obeyed
    assert few_steps_warning(1_400, 44, 5.0) is None
    assert few_steps_warning(1_400, 1024, 5.0).startswith("the streamed fit makes about 10 optimiser steps")


def test_the_streamed_speed_is_printed_with_the_metrics():
    from glselect.outputs.report import metrics_lines

    summary = {
        "metrics": {"dense": {"r2": 0.9}, "pruned": {"r2": 0.8}},
        "sizes": {"columns": 5, "groups": 5, "test_rows": 40},
        "n_selected_features": 2,
        "n_selected_groups": 2,
        "rule": "min",
        "lambda": 0.1,
    }
    assert not any(line.startswith("streamed") for line in metrics_lines(summary))  # in memory: no epochs to time
    summary["streaming"] = {
        "epochs_timed": 3,
        "rows_per_second_per_epoch": {"median": 12345, "min": 1000, "max": 20000},
        "test_rows_scored": 40,
    }
    assert metrics_lines(summary)[-1] == "streamed 12,345 rows/s per epoch (median of 3 whole epochs, 1,000 to 20,000)"


def test_the_groups_confirmation_left_out_are_printed_with_how_they_were_tested():
    from glselect.outputs.report import metrics_lines

    summary = {
        "metrics": {"dense": {"r2": 0.9}, "pruned": {"r2": 0.8}},
        "sizes": {"columns": 5, "groups": 5, "test_rows": 40},
        "n_selected_features": 2,
        "n_selected_groups": 2,
        "rule": "1se",
        "lambda": 0.1,
        "unconfirmed_groups": ["n1"],
    }
    for confirmed_by, tested in [
        ("validation", "the refit's validation loss"),
        ("cross-fit5", "the held-out loss of 5 cross-fitted refits"),
    ]:
        lines = metrics_lines({**summary, "confirmed_by": confirmed_by})
        assert f"left out of the chosen step: n1 (shuffling it did not raise {tested} enough; see --confirm)" in lines


# ----- the reading report ------------------------------------------------------------------------------------


def test_the_reading_report_is_the_same_in_memory_and_streamed(tmp_path):
    df = report_table()
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    df.to_csv(csv, index=False)
    pq.write_table(
        pa.Table.from_pandas(read_table(csv), preserve_index=False), parquet, row_group_size=60
    )  # four row groups: the statistics merge
    device = torch.device("cpu")

    def config(table: Path, **stream) -> RunConfig:
        return RunConfig(table=table, target="y", stream=StreamConfig(**stream), out=tmp_path / "out")

    from glselect.pipeline import open_dataset

    in_memory = open_dataset(config(csv), device, distributed.SINGLE).reading.to_dict()
    streamed = StreamData.open(config(parquet, stream=True), device, distributed.SINGLE).reading.to_dict()
    assert in_memory["rows"] == 237 and in_memory["rows_dropped_missing_target"] == 3
    assert in_memory["kinds"] == {"numeric": 4, "ignored": 1, "categorical": 1}
    assert in_memory["ignored"] == {"note": "constant: every value is 'same'"}
    assert len(in_memory["warnings"]) == 1 and in_memory["warnings"][0].startswith("column(s) 'row_id' look like integer IDs")
    # streamed, 237 rows make fewer than 100 steps of 32 in 5 epochs: one more warning
    assert streamed["warnings"][:1] == in_memory["warnings"]
    assert streamed["warnings"][1].startswith("the streamed fit makes about")
    assert {key: value for key, value in streamed.items() if key != "warnings"} == {
        key: value for key, value in in_memory.items() if key != "warnings"
    }


# ----- the streamed epoch's background reader -----------------------------------------------------------------


def test_the_background_reader_keeps_order_raises_errors_and_stops_with_its_reader():
    import threading

    from glselect.data.prefetch import prefetched

    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))
    produced = []

    def counting():
        for item in range(1_000):
            produced.append(item)
            yield item

    reader = prefetched(counting(), depth=2)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()  # the solver stopped mid-epoch: the producer stops a bounded number of items ahead
    assert len(produced) <= 3 + 2 + 2
    assert not any(thread.name == "glselect-reader" for thread in threading.enumerate())

    def failing():
        yield 1
        raise GlselectError("cannot read 'part-7.parquet': truncated")

    with pytest.raises(GlselectError, match="truncated"):
        list(prefetched(failing()))
