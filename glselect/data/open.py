"""One opener for a fit's table: in memory when it fits, a stream otherwise (always under torchrun).

Both kinds of dataset are checked the same way before anything is fitted: the fewest rows a fit
accepts is one rule (``source.require_rows``), for the table read whole and for the statistics
pass of a stream alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from glselect import distributed
from glselect.config import RunConfig
from glselect.data.encoder import ColumnRules, check_named_columns, columns_left_out, encode, fit_encoder_and_stats
from glselect.data.groups import build_group_index
from glselect.data.io import read_group_map, read_table
from glselect.data.reading import read_report
from glselect.data.source import MIN_ROWS, Dataset, EncodedTable, frame_positions, hash_split, require_rows
from glselect.data.split import TRAIN
from glselect.data.survival import check_survival_columns, fold_batch, survival_columns
from glselect.data.target import drop_missing_target, target_column

__all__ = ["frame_dataset", "open_dataset", "require_rows"]


def open_dataset(config: RunConfig, device: torch.device, context: distributed.Context) -> Dataset:
    """The table in memory when it fits, else a stream (always a stream under torchrun).

    Raises
    ------
    GlselectError
        An unreadable table or group map, an unusable target, or too few rows (on every rank alike).
    """
    from glselect.data.stream import StreamData, wants_streaming  # the stream reads require_rows from here

    if wants_streaming(config):
        return StreamData.open(config, device, context)
    table = read_table(config.table, config.data.sep, config.data.decimal)
    group_map = read_group_map(config.groups) if config.groups is not None else None
    return frame_dataset(table, config, group_map, device)


def frame_dataset(
    table: pd.DataFrame, config: RunConfig, group_map: dict[str, str] | None, device: torch.device, min_rows: int = MIN_ROWS
) -> EncodedTable:
    """Encode a table in memory: the rows' parts by the one hash split, the encoder fitted on the training rows.

    ``min_rows``: the fewest rows accepted (the scikit-learn selector goes down to 3, one per part).
    """
    target = target_column(config)
    if config.is_survival:  # the event column is folded into the time column, the target from here on
        time, event = survival_columns(config)
        check_survival_columns(list(map(str, table.columns)), time, event, config.data.features, config.data.drop, str(config.table))
        table = fold_batch(table, time, event, np.arange(len(table)))
    positions = frame_positions(table, target) if target in table.columns else np.arange(len(table))
    table, n_missing_target = drop_missing_target(table, target, str(config.table))
    require_rows(len(positions), min_rows)
    parts = hash_split(positions, config.seed, config.data.val_fraction, config.data.test_fraction, min_rows)
    columns = [str(name) for name in table.columns]
    left_out = columns_left_out(columns, target, config.data.features, config.data.drop, str(config.table))
    check_named_columns(config.data.categorical, columns, "--categorical", str(config.table))
    encoder, stats = fit_encoder_and_stats(
        table,
        target,
        config.data.task,
        fit_rows=np.flatnonzero(parts == TRAIN),
        rules=ColumnRules(config.data.max_levels, left_out, frozenset(config.data.categorical)),
        event=config.event,
    )
    design = encode(encoder, table)
    group_index = build_group_index(design.sources, group_map, table_columns=columns, target=target, map_source=str(config.groups))
    return EncodedTable(
        encoder=encoder,
        group_index=group_index,
        X=design.X,
        y=design.y,
        positions=positions,
        parts=parts,
        seed=config.seed,
        device=device,
        n_missing_target=n_missing_target,
        reading=read_report(stats, encoder, n_missing_target),
    )
