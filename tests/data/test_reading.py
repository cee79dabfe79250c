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
from glselect.config import RunConfig, StreamConfig
from glselect.data.encoder import fit_encoder
from glselect.data.io import read_table
from glselect.data.stream import StreamData, choose_batch_size, few_steps_warning
from glselect.errors import GlselectError
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
    assert fit_encoder(df, "y", categorical=frozenset({"a"})).columns[0].kind == "categorical"


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
    assert "separated by semicolons" in raised.value.hint and "sep=';'" in raised.value.hint
    # with decimal commas the rows split into more fields than the header: the same hint
    path.write_text("a;b;y\n1,5;2;3\n2,5;3;4\n")
    with pytest.raises(GlselectError, match="cannot read table") as raised:
        read_table(path)
    assert "separated by semicolons" in raised.value.hint and "decimal=','" in raised.value.hint


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
