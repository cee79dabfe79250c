import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glselect.data.io import format_group_map, parse_group_map, read_group_map, read_table
from glselect.errors import GlselectError

names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12).map(str.strip).filter(bool)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(names, names, max_size=8))
def test_group_map_round_trips(mapping):
    if not mapping:
        return  # an empty map has nothing to round-trip: parse refuses it (tested below)
    assert parse_group_map(format_group_map(mapping)) == mapping


def test_csv_and_parquet_read_the_same_table(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5, None], "b": ["x", "y", "x"], "y": [1, 0, 1]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv, from_parquet = read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet")
    assert list(from_csv.columns) == list(from_parquet.columns) == ["a", "b", "y"]
    assert from_csv["a"].isna().tolist() == [False, False, True]
    pd.testing.assert_series_equal(from_csv["a"], from_parquet["a"])


def test_tsv_is_read_by_suffix(tmp_path):
    (tmp_path / "t.tsv").write_text("a\ty\n1\t2\n")
    assert read_table(tmp_path / "t.tsv").columns.tolist() == ["a", "y"]


def test_directory_is_not_a_table(tmp_path):
    with pytest.raises(GlselectError, match="is a directory"):
        read_table(tmp_path)


def test_group_map_tolerates_blank_lines_and_spaces(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("feature, group\n\n a , first\nb,first\n")
    assert read_group_map(path) == {"a": "first", "b": "first"}


def test_missing_group_map_file(tmp_path):
    with pytest.raises(GlselectError, match=r"group map file '.*nope.csv' does not exist"):
        read_group_map(tmp_path / "nope.csv")
