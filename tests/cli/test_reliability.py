"""Killing a fit midway, resuming it, and byte-identical reruns."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glselect._synthetic import make_friedman1
from tests.conftest import ARTIFACTS, invoke

COMPARED = ("importances.csv", "groups.csv", "path.csv", "model.safetensors", "model.json")


def _fit_args(table: Path, out: Path, *extra: str) -> list[str]:
    # --tol 0.1: what is checked (a resumed walk repeats the uninterrupted one) holds at any tolerance
    return ["fit", str(table), "-t", "y", "--out", str(out), "-q", "--tol", "0.1", *extra]


def _fit_command(table: Path, out: Path, *extra: str) -> list[str]:
    """The fit in a process of its own, for the tests that signal it."""
    return [sys.executable, "-m", "glselect.cli.app", *_fit_args(table, out, *extra)]


@pytest.fixture(scope="module")
def slow_table(tmp_path_factory) -> Path:
    """A table whose fit takes several seconds, long enough to be interrupted midway."""
    path = tmp_path_factory.mktemp("data") / "friedman.parquet"
    make_friedman1(1500, 40, noise=1.0, seed=5).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def straight_fit(tmp_path_factory, slow_table) -> Path:
    """The uninterrupted fit of ``slow_table`` that every resumed fit must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("straight") / "out"
    result = invoke(*_fit_args(slow_table, out))  # in this process: only the killed fit needs one of its own
    assert result.exit_code == 0, result.output
    return out


def _interrupt(command: list[str], checkpoint: Path, signum: int) -> subprocess.CompletedProcess:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (checkpoint / "state.json").exists():  # wait until the path is under way
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # into the path, well before its end (a fit on an idle machine can finish within a second)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_killed_fit_leaves_no_output_and_resumes_to_the_same_result(tmp_path, slow_table, straight_fit, signum, code):
    out = tmp_path / "out"
    checkpoint = tmp_path / ".out.checkpoint"
    killed = _interrupt(_fit_command(slow_table, out), checkpoint, signum)
    assert killed.returncode == code, killed.stderr
    assert "Traceback" not in killed.stderr
    assert killed.stderr.startswith(f"interrupted: {out} was not written; rerun with --resume")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".out.checkpoint"]  # no staging directory left behind

    resumed = invoke(*_fit_args(slow_table, out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert not checkpoint.exists()  # removed once the result is whole
    assert json.loads((out / "summary.json").read_text())["path"]["resumed_from_step"] >= 0

    for name in COMPARED:
        assert (out / name).read_bytes() == (straight_fit / name).read_bytes(), name


@pytest.mark.slow
def test_a_killed_refit_keeps_the_previous_output_intact(tmp_path, slow_table):
    out = tmp_path / "out"
    assert invoke(*_fit_args(slow_table, out, "--hidden", "0")).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ARTIFACTS}
    killed = _interrupt(_fit_command(slow_table, out), tmp_path / ".out.checkpoint", signal.SIGTERM)
    assert killed.returncode == 143
    assert {name: (out / name).read_bytes() for name in ARTIFACTS} == before


def test_resume_refuses_a_checkpoint_from_other_settings(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    assert invoke("fit", table, "-t", "y", "--hidden", "0", "-q", "--out", tmp_path / "o").exit_code == 0
    (tmp_path / ".o.checkpoint").mkdir()
    (tmp_path / ".o.checkpoint" / "state.json").write_text(
        json.dumps({"version": 1, "fingerprint": "another run", "tensors": "t.safetensors"})
    )
    from safetensors.torch import save_file

    save_file({"norms": torch.zeros(1, 1)}, str(tmp_path / ".o.checkpoint" / "t.safetensors"))
    result = invoke("fit", table, "-t", "y", "--hidden", "0", "--resume", "--out", tmp_path / "o")
    assert result.exit_code == 2
    # after the reading report: the checkpoint is checked against the data that was read
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: the checkpoint in '{tmp_path / '.o.checkpoint'}' was made with other data or settings"]


def test_resume_without_a_checkpoint_starts_afresh(tmp_path, write_table, linear_table):
    result = invoke("fit", write_table(linear_table), "-t", "y", "--hidden", "0", "--resume", "-q", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["path"]["resumed_from_step"] is None


@pytest.mark.slow
def test_same_seed_gives_byte_identical_outputs_but_timings(tmp_path, write_table):
    # 150 rows: the search's comparisons are cross-fitted (30 validation rows) and it drops three noise
    # columns, warm-started; and a seed other than the default
    table = write_table(make_friedman1(150, 10, noise=0.5, seed=3))
    for name in ("first", "second"):
        fit = invoke(
            "fit",
            table,
            "-t",
            "y",
            "--out",
            tmp_path / name,
            "--hidden",
            "8",
            "--max-iters-per-lambda",
            "40",
            "--tol",
            "0.1",
            "--seed",
            "4",
            "-q",
        )
        assert fit.exit_code == 0, fit.output
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("first", "second")]
    for summary in summaries:
        summary.pop("timings")
        summary["config"].pop("out")
    assert summaries[0] == summaries[1]
    for name in COMPARED:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
