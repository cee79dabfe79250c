"""Round trips of the out dir, and loading that refuses anything it cannot trust."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from glselect import GlselectError, ModelConfig, PathConfig, RunConfig, load_model, run
from glselect.data.encoder import encode_features


@pytest.fixture(scope="module")
def fitted_once(tmp_path_factory):
    from tests.conftest import make_linear_table

    table = make_linear_table()
    table["colour"] = np.where(table["a"] > 0, "warm", "cold")  # a categorical that tracks a
    folder = tmp_path_factory.mktemp("fit")
    table.to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv",
        target="y",
        out=folder / "out",
        model=ModelConfig(hidden=(4,)),
        path=PathConfig(max_iters_per_lambda=30, tol=0.1),
    )
    return run(config), table


@pytest.fixture
def fitted(fitted_once, tmp_path):
    """The module's fit, with its out dir copied so that a test may tamper with it."""
    result, table = fitted_once
    shutil.copytree(result.out_dir, tmp_path / "out")
    return dataclasses.replace(result, out_dir=tmp_path / "out"), table


def test_saved_model_reproduces_the_refit_predictions(fitted):
    result, table = fitted
    loaded = load_model(result.out_dir)
    assert list(loaded.inputs) == loaded.encoder.feature_names  # the encoding yields exactly the model's inputs
    assert {column.name for column in loaded.encoder.columns} == set(result.summary["selected_features"])
    X_full = torch.from_numpy(encode_features(result.encoder, table))
    columns = torch.as_tensor(np.flatnonzero(result.selection.feature_mask))
    X_saved = torch.from_numpy(encode_features(loaded.encoder, table))
    with torch.no_grad():
        assert torch.allclose(loaded.model(X_saved), result.selection.model(X_full[:, columns]), atol=1e-5)


def test_summary_importances_and_path_agree(fitted):
    result, _ = fitted
    out = result.out_dir
    summary = json.loads((out / "summary.json").read_text())
    importances = pd.read_csv(out / "importances.csv")
    groups = pd.read_csv(out / "groups.csv")
    path = pd.read_csv(out / "path.csv")
    norms = pd.read_parquet(out / "path_norms.parquet")
    assert sorted(importances.loc[importances["selected"], "feature"]) == sorted(summary["selected_features"])
    assert sorted(groups.loc[groups["selected"], "group"]) == sorted(summary["selected_groups"])
    assert path.loc[summary["step"], "lambda"] == pytest.approx(summary["lambda"])
    # the selected groups are within the step the search started from (it drops groups, never adds)
    at_step = norms[(norms["step"] == summary["step"]) & (norms["norm"] > 0)]
    assert set(summary["selected_groups"]) <= set(at_step["group"])
    # the colour, a's sign, carries nothing once a is in: a proxy of a, named and left out
    assert sorted(summary["selected_groups"]) == ["a", "b", "c"]
    assert summary["stand_ins"]["selected"]["a"]["proxies"] == ["colour"]
    colour = groups.set_index("group").loc["colour"]
    assert colour["stand_in"] == "proxy" and colour["stand_in_for"] == "a"
    assert path.loc[summary["step"], "n_selected"] == len(at_step)
    # importance is the last lambda at which the group's norm is non-zero
    last_alive = norms.merge(path[["step", "lambda"]], on="step").groupby("group", observed=True)["lambda"].max()
    for row in groups.itertuples():
        assert row.importance == pytest.approx(last_alive.get(row.group, 0.0))
    # selected groups first, each part by importance
    assert not importances["selected"].astype(int).diff().gt(0).any()
    for part in (importances[importances["selected"]], importances[~importances["selected"]]):
        assert part["importance"].is_monotonic_decreasing


def test_the_rank_follows_the_columns_the_fit_wrote(fitted):
    # the default runs no all-relevant round: no "round" column, selected first, then survival
    from tests.conftest import assert_rank_follows_the_shown_keys

    out = fitted[0].out_dir
    for name in ("importances.csv", "groups.csv"):
        table = pd.read_csv(out / name)
        assert_rank_follows_the_shown_keys(table)
        assert "round" not in table.columns


def test_wrong_version_is_refused(fitted):
    out = fitted[0].out_dir
    meta = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(GlselectError, match="has format version 99; this glselect reads version 1"):
        load_model(out)


def test_weights_that_do_not_match_the_architecture_are_refused(fitted):
    out = fitted[0].out_dir
    meta = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**meta, "hidden": [5]}))
    with pytest.raises(GlselectError, match="does not match the architecture"):
        load_model(out)


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/glselect-pwned", "w"))


def test_a_pickle_posing_as_weights_is_reported_not_executed(fitted, tmp_path):
    out = fitted[0].out_dir
    (out / "model.safetensors").write_bytes(pickle.dumps({"layers.0.weight": _Boom()}))
    with pytest.raises(GlselectError, match="is corrupted or not a safetensors file"):
        load_model(out)
    assert not os.path.exists("/tmp/glselect-pwned")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(GlselectError, match=r"is not a glselect output: 'model\.json' is missing"):
        load_model(tmp_path)


def test_a_group_an_all_relevant_round_added_ranks_after_the_minimal_selection(fitted_once):
    # a round's group can outlive a group of the minimal set on the path (a copy the confirmation
    # dropped); it still ranks after the minimal set, so the top ranks stay a set that is enough
    from glselect.data.groups import build_group_index
    from glselect.select.base import Part
    from glselect.select.importance import rank_groups

    result, table = fitted_once
    encoder = result.encoder
    group_index = build_group_index(encoder.sources, None, table_columns=list(table.columns), target="y")
    selected = np.flatnonzero(result.selection.group_mask)
    by_survival = list(result.importances.groups["group"][: len(selected)])
    assert len(selected) >= 2
    as_if_found_later = np.zeros(group_index.n_groups, dtype=bool)
    as_if_found_later[group_index.names.index(by_survival[0])] = True  # the longest survivor, as if a round added it
    dense_norms = np.ones(len(encoder.feature_names))
    plain = rank_groups(result.path, result.selection, group_index, encoder, dense_norms)
    found_later = Part("all-relevant", rank_key=as_if_found_later.astype(np.int64))  # round 1 found it
    rounds = rank_groups(result.path, result.selection, group_index, encoder, dense_norms, [found_later])
    assert list(plain.groups["group"][: len(selected)]) == by_survival
    assert list(rounds.groups["group"][: len(selected)]) == by_survival[1:] + by_survival[:1]
    assert list(rounds.groups["group"][len(selected) :]) == list(plain.groups["group"][len(selected) :])
