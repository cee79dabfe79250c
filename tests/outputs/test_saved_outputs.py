"""Reading a saved out dir: damaged or edited files end in one error line (exit 2), never a traceback.

One tiny fit per module; every test corrupts a copy of its out dir. The property-based tests draw
random deletions and edits of the out dir's files and run ``predict``, ``show``, ``select``, ``check``
and the Python loaders on the result: each outcome is a success with valid output, a failed
``check`` (exit 3), or exit 2 with an ``error:`` line and at most a hint.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glselect
from glselect import GlselectError, ModelConfig, PathConfig, RunConfig, run
from glselect._synthetic import make_mixed_table
from glselect.config import ImportanceConfig
from glselect.outputs.load import load_model, load_results
from tests.conftest import assert_user_error, invoke

HINT = "hint: the file was changed or damaged after the fit: refit, or restore it from a copy"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """(out dir, table): a binary fit on a mixed table (numeric, boolean, categorical and ignored columns)."""
    folder = tmp_path_factory.mktemp("saved")
    table = make_mixed_table(120, seed=5)
    table["y"] = np.where(table["y"] > 0, "high", "low")
    table.to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv",
        target="y",
        out=folder / "out",
        model=ModelConfig(hidden=(2,)),
        path=PathConfig(max_iters_per_lambda=5, tol=0.1, max_steps=6, relax_iters=5),
        importance=ImportanceConfig(permutation_repeats=1),
    )
    return run(config).out_dir, folder / "data.csv"


@pytest.fixture
def copy(fitted, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(fitted[0], out)
    return out


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


# ------------------------------------------------------------------------------ the cases of issue 16


def test_an_unknown_column_kind_in_model_json_is_named(copy, fitted):
    edit_json(copy / "model.json", lambda meta: meta["encoder"]["columns"][0].update(kind="weird"))
    result = invoke("predict", copy, fitted[1])
    assert_user_error(
        result,
        f"'{copy / 'model.json'}' is malformed: 'encoder.columns[0].kind' must be one of numeric, boolean, "
        "categorical, ignored, found 'weird'",
    )
    assert result.stderr.splitlines()[1] == HINT


def test_non_numeric_scales_in_model_json_are_named(copy, fitted):
    def text_scales(meta: dict[str, Any]) -> None:
        meta["encoder"]["columns"][0]["scales"] = ["wide", "wide"]

    edit_json(copy / "model.json", text_scales)
    assert_user_error(
        invoke("predict", copy, fitted[1]),
        f"'{copy / 'model.json'}' is malformed: 'encoder.columns[0].scales' must be a list of positive numbers, found ['wide', 'wide']",
    )


@pytest.mark.parametrize("key", ["inputs", "hidden", "n_inputs", "encoder"])
def test_a_missing_key_in_model_json_is_named(copy, fitted, key):
    edit_json(copy / "model.json", lambda meta: meta.pop(key))
    assert_user_error(invoke("predict", copy, fitted[1]), f"'{copy / 'model.json'}' is malformed: it lacks '{key}'")


def test_summary_without_metrics_is_named_by_every_reader(copy):
    edit_json(copy / "summary.json", lambda summary: summary.pop("metrics"))
    message = f"'{copy / 'summary.json'}' is malformed: it lacks 'metrics'"
    assert_user_error(invoke("show", copy), message)
    assert_user_error(invoke("check", copy, "--max-share", "1"), message)
    with pytest.raises(GlselectError, match="it lacks 'metrics'"):
        load_results(str(copy))


def test_show_prints_a_metric_that_could_not_be_computed_as_n_a(copy):
    # an AUC on a test part with one class is NaN, written to summary.json as null
    edit_json(copy / "summary.json", lambda summary: summary["metrics"]["pruned"].update(auc=None))
    result = invoke("show", copy)
    assert result.exit_code == 0, result.output
    assert "auc" in result.stdout and "n/a" in result.stdout


def test_load_model_takes_a_string_path(fitted):
    loaded = glselect.load_model(str(fitted[0]))
    assert loaded.inputs and loaded.model.n_inputs == len(loaded.inputs)
    assert load_results(str(fitted[0])).out_dir == fitted[0]


def test_a_truncated_safetensors_file_is_named(copy, fitted):
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    result = invoke("predict", copy, fitted[1])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: '{weights}' is corrupted or not a safetensors file")
    with pytest.raises(GlselectError, match="is corrupted or not a safetensors file"):
        glselect.load_model(copy)


def test_non_finite_weights_are_refused(copy, fitted):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(copy / "model.safetensors"))
    tensors["layers.0.bias"][0] = float("nan")
    save_file(tensors, str(copy / "model.safetensors"))
    assert_user_error(invoke("predict", copy, fitted[1]), f"'{copy / 'model.safetensors'}' holds weights that are not finite numbers")


def test_a_huge_width_in_model_json_is_refused_before_building_the_model(copy, fitted):
    edit_json(copy / "model.json", lambda meta: meta.update(hidden=[10**12]))
    assert_user_error(
        invoke("predict", copy, fitted[1]),
        f"'{copy / 'model.safetensors'}' does not match the architecture in 'model.json'",
    )


def test_a_bad_cell_in_importances_csv_is_named_with_its_row(copy):
    table = pd.read_csv(copy / "importances.csv", keep_default_na=False, dtype=str)
    table.loc[2, "importance"] = "lots"
    table.to_csv(copy / "importances.csv", index=False)
    assert_user_error(
        invoke("show", copy),
        f"'{copy / 'importances.csv'}' is malformed: column 'importance' must hold finite numbers, found 'lots' in data row 3",
    )


def test_a_missing_column_in_groups_csv_is_named(copy):
    pd.read_csv(copy / "groups.csv").drop(columns="importance").to_csv(copy / "groups.csv", index=False)
    assert_user_error(invoke("check", copy, "--max-share", "0.9"), f"'{copy / 'groups.csv'}' is malformed: it lacks column(s) 'importance'")


def test_a_chosen_step_missing_from_path_csv_is_named(copy):
    edit_json(copy / "summary.json", lambda summary: summary.update(step=999))
    assert_user_error(invoke("show", copy), f"'{copy / 'summary.json'}' is malformed: its step 999 is not a row of 'path.csv'")


# ---------------------------------------------------------------------------- random corruptions


def json_paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, as a tuple of keys and indices (the root is ``()``)."""
    places = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            places += json_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            places += json_paths(value, (*prefix, index))
    return places


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**13) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=4,
)
JSON_FILES = ("summary.json", "model.json")
CSV_FILES = ("importances.csv", "groups.csv", "path.csv")
ALL_FILES = ("summary.json", "importances.csv", "groups.csv", "path.csv", "path_norms.parquet", "model.safetensors", "model.json")


@st.composite
def corruptions(draw) -> tuple:
    """One change to an out dir, as data: applied by ``corrupt``."""
    kind = draw(st.sampled_from(["delete", "json", "json", "json", "csv", "csv", "truncate", "flip"]))
    if kind == "delete":
        return ("delete", draw(st.sampled_from(ALL_FILES)))
    if kind == "json":
        action = draw(st.sampled_from(["remove", "replace", "replace"]))
        return ("json", draw(st.sampled_from(JSON_FILES)), action, draw(st.integers(0, 10**6)), draw(json_values))
    if kind == "csv":
        action = draw(st.sampled_from(["drop column", "cell", "cell", "header only"]))
        cell = draw(st.sampled_from(["", "x", "-1", "1e400", "nan", "True", "2.5", "0", "a,b", '"']))
        return ("csv", draw(st.sampled_from(CSV_FILES)), action, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), cell)
    fraction = draw(st.floats(0, 1))
    return (kind, draw(st.sampled_from(ALL_FILES)), fraction, draw(st.integers(0, 255)))


def corrupt(out: Path, change: tuple) -> None:
    kind, name = change[0], change[1]
    path = out / name
    if not path.exists():
        return
    if kind == "delete":
        path.unlink()
    elif kind == "json":
        _, _, action, pick, value = change
        try:
            document = json.loads(path.read_text())
        except ValueError:
            return  # an earlier change broke the file: nothing left to edit
        places = json_paths(document)
        place = places[pick % len(places)]
        if not place:
            document = value
        else:
            parent = document
            for key in place[:-1]:
                parent = parent[key]
            if action == "remove":
                del parent[place[-1]]
            else:
                parent[place[-1]] = value
        path.write_text(json.dumps(document))
    elif kind == "csv":
        _, _, action, column_pick, row_pick, cell = change
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError):
            return  # an earlier change broke the file: nothing left to edit
        if not len(table.columns):
            return
        column = table.columns[column_pick % len(table.columns)]
        if action == "drop column":
            table = table.drop(columns=column)
        elif action == "header only":
            table = table.head(0)
        elif len(table):
            table.loc[table.index[row_pick % len(table)], column] = cell
        table.to_csv(path, index=False)
    else:
        _, _, fraction, byte = change
        data = bytearray(path.read_bytes())
        position = int(fraction * len(data))
        if kind == "truncate":
            path.write_bytes(bytes(data[:position]))
        elif data:
            data[min(position, len(data) - 1)] = byte
            path.write_bytes(bytes(data))


def assert_clean_failure(result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2, (result.exit_code, result.output, repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("hint: ")), lines


COMMANDS = ["predict", "show", "show --json", "select", "check"]
# few examples, the same every run (derandomized): the suite's time budget; 1,500 random examples
# of each test passed when they were written
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@FUZZ
@given(changes=st.lists(corruptions(), min_size=1, max_size=3), command=st.sampled_from(COMMANDS))
def test_every_command_on_a_corrupted_out_dir_works_or_fails_in_one_line(fitted, changes, command):
    source, table_path = fitted
    folder = Path(tempfile.mkdtemp())
    try:
        out = folder / "out"
        shutil.copytree(source, out)
        for change in changes:
            corrupt(out, change)
        if command == "predict":
            result = invoke("predict", out, table_path)
        elif command == "select":
            result = invoke("select", out, table_path, "--out", folder / "selected.csv")
        elif command == "check":
            result = invoke("check", out, "--forbid", "noise", "--max-share", "0.9", "--json")
        else:
            result = invoke(*command.split(), out)
        if result.exit_code == 2:
            assert_clean_failure(result)
            assert not (folder / "selected.csv").exists()
            return
        assert "Traceback" not in result.output, result.output
        assert result.exit_code in ((0, 3) if command == "check" else (0,)), (result.exit_code, result.output, repr(result.exception))
        if command == "predict":
            predicted = pd.read_csv(io.StringIO(result.stdout))
            assert len(predicted) == len(pd.read_csv(table_path)) and "prediction" in predicted.columns
        elif command == "select":
            assert len(pd.read_csv(folder / "selected.csv")) == len(pd.read_csv(table_path))
        elif command in ("show --json", "check"):
            assert isinstance(json.loads(result.stdout), dict)
        else:
            assert "held-out test rows" in result.stdout
    finally:
        shutil.rmtree(folder)


@settings(FUZZ, max_examples=12)
@given(changes=st.lists(corruptions(), min_size=1, max_size=3))
def test_the_python_loaders_on_a_corrupted_out_dir_load_or_raise_glselect_error(fitted, changes):
    pytest.importorskip("sklearn")
    folder = Path(tempfile.mkdtemp())
    try:
        out = folder / "out"
        shutil.copytree(fitted[0], out)
        for change in changes:
            corrupt(out, change)
        for loader in (load_model, load_results, glselect.load):
            with contextlib.suppress(GlselectError):
                loader(str(out))
    finally:
        shutil.rmtree(folder)
