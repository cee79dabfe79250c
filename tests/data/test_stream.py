"""Streaming mode: the hashed split, one-pass encoding statistics, and streamed fits end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from glselect._synthetic import make_mixed_table
from glselect.cli.app import app
from glselect.data.encoder import build_encoder, fit_encoder
from glselect.data.parquet import open_source, row_groups_of_rank
from glselect.data.split import TEST, TRAIN, VAL, split_of
from glselect.data.stats import collect_stats, column_kinds
from glselect.errors import GlselectError
from glselect.options import parse_size
from tests.conftest import strong_linear_table, write_parquet

runner = CliRunner()
FAST = ["--batch-size", "128", "--learning-rate", "0.02", "--max-epochs", "3", "--max-steps", "40"]


def split_frame(df: pd.DataFrame, n_parts: int) -> list[pd.DataFrame]:
    return [df.iloc[rows] for rows in np.array_split(np.arange(len(df)), n_parts)]


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


def test_streamed_encoding_statistics_match_the_in_memory_encoder(tmp_path: Path) -> None:
    table = make_mixed_table(1500, seed=2)
    # a numeric code forced to categories: its labels must be spelt as the encoder spells them ("2.0")
    table["code"] = np.where(np.arange(1500) % 7 == 0, np.nan, np.arange(1500) % 4 + 1.0)
    path = write_parquet(table, tmp_path / "mixed.parquet", row_group_size=400)
    source = open_source(path)
    columns = [name for name in source.columns if name != "y"]
    forced = frozenset({"code"})
    kinds = column_kinds(source, columns, frozenset(), forced)
    stats = collect_stats(source.row_groups, source, "y", columns, kinds, seed=5, val_fraction=0.2, test_fraction=0.2)
    streamed = build_encoder(stats, source, "y", None, 20, frozenset(), forced)

    frame = pd.read_parquet(path)
    train_rows = np.flatnonzero(split_of(np.arange(len(frame)), 5, 0.2, 0.2) == TRAIN)
    in_memory = fit_encoder(frame, "y", fit_rows=train_rows, max_levels=20, categorical=forced)
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
    tiny_budget = _fit([str(path), "--target", "y", "--memory-budget", "1KB", "--out", str(tmp_path / "a"), "--max-epochs", "1"])
    assert "streaming" in tiny_budget
    in_memory = _fit([str(path), "--target", "y", "--out", str(tmp_path / "b")])
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


def test_parse_size() -> None:
    assert parse_size("4GB") == 4 << 30
    assert parse_size("512m") == 512 << 20
    assert parse_size("1.5 GiB") == int(1.5 * (1 << 30))
    assert parse_size("1000") == 1000
    with pytest.raises(GlselectError):
        parse_size("-1GB")


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


def test_the_streamed_solver_steps_as_torch_sgd_with_momentum() -> None:
    """HeavyBall stands in for torch.optim.SGD (whose import costs 70 MB): the same weights, bit for bit."""
    from glselect.solve.sgd import HeavyBall

    def trained(make_optimizer) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        optimizer = make_optimizer(list(model.parameters()))
        generator = torch.Generator().manual_seed(1)
        for _ in range(30):
            X, y = torch.randn(16, 6, generator=generator), torch.randn(16, 1, generator=generator)
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
        return [parameter.detach().clone() for parameter in model.parameters()]

    ours = trained(lambda parameters: HeavyBall(parameters, 0.05, 0.9))
    torchs = trained(lambda parameters: torch.optim.SGD(parameters, lr=0.05, momentum=0.9))
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))


def test_a_streamed_fit_from_the_command_line_keeps_its_memory_lean(tmp_path: Path) -> None:
    """In its own process, as a user runs it: Arrow on the system allocator and no torch._dynamo
    (each cost about 70 MB of a streamed fit's peak, benchmarks/streaming.py)."""
    import subprocess
    import sys

    path = write_parquet(strong_linear_table(1000), tmp_path / "data.parquet")
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
