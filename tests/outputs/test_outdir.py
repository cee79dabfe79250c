"""The out dir's lock, the one atomic write, and the registry of files round-tripping every artifact."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs.files import ARTIFACT, ARTIFACT_FILES, ARTIFACTS, PathTables, SavedModel, write_artifacts, write_files
from glselect.outputs.outdir import OUTPUT_FORMAT, OutDirLock, atomic_write
from glselect.select.importance import Importances

ROOT = Path(__file__).resolve().parents[2]


def _refusal(out: Path, pid: int) -> str:
    return (
        f"output directory '{out}' is being written by another glselect run "
        f"(pid {pid} on {socket.gethostname()}; lock file '{out.parent / '.out.lock'}')"
    )


@pytest.fixture
def holder(tmp_path):
    """A second process that takes the lock on ``tmp_path / 'out'`` and holds it until killed."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from glselect.outputs.outdir import OutDirLock\n"
        "OutDirLock(Path(sys.argv[1])).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_lock_held_by_another_process_is_refused_with_its_pid(tmp_path, holder):
    out = tmp_path / "out"
    with pytest.raises(GlselectError) as raised:
        OutDirLock(out).acquire()
    assert str(raised.value) == _refusal(out, holder.pid)
    assert "delete the lock file" in raised.value.hint
    assert (tmp_path / ".out.lock").exists()  # the holder's lock is kept
    assert json.loads((tmp_path / ".out.lock").read_text())["pid"] == holder.pid


def test_a_lock_whose_process_was_killed_is_free_again(tmp_path, holder):
    out = tmp_path / "out"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / ".out.lock").exists()  # a killed run cannot remove its file, but the OS dropped its lock
    lock = OutDirLock(out).acquire()
    assert json.loads((tmp_path / ".out.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / ".out.lock").exists()


def test_the_lock_excludes_a_second_claim_in_the_same_process_until_released(tmp_path):
    out = tmp_path / "deeper" / "out"
    first = OutDirLock(out).acquire()
    with pytest.raises(GlselectError) as raised:
        OutDirLock(out).acquire()
    assert str(raised.value) == _refusal(out, os.getpid())
    first.release(written=False)
    assert not (tmp_path / "deeper").exists()  # the folder made for the out dir goes when nothing was written
    OutDirLock(out).acquire().release()


def test_an_older_glselects_lock_file_is_respected_while_its_pid_lives(tmp_path):
    out = tmp_path / "out"
    legacy = tmp_path / ".out.lock"
    legacy.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    with pytest.raises(GlselectError) as raised:
        OutDirLock(out).acquire()
    assert str(raised.value) == _refusal(out, os.getpid())
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    legacy.write_text(json.dumps({"pid": finished.pid, "host": socket.gethostname()}))
    OutDirLock(out).acquire().release()
    assert not legacy.exists()


class Midway(Exception):
    pass


def _raise_midway(target: Path, write) -> None:
    """Open an atomic write of ``target``, ``write(staging)``, then raise before the write ends."""
    with atomic_write(target) as staging:
        write(staging)
        raise Midway


def _first_file_in_a_folder(staging: Path) -> None:
    staging.mkdir()
    (staging / "first.txt").write_text("written")


def test_a_file_write_that_raises_leaves_the_old_file_and_no_sibling(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(Midway):
        _raise_midway(target, lambda staging: staging.write_text("half of the ne"))
    assert target.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.csv"]
    with atomic_write(target) as staging:
        staging.write_text("new\n")
    assert target.read_text() == "new\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.csv"]


def test_a_folder_write_that_raises_leaves_the_old_folder_and_no_sibling(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "kept.txt").write_text("old")
    with pytest.raises(Midway):
        _raise_midway(target, _first_file_in_a_folder)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    assert sorted(path.name for path in target.iterdir()) == ["kept.txt"]
    with pytest.raises(Midway):
        _raise_midway(tmp_path / "new", Path.mkdir)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no half-made folder under either name
    with atomic_write(target) as staging:
        staging.mkdir()
        (staging / "first.txt").write_text("written")
    assert sorted(path.name for path in target.iterdir()) == ["first.txt"]  # replaced as a whole, not merged
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def _values() -> dict[str, object]:
    """A value for every registered file, with the awkward cases: a name that looks like a number,
    text that is not ASCII, a missing metric, a categorical column."""
    return {
        "summary.json": {"format": OUTPUT_FORMAT, "selected_features": ["007", "café"], "lambda": 0.125, "metrics": {"r2": None}},
        "importances.csv": pd.DataFrame(
            {
                "rank": [1, 2],
                "feature": ["007", "café"],
                "group": ["007", "g"],
                "selected": [True, False],
                "importance": [0.75, 0.0],
                "dense_norm": [2.5, 0.5],
            }
        ),
        "groups.csv": pd.DataFrame(
            {"rank": [1, 2], "group": ["007", "g"], "columns": ["007", "café"], "selected": [True, False], "importance": [0.75, 0.0]}
        ),
        "path.csv": pd.DataFrame({"step": [0, 1], "lambda": [0.0, 0.1], "n_selected": [2, 1], "val_loss": [0.5, 0.625]}),
        "path_norms.parquet": pd.DataFrame(
            {
                "step": np.array([0, 0, 1], dtype=np.int32),
                "group": pd.Categorical.from_codes([0, 1, 0], categories=["007", "g"]),
                "norm": [1.5, 0.25, 1.0],
            }
        ),
        "model.safetensors": {"layers.0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "layers.0.bias": torch.zeros(2)},
        "model.json": {"format": "glselect-model", "hidden": [], "inputs": ["007", "café"]},
    }


def test_the_registry_round_trips_every_artifact(tmp_path):
    values = _values()
    assert set(values) == set(ARTIFACT_FILES)  # the test covers every registered file
    out = tmp_path / "out"
    written = write_files(out, values, force=False)
    assert written == [out / name for name in ARTIFACT_FILES]
    assert sorted(path.name for path in out.iterdir()) == sorted(ARTIFACT_FILES)
    for artifact in ARTIFACTS:
        read = artifact.read(out / artifact.name)
        if isinstance(read, pd.DataFrame):
            pd.testing.assert_frame_equal(read, values[artifact.name])
            assert set(artifact.columns) <= set(read.columns)
        elif artifact.name.endswith(".safetensors"):
            assert read.keys() == values[artifact.name].keys()
            assert all(torch.equal(read[name], tensor) for name, tensor in values[artifact.name].items())
        else:
            assert read == values[artifact.name]
    assert ARTIFACT["importances.csv"].columns and not ARTIFACT["summary.json"].columns


def test_write_artifacts_takes_the_path_tables_and_the_saved_model_as_one_value_each(tmp_path):
    values = _values()
    network = GroupLassoMLP(2, (), 1)
    written = write_artifacts(
        tmp_path / "out",
        summary=values["summary.json"],
        importances=Importances(groups=values["groups.csv"], features=values["importances.csv"]),
        path=PathTables(steps=values["path.csv"], norms=values["path_norms.parquet"]),
        model=SavedModel(network=network, meta=values["model.json"]),
        force=False,
    )
    assert written == [tmp_path / "out" / name for name in ARTIFACT_FILES]
    pd.testing.assert_frame_equal(ARTIFACT["path.csv"].read(written[3]), values["path.csv"])
    pd.testing.assert_frame_equal(ARTIFACT["path_norms.parquet"].read(written[4]), values["path_norms.parquet"])
    assert ARTIFACT["model.json"].read(written[6]) == values["model.json"]
    weights = ARTIFACT["model.safetensors"].read(written[5])
    assert all(torch.equal(weights[name], tensor) for name, tensor in network.state_dict().items())


def test_a_writer_that_fails_leaves_the_earlier_output_whole(tmp_path):
    out = tmp_path / "out"
    write_files(out, _values(), force=False)
    before = {name: (out / name).read_bytes() for name in ARTIFACT_FILES}
    broken = {**_values(), "model.safetensors": {"layers.0.weight": "not a tensor"}}
    with pytest.raises(ValueError, match=r"expected torch\.Tensor"):  # safetensors refuses the value
        write_files(out, broken, force=False)
    assert {name: (out / name).read_bytes() for name in ARTIFACT_FILES} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
