import numpy as np
import pandas as pd
import pytest

from glselect.data.encoder import Encoder, encode, encode_features, fit_encoder
from glselect.data.target import detect_task, drop_missing_target
from glselect.errors import GlselectError
from tests.conftest import assert_same_encoder

# written by the encoder before it was fitted from mergeable statistics, for the table of
# test_mixed_table_encodes_each_kind_and_keeps_sources: model.json files of old out dirs hold this
SAVED_BEFORE_STATISTICS = {
    "columns": [
        {
            "name": "num",
            "kind": "numeric",
            "missing_indicator": True,
            "levels": [],
            "centers": [3.0, 0.2],
            "scales": [1.4142135623730951, 0.4000000000000001],
            "reason": "numeric: standardised; missing cells imputed with the mean and flagged",
        },
        {
            "name": "flag",
            "kind": "boolean",
            "missing_indicator": False,
            "levels": [],
            "centers": [0.6],
            "scales": [0.48989794855663565],
            "reason": "boolean: 0/1, standardised",
        },
        {
            "name": "color",
            "kind": "categorical",
            "missing_indicator": False,
            "levels": ["<missing>", "blue", "red"],
            "centers": [0.2, 0.2, 0.6],
            "scales": [0.4000000000000001, 0.4000000000000001, 0.48989794855663565],
            "reason": "categorical: one-hot over 3 levels, standardised",
        },
        {
            "name": "when",
            "kind": "ignored",
            "missing_indicator": False,
            "levels": [],
            "centers": [],
            "scales": [],
            "reason": "date/time column: not used as-is (derive numeric features from it)",
        },
    ],
    "target": {"name": "y", "task": "regression", "classes": [], "center": 3.1, "scale": 1.5620499351813308},
}


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0.5, 1.7, 2.2, 3.1], "regression"),
        ([0, 1, 1, 0], "binary"),
        ([0.0, 1.0, 0.0, 1.0], "binary"),
        ([True, False, True, True], "binary"),
        (["cat", "dog", "cat", "eel"], "multiclass"),
        ([1, 2, 3, 4, 5, 1, 2], "multiclass"),
        (list(range(100)), "regression"),
    ],
)
def test_task_is_detected_from_the_target(values, task):
    assert detect_task(pd.Series(values, name="t")) == task


def mixed_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": [1.0, 2.0, np.nan, 4.0, 5.0],
            "flag": [True, False, True, False, True],
            "color": ["red", "blue", None, "red", "red"],
            "when": pd.to_datetime(["2020-01-01"] * 5),
            "y": [1.0, 2.0, 3.0, 4.0, 5.5],
        }
    )


def test_mixed_table_encodes_each_kind_and_keeps_sources():
    df = mixed_table()
    encoder = fit_encoder(df, "y")
    design = encode(encoder, df)
    assert design.feature_names == ("num", "num[missing]", "flag", "color=<missing>", "color=blue", "color=red")
    assert design.sources == ("num", "num", "flag", "color", "color", "color")
    assert design.X.dtype == np.float32 and design.X.shape == (5, 6)
    assert design.X[2, 0] == 0.0  # imputed with the mean, which standardises to 0
    assert design.X[2, 1] == design.X[:, 1].max() > 0  # flagged
    # every encoded column, one-hot levels and indicators included, is standardised
    assert design.X.mean(axis=0) == pytest.approx(np.zeros(6), abs=1e-6)
    assert design.X.std(axis=0) == pytest.approx(np.ones(6), abs=1e-6)
    assert {column.name: column.kind for column in encoder.columns}["when"] == "ignored"
    assert design.y.mean() == pytest.approx(0.0, abs=1e-6)  # regression targets are standardised


def test_encoder_round_trips_through_json_ready_dicts_and_handles_unseen_levels():
    df = pd.DataFrame({"color": ["red", "blue", "red", "green"], "y": ["a", "b", "a", "b"]})
    encoder = fit_encoder(df, "y")
    again = Encoder.from_dict(encoder.to_dict())
    assert again == encoder
    new = pd.DataFrame({"color": ["purple", "red"]})
    X = encode_features(again, new)
    centers = np.array(again.columns[0].centers, dtype=np.float32)
    scales = np.array(again.columns[0].scales, dtype=np.float32)
    # an unseen level has no one-hot column: it encodes like a row with every level off
    assert X * scales + centers == pytest.approx(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), abs=1e-6)


def test_an_encoding_saved_by_the_earlier_encoder_loads_and_matches_a_fresh_fit():
    df = mixed_table()
    saved, fresh = Encoder.from_dict(SAVED_BEFORE_STATISTICS), fit_encoder(df, "y")
    assert_same_encoder(fresh, saved)
    assert encode_features(saved, df) == pytest.approx(encode_features(fresh, df), abs=1e-6)


def test_infinities_are_named_when_the_encoder_is_fitted():
    df = pd.DataFrame({"a": [1.0, 2.0, -np.inf, 4.0, np.inf], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.raises(GlselectError, match=r"^column 'a' has non-finite values \(2, first at data row 3: -inf\)$"):
        fit_encoder(df, "y")


def test_rare_levels_are_pooled():
    levels = [f"l{i:02d}" for i in range(30)]
    df = pd.DataFrame({"c": levels * 2 + ["l00"] * 5, "y": np.arange(65.0)})
    column = fit_encoder(df, "y").columns[0]
    assert len(column.levels) == 21 and column.levels[-1] == "<other>"


def test_rows_with_missing_targets_are_dropped_and_counted():
    df = pd.DataFrame({"a": [1, 2, 3], "y": [1.0, None, 3.0]})
    kept, n_dropped = drop_missing_target(df, "y", "t.csv")
    assert n_dropped == 1 and kept["a"].tolist() == [1, 3]


def test_a_class_missing_from_the_fitted_target_is_named():
    encoder = fit_encoder(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": ["u", "v", "u", "v"]}), "y")  # every class on 2 rows
    with pytest.raises(GlselectError, match="has a class not seen in training: 'w'"):
        encode(encoder, pd.DataFrame({"a": [1.0], "y": ["w"]}))


def test_csv_dates_are_read_as_dates_and_ignored(tmp_path):
    from glselect.data.io import read_table

    path = tmp_path / "t.csv"
    path.write_text("day,a,y\n2024-01-31,1.0,2.0\n2024-02-01,2.0,3.5\n2024-02-02,3.0,1.0\n")
    encoder = fit_encoder(read_table(path), "y")
    assert [(column.name, column.kind) for column in encoder.columns] == [("day", "ignored"), ("a", "numeric")]


def parity_table(n_rows: int = 90) -> pd.DataFrame:
    """Every kind the encoder reads, across more numeric columns than one block holds (glselect.data.numeric)."""
    rng = np.random.default_rng(3)
    columns = {f"f{j}": rng.standard_normal(n_rows).astype(np.float32) for j in range(40)}
    gappy = rng.standard_normal(n_rows)
    gappy[[2, 5, 40]] = np.nan
    columns["gappy"] = gappy
    columns["count"] = pd.array(np.where(np.arange(n_rows) % 9 == 4, None, np.arange(n_rows) % 7), dtype="Int64")
    columns["whole"] = np.arange(n_rows) % 5  # int64, no missing cell
    columns["flag"] = np.arange(n_rows) % 3 == 0
    columns["city"] = np.array(["oslo", "rome", None, "lima"], dtype=object)[np.arange(n_rows) % 4]
    columns["amount"] = np.array(["1,200.50", "3", "", "12,000"], dtype=object)[np.arange(n_rows) % 4]  # thousands separators
    columns["three"] = np.full(n_rows, 3)
    columns["y"] = rng.standard_normal(n_rows)
    return pd.DataFrame(columns)


def _standardised(values: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The encoding spelled out: missing cells take the training mean, which counts them as rows of zero deviation."""
    present = values[train][~np.isnan(values[train])]
    center = present.mean()
    scale = np.sqrt(((present - center) ** 2).sum() / train.sum())
    return ((np.where(np.isnan(values), center, values) - center) / scale).astype(np.float32), center, scale


def _share(flags: np.ndarray, train: np.ndarray) -> np.ndarray:
    k, n = int(flags[train].sum()), int(train.sum())
    return ((flags - k / n) / (np.sqrt(k * (n - k)) / n)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_each_kind_encodes_to_the_numbers_its_rule_gives_in_memory_and_from_record_batches(tmp_path, suffix):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from glselect.data.io import read_arrow_table

    path = tmp_path / f"t{suffix}"
    frame = parity_table()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:  # Parquet keeps types: the amounts are numbers there already
        pq.write_table(pa.Table.from_pandas(frame.assign(amount=pd.to_numeric(frame["amount"].str.replace(",", "")))), path)
    arrow = read_arrow_table(path)
    table = arrow.to_pandas(date_as_object=False)
    n = len(table)
    train = np.arange(n) < 60
    encoder = fit_encoder(table, "y", fit_rows=np.flatnonzero(train))
    X = encode_features(encoder, table)
    kinds = {column.name: column.kind for column in encoder.columns}
    assert kinds == {
        **{f"f{j}": "numeric" for j in range(40)},
        "gappy": "numeric",
        "count": "numeric",
        "whole": "numeric",
        "flag": "boolean",
        "city": "categorical",
        "amount": "numeric",
        "three": "ignored",
    }
    assert {column.name: column.reason for column in encoder.columns}["three"] == "constant: every value is 3"
    names = list(encoder.feature_names)
    for name in [f"f{j}" for j in range(40)] + ["whole"]:
        expected, center, scale = _standardised(table[name].to_numpy(dtype=np.float64), train)
        column = encoder.columns[[c.name for c in encoder.columns].index(name)]
        assert column.centers == (center,) and column.scales == (scale,)
        assert np.array_equal(X[:, names.index(name)], expected)
    for name in ("gappy", "count", "amount"):
        values = table[name].to_numpy(dtype=np.float64, na_value=np.nan)
        assert np.array_equal(X[:, names.index(name)], _standardised(values, train)[0])
        assert np.array_equal(X[:, names.index(f"{name}[missing]")], _share(np.isnan(values), train))
    assert np.array_equal(X[:, names.index("flag")], _share(table["flag"].to_numpy(dtype=np.float64), train))
    city = table["city"].fillna("<missing>").to_numpy()  # an empty CSV cell is read as the empty text ""
    assert encoder.columns[[c.name for c in encoder.columns].index("city")].levels == tuple(sorted(set(city)))
    for level in set(city):
        assert np.array_equal(X[:, names.index(f"city={level}")], _share((city == level).astype(np.float64), train))
    # a streamed record batch, never turned into a DataFrame whole, encodes to the same bits
    start = 0
    for batch in arrow.to_batches(max_chunksize=32):
        assert np.array_equal(encode(encoder, batch).X, X[start : start + batch.num_rows])
        start += batch.num_rows
    assert start == n


def test_predicting_on_bad_numbers_names_the_first_bad_column_in_the_fitted_order():
    import pyarrow as pa

    fitted = pd.DataFrame({f"f{j}": np.arange(30.0) * (j + 1) for j in range(35)} | {"y": np.arange(30.0) % 4})
    encoder = fit_encoder(fitted, "y")
    new = fitted.drop(columns="y").copy()
    new.loc[6, "f33"], new.loc[2, "f34"] = np.inf, -np.inf
    message = r"^column 'f33' has non-finite values \(1, first at data row 7: inf\)$"
    with pytest.raises(GlselectError, match=message):
        encode_features(encoder, new)
    with pytest.raises(GlselectError, match=message):
        encode_features(encoder, pa.RecordBatch.from_pandas(new, preserve_index=False))
    new["f20"] = "text"
    with pytest.raises(GlselectError, match=r"^column 'f20' was numeric when the model was fitted but is not numeric now$"):
        encode_features(encoder, new)


def test_a_constant_integer_column_with_a_gap_is_quoted_as_pandas_reads_it():
    import pyarrow as pa

    from glselect.data.encoder import build_encoder_from_stats
    from glselect.data.parquet import Source
    from glselect.data.stats import collect_batch_stats, column_kinds, training_part

    batch = pa.RecordBatch.from_pydict({"a": pa.array([3, None, 3, 3], pa.int64()), "b": [1.0, 2.0, 5.0, 3.0], "y": [1.0, 2.0, 3.0, 4.0]})
    kinds = column_kinds(Source(None, batch.schema, ()), ["a", "b"], frozenset(), frozenset())
    stats = collect_batch_stats([(batch, np.arange(4))], training_part(4, None), "y", kinds)
    # an integer column with a missing cell is float64 in pandas, so its first value reads 3.0, not 3
    assert stats.columns["a"].first == (0, 3.0) and repr(stats.columns["a"].first[1]) == "3.0"
    assert stats.columns["a"].n_missing == 1 and stats.columns["b"].moments.mean == 2.75
    assert build_encoder_from_stats(stats, "y", None, 20, frozenset()).columns[0].missing_indicator


def test_the_target_is_standardised_on_the_training_rows_only():
    """Held-out rows must not shape the encoding they are scored with: the target's centre and
    scale are the training rows' mean and standard deviation, as every column's are."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(200), "y": rng.standard_normal(200)})
    frame.loc[150:, "y"] += 100.0  # the held-out rows' targets are far off: they would move both
    train_rows = np.arange(150)
    encoder = fit_encoder(frame, "y", task="regression", fit_rows=train_rows)
    assert encoder.target.center == pytest.approx(frame["y"][:150].mean(), rel=1e-9)
    assert encoder.target.scale == pytest.approx(frame["y"][:150].std(ddof=0), rel=1e-6)
