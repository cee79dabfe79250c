"""Random small tables: glselect either succeeds with every artifact or exits 2 with one line, never a traceback."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ARTIFACTS, invoke

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
KINDS = ("float", "int", "bool", "text", "mostly_missing")
# short fits: what these tests check (every artifact, or one clean line) does not depend on how far each trains
SHORT = ["--max-iters-per-lambda", "5", "--tol", "0.1", "--max-iters", "50", "--relax-iters", "20"]


@st.composite
def tables(draw):
    n_rows = draw(st.one_of(st.integers(0, 25), st.integers(20, 60)))  # mostly enough rows to fit
    column_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = {}
    for name in column_names:
        kind = draw(st.sampled_from(KINDS))
        if kind == "float":
            values = rng.normal(size=n_rows)
            values[rng.random(n_rows) < 0.1] = np.nan
            if draw(st.booleans()) and n_rows:
                values[0] = draw(st.sampled_from([np.inf, -np.inf, 1e30, -0.0]))
        elif kind == "int":
            values = rng.integers(-3, 3, size=n_rows)
        elif kind == "bool":
            values = rng.random(n_rows) < 0.5
        elif kind == "text":
            values = rng.choice(draw(st.lists(names, min_size=1, max_size=4)), size=n_rows).astype(object)
            values[rng.random(n_rows) < 0.1] = None
        else:
            values = np.full(n_rows, np.nan)
            if n_rows:
                values[0] = 1.0
        data[name] = values
    target = draw(st.sampled_from(column_names))
    return pd.DataFrame(data), target, draw(st.sampled_from(["csv", "parquet"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables(), st.sampled_from([["--hidden", "0"], ["--hidden", "2"], ["--hidden", "2", "--max-features", "1"]]))
def test_any_table_either_fits_or_fails_cleanly(table, flags):
    df, target, fmt = table
    folder = Path(tempfile.mkdtemp())
    try:
        path = folder / f"t.{fmt}"
        df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
        out = folder / "out"
        result = invoke("fit", path, "--target", target, "--out", out, "-q", *SHORT, "--max-steps", "6", *flags)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 2), (result.exit_code, result.output, repr(result.exception))
        if result.exit_code == 0:
            assert {p.name for p in out.iterdir()} == ARTIFACTS
        else:
            # the reading report's warnings come first when the table was read (--quiet keeps them)
            lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")]
            assert lines[0].startswith("error: ") and len(lines) <= 2
            assert not out.exists()
        assert not [p for p in folder.iterdir() if p.name.startswith(".out.")]  # no staging left behind
    finally:
        shutil.rmtree(folder)


COLUMNS = ["a", "b", "c", "n1", "n2"]
entries = st.sampled_from([*COLUMNS, "y", "zz", "n*", "*", "[ab]", "", " a ", "a,b"])
flag_sets = st.lists(
    st.sampled_from(
        [
            ("--hidden", "0"),
            ("--hidden", "3,2"),
            ("--rule", "min"),
            ("--rule", "1se"),
            ("--max-features", "1"),
            ("--max-features", "9"),
            ("--min-features", "2"),
            ("--lambda-step", "1.5"),
            ("--lambda-step", "0.5"),
            ("--max-levels", "1"),
            ("--drop", "a"),
            ("--features", "b"),
            ("--categorical", "c"),
            ("--task", "binary"),
            ("--val-fraction", "0.3"),
            ("--test-fraction", "0.05"),
            ("--lambda-start", "10"),
        ]
    ),
    max_size=4,
)


@st.composite
def group_maps(draw):
    pairs = draw(st.lists(st.tuples(entries, st.sampled_from(["g1", "g2", "a", ""])), max_size=5))
    if draw(st.booleans()):
        groups: dict[str, list[str]] = {}
        for entry, group in pairs:
            groups.setdefault(group, []).append(entry)
        return "map.json", json.dumps(groups)
    return "map.csv", "feature,group\n" + "".join(f"{entry},{group}\n" for entry, group in pairs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), group_maps()), flag_sets)
def test_any_group_map_and_flags_either_fit_or_fail_cleanly(group_map, flags):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({name: rng.normal(size=60) for name in COLUMNS})
    df["y"] = df["a"] - df["b"] + 0.1 * rng.normal(size=60)
    folder = Path(tempfile.mkdtemp())
    try:
        df.to_csv(folder / "t.csv", index=False)
        args = ["fit", folder / "t.csv", "-t", "y", "--out", folder / "out", "-q", *SHORT, "--max-steps", "8"]
        if group_map is not None:
            (folder / group_map[0]).write_text(group_map[1])
            args += ["--groups", folder / group_map[0]]
        result = invoke(*args, *[part for flag in flags for part in flag])
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 2), (result.exit_code, result.output, repr(result.exception))
        if result.exit_code == 0:
            summary = json.loads((folder / "out" / "summary.json").read_text())
            importances = pd.read_csv(folder / "out" / "importances.csv")
            assert sorted(importances.loc[importances["selected"], "feature"]) == sorted(summary["selected_features"])
        else:
            assert not (folder / "out").exists()
    finally:
        shutil.rmtree(folder)
