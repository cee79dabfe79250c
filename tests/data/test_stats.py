"""Mergeable column statistics: one table gets one encoder in memory, streamed, and merged over ranks."""

from __future__ import annotations

import copy
import datetime
import decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glselect.data import encoder as encoder_module
from glselect.data import stats as stats_module
from glselect.data.encoder import ColumnRules, Encoder, build_encoder, build_encoder_from_stats, fit_encoder
from glselect.data.io import read_table
from glselect.data.parquet import open_source, row_groups_of_rank
from glselect.data.split import TRAIN, SplitSettings, split_of
from glselect.data.stats import Moments, collect_batch_stats, collect_stats, column_kinds, frame_kinds, training_part
from glselect.errors import GlselectError
from tests.conftest import assert_same_encoder

SEED, VAL_FRACTION, TEST_FRACTION = 3, 0.2, 0.2
WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]


def messy_table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Every rule at work: free text, numbers kept as text, an ID, a constant, missing cells of each kind."""
    rng = np.random.default_rng(seed)
    notes = [" ".join(rng.choice(WORDS, 10)) for _ in range(n)]
    notes[5] = notes[0]  # mostly distinct, not all: free text rather than an ID
    dose = rng.normal(size=n)
    dose[rng.random(n) < 0.1] = np.nan
    flag = pd.array(rng.random(n) < 0.3, dtype="boolean")
    flag[rng.random(n) < 0.05] = pd.NA
    colour = rng.choice(["red", "green", "blue"], size=n).astype(object)
    colour[rng.random(n) < 0.05] = None
    readings = rng.integers(0, 8, size=n).astype(str).astype(object)
    readings[rng.random(n) < 0.3] = "n/a"  # 30% words: categories, not numbers with a few bad cells
    return pd.DataFrame(
        {
            "notes": notes,
            "zip": [f"{k:05d}" for k in rng.integers(0, 40, size=n)],  # numbers as text: every value parses
            "readings": readings,
            "customer_id": [f"C{k:06d}" for k in rng.permutation(n)],
            "batch": "B1",
            "signup": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "colour": colour,
            "dose": dose,
            "flag": flag,
            "code": np.where(np.arange(n) % 7 == 0, np.nan, np.arange(n) % 4 + 1.0),  # forced to categories
            "y": np.nan_to_num(dose) + rng.normal(size=n),
        }
    )


def write_parquet(df: pd.DataFrame, path: Path, row_group_size: int = 150) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size)
    return path


def in_memory(path: Path, categorical: frozenset[str] = frozenset()) -> Encoder:
    frame = read_table(path)
    train_rows = np.flatnonzero(split_of(np.arange(len(frame)), SEED, VAL_FRACTION, TEST_FRACTION) == TRAIN)
    return fit_encoder(frame, "y", fit_rows=train_rows, rules=ColumnRules(categorical=categorical))


def streamed(path: Path, n_ranks: int = 1, categorical: frozenset[str] = frozenset()) -> Encoder:
    """The streaming fit's steps: kinds from the schema, one pass per rank, merged in rank order, then the rules."""
    source = open_source(path)
    columns = [name for name in source.columns if name != "y"]
    kinds = column_kinds(source, columns, frozenset(), categorical)
    per_rank = [
        collect_stats(row_groups_of_rank(source, rank, n_ranks), "y", columns, kinds, SplitSettings(SEED, VAL_FRACTION, TEST_FRACTION))
        for rank in range(n_ranks)
    ]
    merged = copy.deepcopy(per_rank[0])
    for other in per_rank[1:]:
        merged.merge(other)
    return build_encoder(merged, source, "y", None, ColumnRules(categorical=categorical))


def one_row_group(path: Path) -> Path:
    """The table at ``path`` rewritten as one row group (as pandas writes any table up to about a million rows)."""
    whole = path.with_name(f"whole-{path.name}")
    pq.write_table(pq.read_table(path), whole, row_group_size=1 << 20)
    assert pq.ParquetFile(whole).num_row_groups == 1
    return whole


def arrow_slices(path: Path, rows_per_slice: int, categorical: frozenset[str] = frozenset()) -> Encoder:
    """The general pass over an in-memory Arrow table cut into record batches."""
    table = pq.read_table(path)
    batches, start = [], 0
    for batch in table.to_batches(max_chunksize=rows_per_slice):
        batches.append((batch, np.arange(start, start + batch.num_rows)))
        start += batch.num_rows
    columns = [name for name in table.column_names if name != "y"]
    kinds = frame_kinds(read_table(path), columns, frozenset(), categorical)
    stats = collect_batch_stats(batches, lambda positions: split_of(positions, SEED, VAL_FRACTION, TEST_FRACTION), "y", kinds)
    return build_encoder_from_stats(stats, "y", None, 20)


@pytest.mark.parametrize(
    "fit",
    [
        pytest.param(lambda path, forced: streamed(path, 1, forced), id="row groups"),
        pytest.param(lambda path, forced: streamed(path, 2, forced), id="two ranks merged"),
        pytest.param(lambda path, forced: streamed(one_row_group(path), 3, forced), id="one row group over three ranks"),
        pytest.param(lambda path, forced: arrow_slices(path, 100, forced), id="arrow slices"),
    ],
)
def test_free_text_and_numbers_in_text_encode_alike_in_memory_and_streamed(tmp_path, fit):
    path = write_parquet(messy_table(), tmp_path / "messy.parquet")
    forced = frozenset({"code"})
    expected = in_memory(path, categorical=forced)
    kinds = {column.name: (column.kind, column.reason) for column in expected.columns}
    assert kinds["notes"] == ("ignored", "free text: long, mostly distinct values")
    assert kinds["zip"] == ("categorical", "categorical: one-hot over 21 levels, standardised (20 rare levels pooled as <other>)")
    assert kinds["readings"] == ("categorical", "categorical: one-hot over 9 levels, standardised")
    assert kinds["customer_id"] == ("ignored", "ID-like: every value is unique")
    assert kinds["batch"] == ("ignored", "constant: every value is 'B1'")
    assert_same_encoder(fit(path, forced), expected)


def _with_bad_cells(n: int = 1200) -> pd.DataFrame:
    df = messy_table(n)
    ages = [str(20 + k % 60) for k in range(n)]
    ages[760] = "unknown"  # row group 5: the second rank's share; the earliest bad cell
    ages[950] = "?"  # row group 6: the first rank's share, read first
    df["age"] = ages
    return df


@pytest.mark.parametrize(
    ("column", "change", "message"),
    [
        ("age", None, "column 'age' has 2 non-numeric values among numbers (first at data row 761: 'unknown')"),
        ("dose", (900, np.inf), "column 'dose' has non-finite values (1, first at data row 901: inf)"),
    ],
)
def test_bad_cells_are_named_alike_in_memory_and_streamed(tmp_path, column, change, message):
    df = _with_bad_cells()
    if change is not None:
        df.loc[change[0], column] = change[1]
    path = write_parquet(df, tmp_path / "bad.parquet")
    # the streamed fit knows the file, and names it too
    named = message.replace(f"column '{column}'", f"column '{column}' in '{path}'")
    for fit, expected in ((lambda: in_memory(path), message), (lambda: streamed(path, 1), named), (lambda: streamed(path, 2), named)):
        with pytest.raises(GlselectError) as caught:
            fit()
        assert str(caught.value) == expected


def test_parquet_types_give_the_same_kinds_in_memory_and_streamed(tmp_path):
    n = 40
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "day": pa.array([datetime.date(2024, 1, 1 + k % 28) for k in range(n)], pa.date32()),
            "clock": pa.array([datetime.time(k % 24) for k in range(n)], pa.time64("us")),
            "price": pa.array([decimal.Decimal(f"{k % 5}.25") for k in range(n)], pa.decimal128(6, 2)),
            "blob": pa.array([bytes([k % 3]) for k in range(n)], pa.binary()),
            "tags": pa.array([[k % 2, k % 3] for k in range(n)], pa.list_(pa.int64())),
            "shade": pa.array(["dark", "light"] * (n // 2)).dictionary_encode(),
            "ok": pa.array([True, None, False, True] * (n // 4), pa.bool_()),
            "count": pa.array([1, None, 3, 4] * (n // 4), pa.int64()),
            "nothing": pa.nulls(n),
            "y": pa.array(rng.normal(size=n)),
        }
    )
    path = tmp_path / "types.parquet"
    pq.write_table(table, path, row_group_size=15)
    expected = in_memory(path)
    assert {column.name: column.reason for column in expected.columns if column.kind == "ignored"} == {
        "day": "date/time column: not used as-is (derive numeric features from it)",
        "clock": "date/time column: not used as-is (derive numeric features from it)",
        "price": "decimal column: cast it to float64 to use it",
        "blob": "type binary is not a number, boolean or text",
        "tags": "list column: not a number, boolean or text",
        "nothing": "every value is missing",
    }
    assert_same_encoder(streamed(path, 2), expected)


def test_the_level_cap_applies_alike_even_when_every_batch_is_under_it(tmp_path, monkeypatch):
    for module in (stats_module, encoder_module):  # the pass stops counting at it, the rules name it
        monkeypatch.setattr(module, "MAX_TRACKED_LEVELS", 50)
    df = messy_table(600)
    df["station"] = [f"s{k % 80}" for k in range(600)]  # 80 levels overall, at most 50 in any row group of 50 rows
    path = write_parquet(df, tmp_path / "wide.parquet", row_group_size=50)
    expected = in_memory(path)
    assert {column.name: column.reason for column in expected.columns}["station"] == "more than 50 distinct values: an ID or free text"
    assert_same_encoder(streamed(path, 2), expected)


def test_dataframe_slices_with_mixed_objects_and_missing_targets_match_one_batch():
    df = messy_table(300)
    df["mixed"] = pd.Series([1, "a", 2.5, None, "b"] * 60, dtype=object)  # Arrow cannot hold this column
    df.loc[[3, 150, 299], "y"] = np.nan  # rows without a target are left out of every statistic
    kinds = frame_kinds(df, [name for name in df.columns if name != "y"], frozenset(), frozenset())
    slices = [(df.iloc[start : start + 64], np.arange(start, min(start + 64, len(df)))) for start in range(0, len(df), 64)]
    stats = collect_batch_stats(slices, training_part(len(df), None), "y", kinds)
    assert stats.target.n_missing == 3 and stats.columns["mixed"].n_rows == 297
    expected = fit_encoder(df.dropna(subset=["y"]).reset_index(drop=True), "y")
    assert {column.name: column.levels for column in expected.columns}["mixed"] == ("1", "2.5", "<missing>", "a", "b")
    assert_same_encoder(build_encoder_from_stats(stats, "y", None, 20), expected)


def test_moments_of_one_batch_are_numpys_and_merged_batches_agree(rng):
    values = rng.normal(3.0, 2.0, size=1001)
    whole = Moments()
    whole.add(values)
    assert (whole.n, whole.mean, np.sqrt(whole.m2 / whole.n)) == (1001, values.mean(), values.std())  # bit for bit
    merged = Moments()
    for part in np.array_split(values, 7):
        piece = Moments()
        piece.add(part)
        merged.merge(piece)
    assert merged.n == 1001
    assert merged.mean == pytest.approx(values.mean(), rel=1e-12)
    assert merged.m2 == pytest.approx(whole.m2, rel=1e-12)
