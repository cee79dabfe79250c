"""Streamed fits end to end: the true columns, determinism, classification, the memory budget, every selection option,
the shared split, CUDA, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from glselect.cli.app import app
from tests.conftest import split_frame, strong_linear_table, write_parquet

runner = CliRunner()


FAST = ["--batch-size", "128", "--learning-rate", "0.02", "--max-epochs", "3", "--max-steps", "40"]


def _fit(args: list[str]):
    result = runner.invoke(app, ["fit", *args, "--json", "--quiet", *FAST])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_streamed_fit_recovers_the_true_columns_and_the_out_dir_works(tmp_path: Path) -> None:
    path = write_parquet(strong_linear_table(), tmp_path / "data.parquet")
    out = tmp_path / "out"
    summary = _fit([str(path), "--target", "y", "--stream", "--out", str(out)])
    assert summary["streaming"]["processes"] == 1
    assert {"a", "b", "c"} <= set(summary["selected_features"])
    assert len(summary["selected_features"]) <= 4
    assert summary["metrics"]["pruned"]["r2"] > 0.9
    ranked = pd.read_csv(out / "importances.csv")
    assert set(ranked["feature"][:3]) == {"a", "b", "c"}
    # the commands after fit read only the out dir: a streamed fit is an ordinary one to them
    predicted = runner.invoke(app, ["predict", str(out), str(path)])
    assert predicted.exit_code == 0, predicted.output
    assert len(pd.read_csv(__import__("io").StringIO(predicted.stdout))) == 3000
    assert runner.invoke(app, ["show", str(out)]).exit_code == 0
    checked = runner.invoke(app, ["check", str(out), "--expect", "a", "--forbid", "n1"])
    assert checked.exit_code in (0, 3) and "Traceback" not in checked.output


@pytest.mark.slow
def test_streamed_fit_is_deterministic_and_reads_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "parts"
    directory.mkdir()
    table = strong_linear_table(2400, seed=1)
    for index, chunk in enumerate(split_frame(table, 3)):
        write_parquet(chunk, directory / f"part-{index}.parquet", row_group_size=400)
    first = _fit([str(directory), "--target", "y", "--out", str(tmp_path / "one")])  # a directory always streams
    second = _fit([str(directory), "--target", "y", "--out", str(tmp_path / "two")])
    assert first["selected_features"] == second["selected_features"]
    for name in ("importances.csv", "groups.csv", "path.csv", "model.safetensors"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@pytest.mark.slow
def test_classification_streams_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({name: rng.standard_normal(2000) for name in ["a", "b", "n1", "n2"]})
    df["colour"] = rng.choice(["red", "green", "blue"], 2000)
    df["label"] = np.where(2 * df["a"] - df["b"] + 0.3 * rng.standard_normal(2000) > 0, "yes", "no")
    path = write_parquet(df, tmp_path / "labels.parquet")
    summary = _fit([str(path), "--target", "label", "--stream", "--out", str(tmp_path / "out")])
    assert summary["task"] == "binary" and summary["classes"] == ["no", "yes"]
    assert {"a", "b"} <= set(summary["selected_features"])
    assert summary["metrics"]["pruned"]["accuracy"] > 0.85


def test_memory_budget_decides_whether_a_parquet_table_streams(tmp_path: Path) -> None:
    path = write_parquet(strong_linear_table(400), tmp_path / "small.parquet", row_group_size=100)
    top = ["--max-features", "3"]  # what is selected is not the question: a top 3 spares the default's cross-fitted search
    tiny_budget = _fit([str(path), "--target", "y", "--memory-budget", "1KB", "--out", str(tmp_path / "a"), "--max-epochs", "1", *top])
    assert "streaming" in tiny_budget
    in_memory = _fit([str(path), "--target", "y", "--out", str(tmp_path / "b"), *top])
    assert "streaming" not in in_memory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stream"], "--stream needs a Parquet file or a directory of Parquet files, but"),
        (["--device", "tpu"], "device must be one of auto, cpu, cuda, got 'tpu'"),
        (["--memory-budget", "lots"], "--memory-budget must be a size like '4GB' or '512MB', got 'lots'"),
    ],
)
def test_bad_streaming_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "data.csv"
    strong_linear_table(100).to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "--target", "y", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data.glselect").exists()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("missing target", ["--target", "nope"], "target column 'nope' is not in"),
        ("not parquet", ["--target", "y"], "cannot read Parquet dataset"),
    ],
)
def test_bad_streamed_input_exits_2(tmp_path: Path, setup: str, args: list[str], message: str) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    write_parquet(strong_linear_table(200), directory / "part-0.parquet", row_group_size=100)
    if setup == "not parquet":
        (directory / "part-1.parquet").write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["fit", str(directory), "--stream", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data.glselect").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_device_cuda_without_a_gpu_is_a_user_error(tmp_path: Path) -> None:
    path = write_parquet(strong_linear_table(200), tmp_path / "data.parquet")
    for extra in ([], ["--stream"]):
        result = runner.invoke(app, ["fit", str(path), "--target", "y", "--device", "cuda", *extra])
        assert result.exit_code == 2
        assert "--device cuda was given but no CUDA GPU is available" in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("stream", [False, True])
def test_cuda_fit_end_to_end(tmp_path: Path, stream: bool) -> None:
    path = write_parquet(strong_linear_table(), tmp_path / "data.parquet")
    summary = _fit(
        [str(path), "--target", "y", "--device", "cuda", "--out", str(tmp_path / "out"), "--stream" if stream else "--no-stream"]
    )
    assert {"a", "b", "c"} <= set(summary["selected_features"])
    predicted = runner.invoke(app, ["predict", str(tmp_path / "out"), str(path)])
    assert predicted.exit_code == 0


@pytest.mark.slow
def test_a_streamed_fit_takes_every_selection_option(tmp_path: Path) -> None:
    """CV, stability, confirmation, permutation importance, class weights, neuron pruning, the
    sparse group lasso and a resumed run: the same command line works streamed as in memory."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({name: rng.standard_normal(1500) for name in ["a", "b", "n1", "n2", "n3"]})
    df["label"] = np.where(2 * df["a"] - df["b"] + 0.3 * rng.standard_normal(1500) > 1.2, "rare", "common")
    path = write_parquet(df, tmp_path / "labels.parquet", row_group_size=300)
    options = [
        "--cv",
        "2",
        "--stability",
        "1",
        "--class-weight",
        "balanced",
        "--neuron-penalty",
        "0.01",
        "--permutation-repeats",
        "2",
        "--hidden",
        "8",
        "--epochs-per-lambda",
        "0.5",
        "--l1-ratio",
        "0.3",
    ]
    out = tmp_path / "out"
    summary = _fit([str(path), "--target", "label", "--stream", "--out", str(out), "--resume", *options])
    assert {"a", "b"} <= set(summary["selected_features"]) and not {"n1", "n2", "n3"} & set(summary["selected_features"])
    assert summary["scored_by"] == "cv2" and summary["stability"]["pairs"] == 1
    assert summary["class_weights"]["rare"] > 1 > summary["class_weights"]["common"]
    assert summary["streaming"]["processes"] == 1
    assert summary["config"]["model"]["l1_ratio"] == 0.3 and summary["dropped_within_groups"] == []  # one column per group
    groups = pd.read_csv(out / "groups.csv").set_index("group")
    assert groups.loc["a", "permutation"] > 0 and groups.loc["n1", "permutation"] == 0
    assert {"cv_loss", "cv_se"} <= set(pd.read_csv(out / "path.csv").columns)
    assert summary["metrics"]["pruned"]["balanced_accuracy"] > 0.85


def test_streamed_and_in_memory_fits_of_one_table_share_the_split(tmp_path: Path) -> None:
    path = write_parquet(strong_linear_table(1000), tmp_path / "data.parquet", row_group_size=128)
    options = ["--hidden", "0", "--max-steps", "3", "--max-epochs", "1", "--out"]
    streamed = _fit([str(path), "--target", "y", "--stream", *options, str(tmp_path / "s")])
    in_memory = _fit([str(path), "--target", "y", "--no-stream", *options, str(tmp_path / "m")])
    for key in ("train_rows", "val_rows", "test_rows"):
        assert streamed["sizes"][key] == in_memory["sizes"][key]
    assert streamed["streaming"]["val_rows_scored"] == in_memory["sizes"]["val_rows"]


def test_a_streamed_fit_from_the_command_line_keeps_its_memory_lean(tmp_path: Path) -> None:
    """In its own process, as a user runs it: Arrow on the system allocator and no torch._dynamo
    (each cost about 70 MB of a streamed fit's peak, benchmarks/streaming.py)."""
    import subprocess
    import sys

    # 1,500 rows: 250+ validation rows, so the default search compares on them without cross-fitting
    path = write_parquet(strong_linear_table(1500), tmp_path / "data.parquet")
    script = (
        "import sys; from glselect.cli import main\n"
        f"sys.argv = ['glselect', 'fit', {str(path)!r}, '-t', 'y', '--stream', '-q', '--out', {str(tmp_path / 'out')!r}, "
        f"'--hidden', '4', *{FAST!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n"
        "import pyarrow; print(pyarrow.default_memory_pool().backend_name, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["system", "False"]
