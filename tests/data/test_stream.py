"""Streaming mode: the hashed split, row groups shared between ranks, one-pass encoding statistics, sizes, the capped holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect._synthetic import make_mixed_table
from glselect.data.encoder import ColumnRules, build_encoder, fit_encoder
from glselect.data.parquet import iter_batches, open_source, row_groups_of_rank
from glselect.data.split import TEST, TRAIN, VAL, SplitSettings, split_of
from glselect.data.stats import collect_stats, column_kinds
from glselect.errors import GlselectError
from glselect.options import parse_size
from tests.conftest import split_frame, strong_linear_table, write_parquet


def test_hash_split_is_deterministic_disjoint_and_in_proportion() -> None:
    positions = np.arange(200_000)
    parts = split_of(positions, seed=3, val_fraction=0.2, test_fraction=0.1)
    assert np.array_equal(parts, split_of(positions, seed=3, val_fraction=0.2, test_fraction=0.1))
    # a row's part depends on its position only, not on the batch it arrives in
    assert np.array_equal(parts[1000:2000], split_of(positions[1000:2000], seed=3, val_fraction=0.2, test_fraction=0.1))
    shares = [np.mean(parts == part) for part in (TRAIN, VAL, TEST)]
    assert shares == pytest.approx([0.7, 0.2, 0.1], abs=0.005)
    assert not np.array_equal(parts, split_of(positions, seed=4, val_fraction=0.2, test_fraction=0.1))


def test_row_groups_are_shared_between_ranks_without_overlap(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    table = strong_linear_table(2000)
    for index, chunk in enumerate(split_frame(table, 3)):
        write_parquet(chunk, directory / f"part-{index}.parquet", row_group_size=300)
    source = open_source(directory)
    assert source.n_rows == 2000
    starts = [group.start for group in source.row_groups]
    assert starts == sorted(starts) and starts[0] == 0
    shares = [row_groups_of_rank(source, rank, 2) for rank in range(2)]
    assert sorted(g.start for share in shares for g in share) == starts


def test_a_row_group_is_shared_by_rows_when_there_are_fewer_row_groups_than_ranks(tmp_path: Path) -> None:
    table = strong_linear_table(1001)
    path = write_parquet(table, tmp_path / "one.parquet", row_group_size=1 << 20)
    source = open_source(path)
    assert len(source.row_groups) == 1
    for n_ranks in (2, 3):
        shares = [row_groups_of_rank(source, rank, n_ranks) for rank in range(n_ranks)]
        read = [(batch.to_pandas(), positions) for share in shares for batch, positions in iter_batches(share, ["a", "y"], batch_rows=64)]
        positions = np.concatenate([positions for _, positions in read])
        # every row once, in order, at its own position (so the hashed split gives it the part one process gives it)
        np.testing.assert_array_equal(positions, np.arange(1001))
        np.testing.assert_array_equal(pd.concat([frame for frame, _ in read])["a"].to_numpy(), table["a"].to_numpy())
        assert [sum(piece.n_rows for piece in share) for share in shares] == [
            1001 * (rank + 1) // n_ranks - 1001 * rank // n_ranks for rank in range(n_ranks)
        ]


def test_streamed_encoding_statistics_match_the_in_memory_encoder(tmp_path: Path) -> None:
    table = make_mixed_table(1500, seed=2)
    # a numeric code forced to categories: its labels must be spelt as the encoder spells them ("2.0")
    table["code"] = np.where(np.arange(1500) % 7 == 0, np.nan, np.arange(1500) % 4 + 1.0)
    path = write_parquet(table, tmp_path / "mixed.parquet", row_group_size=400)
    source = open_source(path)
    columns = [name for name in source.columns if name != "y"]
    forced = frozenset({"code"})
    kinds = column_kinds(source, columns, frozenset(), forced)
    stats = collect_stats(source.row_groups, "y", columns, kinds, SplitSettings(seed=5, val_fraction=0.2, test_fraction=0.2))
    streamed = build_encoder(stats, source, "y", None, ColumnRules(categorical=forced))

    frame = pd.read_parquet(path)
    train_rows = np.flatnonzero(split_of(np.arange(len(frame)), 5, 0.2, 0.2) == TRAIN)
    in_memory = fit_encoder(frame, "y", fit_rows=train_rows, rules=ColumnRules(max_levels=20, categorical=forced))
    assert streamed.target.task == in_memory.target.task == "regression"
    assert streamed.target.center == pytest.approx(in_memory.target.center, rel=1e-9)
    assert streamed.target.scale == pytest.approx(in_memory.target.scale, rel=1e-9)
    for ours, theirs in zip(streamed.columns, in_memory.columns):
        assert (ours.name, ours.kind, ours.missing_indicator, ours.levels) == (
            theirs.name,
            theirs.kind,
            theirs.missing_indicator,
            theirs.levels,
        )
        assert ours.centers == pytest.approx(theirs.centers, rel=1e-9, abs=1e-12)
        assert ours.scales == pytest.approx(theirs.scales, rel=1e-9)
    assert {c.name: c.kind for c in streamed.columns}["city"] == "categorical"  # 40 levels pooled to 20 + <other>
    assert len({c.name: c for c in streamed.columns}["city"].levels) == 21
    assert {c.name: c for c in streamed.columns}["code"].levels == ("1.0", "2.0", "3.0", "4.0", "<missing>")


def test_parse_size() -> None:
    assert parse_size("4GB") == 4 << 30
    assert parse_size("512m") == 512 << 20
    assert parse_size("1.5 GiB") == int(1.5 * (1 << 30))
    assert parse_size("1000") == 1000
    with pytest.raises(GlselectError):
        parse_size("-1GB")


def test_a_capped_holdout_is_the_rows_with_the_smallest_hash_encoded_as_in_memory(tmp_path: Path) -> None:
    import dataclasses

    from glselect import distributed
    from glselect.config import RunConfig
    from glselect.data.encoder import encode
    from glselect.data.split import VALIDATION_ROWS, row_hash
    from glselect.data.stream import HOLDOUT_SALT, StreamData

    df = strong_linear_table(600)
    df.loc[[3, 50, 51], "y"] = np.nan  # rows without a target are never held out
    path = write_parquet(df, tmp_path / "t.parquet", row_group_size=100)
    base = RunConfig(table=path, target="y")
    config = dataclasses.replace(base, stream=dataclasses.replace(base.stream, stream=True, max_holdout_rows=9))
    data = StreamData.open(config, torch.device("cpu"), distributed.SINGLE)
    held = data.holdout(VALIDATION_ROWS)
    parts = split_of(np.arange(600), config.seed, config.data.val_fraction, config.data.test_fraction)
    positions = np.flatnonzero((parts == VAL) & df["y"].notna().to_numpy())
    expected = np.sort(positions[np.argsort(row_hash(positions, config.seed, HOLDOUT_SALT))[:9]])
    design = encode(data.encoder, df.iloc[expected])
    assert len(held) == 9 and data.count(VALIDATION_ROWS) == len(positions)
    assert torch.equal(held.X, torch.from_numpy(design.X)) and torch.equal(held.y, torch.from_numpy(design.y))
