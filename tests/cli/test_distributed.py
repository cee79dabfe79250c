"""torchrun: two local processes (gloo) select what one process selects, and write one out dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from glselect import distributed
from tests.conftest import invoke, strong_linear_table, write_parquet

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
OPTIONS = ["--batch-size", "128", "--learning-rate", "0.02", "--max-epochs", "3", "--max-steps", "40", "--lambda-step", "1.3"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``glselect fit ARGS`` on two local processes started by torchrun."""
    return subprocess.run(
        [*TORCHRUN, "-m", "glselect", "fit", *args, "--json", "--quiet", *OPTIONS],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_process(args: list[str]) -> dict:
    """The same fit in this process (no torchrun): its JSON summary."""
    result = invoke("fit", *args, "--json", "--quiet", *OPTIONS)
    assert result.exit_code == 0, result.output[-3000:]
    return json.loads(result.stdout)


def test_helpers_are_no_ops_in_one_process() -> None:
    context = distributed.SINGLE
    assert not distributed.launched_by_torchrun() or "RANK" in os.environ
    assert distributed.all_gather_objects(3, context) == [3]
    assert distributed.all_reduce_min(5, context) == 5
    distributed.barrier(context)
    assert not dist.is_initialized()


@pytest.mark.slow
def test_two_torchrun_processes_select_what_one_process_selects(tmp_path: Path) -> None:
    data = write_parquet(strong_linear_table(2000), tmp_path / "data.parquet", row_group_size=250)
    runs = tmp_path / "runs"
    runs.mkdir()
    # the redundancy-aware top k reads the validation rows, which every rank holds alike
    top_k = ["--max-features", "3", "--max-correlation", "0.7"]
    multi = _torchrun([str(data), "--target", "y", *top_k, "--out", str(runs / "multi")], tmp_path)
    assert multi.returncode == 0, multi.stderr[-3000:]
    single_summary = _one_process([str(data), "--target", "y", *top_k, "--stream", "--out", str(tmp_path / "single")])

    # (each rank checks at the end that all ranks hold identical weights, else the run fails with exit 1)
    # only rank 0 prints and writes: one JSON document, one out dir, no staging leftovers
    multi_summary = json.loads(multi.stdout)
    assert sorted(path.name for path in runs.iterdir()) == ["multi"]
    assert multi_summary["streaming"]["processes"] == 2 and single_summary["streaming"]["processes"] == 1
    assert multi_summary["selected_features"] == single_summary["selected_features"] == ["a", "b", "c"]
    # rank 0's saved model is usable like any other
    assert (runs / "multi" / "model.safetensors").exists()


@pytest.mark.slow
def test_torchrun_shares_a_single_row_group_by_rows(tmp_path: Path) -> None:
    """A Parquet file of one row group (what pandas writes for any table up to about a million rows): each
    rank reads its own range of the group's rows, and the ranks select what one process selects."""
    data = write_parquet(strong_linear_table(2000), tmp_path / "data.parquet", row_group_size=1 << 20)
    multi = _torchrun([str(data), "--target", "y", "--out", str(tmp_path / "multi")], tmp_path)
    assert multi.returncode == 0, multi.stderr[-3000:]
    single_summary = _one_process([str(data), "--target", "y", "--stream", "--out", str(tmp_path / "single")])
    multi_summary = json.loads(multi.stdout)
    assert multi_summary["streaming"]["processes"] == 2 and multi_summary["streaming"]["row_groups"] == 1
    # the hashed split gives every row the part one process gives it
    assert multi_summary["sizes"] == single_summary["sizes"]
    assert multi_summary["selected_features"] == single_summary["selected_features"] == ["a", "b", "c"]


@pytest.mark.slow
def test_torchrun_on_a_csv_selects_what_one_process_selects(tmp_path: Path) -> None:
    """Any table the single-process command accepts works under torchrun: every rank reads the CSV
    and trains on its share of the rows; the same selection options as in memory apply."""
    data = tmp_path / "data.csv"
    table = strong_linear_table(1000)
    table.insert(3, "r", table["a"] - table["b"])  # two of a, b, r make the third: it stands in, left out
    table.to_csv(data, index=False)
    options = ["--target", "y", "--cv", "2"]
    multi = _torchrun([str(data), *options, "--out", str(tmp_path / "multi")], tmp_path)
    assert multi.returncode == 0, multi.stderr[-3000:]
    # one process, no torchrun: the same command line fits the CSV in memory
    single_summary = _one_process([str(data), *options, "--out", str(tmp_path / "single")])
    multi_summary = json.loads(multi.stdout)
    assert multi_summary["streaming"]["processes"] == 2 and "streaming" not in single_summary
    assert multi_summary["scored_by"] == single_summary["scored_by"] == "cv2"
    for summary in (multi_summary, single_summary):
        selected = set(summary["selected_features"])
        assert "c" in selected and len(selected & {"a", "b", "r"}) == 2 and len(selected) == 3, summary["selected_features"]
        substitutes = {name for found in summary["stand_ins"]["selected"].values() for name in found["substitutes"]}
        assert substitutes == {"a", "b", "r"} - selected
        assert summary["as_good_as_all"]["compared_on"] == "cross-fit2"


@pytest.mark.slow
def test_bad_data_in_one_ranks_share_stops_every_rank(tmp_path: Path) -> None:
    # row groups alternate between the two ranks: only rank 1 reads the infinity, and rank 0 must
    # hear of it rather than wait for rank 1 forever
    table = strong_linear_table(1000)
    table.loc[300, "n2"] = float("inf")
    data = write_parquet(table, tmp_path / "data.parquet", row_group_size=250)
    result = _torchrun([str(data), "--target", "y"], tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("column 'n2' in") == 2, result.stderr[-3000:]  # both ranks report it
    assert not (tmp_path / "data.glselect").exists()


def _compare_weights(rank: int, init_file: str, differ: bool, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        if differ and rank == 1:
            with torch.no_grad():
                model.weight[0, 0] += 1e-6
        context = distributed.Context(rank=rank, world_size=2)
        try:
            distributed.check_same_weights(model, context)
            outcome = "same"
        except RuntimeError:
            outcome = "different"
        Path(results, f"rank{rank}").write_text(outcome)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_weight_check_catches_ranks_that_drift_apart(tmp_path: Path) -> None:
    # (the torchrun test above covers the other side: identical ranks pass the same check)
    torch.multiprocessing.spawn(_compare_weights, args=(str(tmp_path / "init"), True, str(tmp_path)), nprocs=2)
    assert [(tmp_path / f"rank{rank}").read_text() for rank in range(2)] == ["different", "different"]


@pytest.mark.slow
def test_torchrun_fits_a_survival_target_with_the_sparse_group_lasso_and_knockoffs(tmp_path: Path) -> None:
    # the three options that change the target, the penalty and the selection, together on two ranks:
    # each rank folds its own rows' events, applies the same combined prox and draws the same copies
    from glselect._synthetic import make_survival

    data = write_parquet(make_survival(2000, 8, 3, seed=4), tmp_path / "data.parquet", row_group_size=250)
    groups = tmp_path / "groups.csv"
    groups.write_text("feature,group\nx0,first\nx5,first\nx1,second\nx6,second\n")
    args = [
        str(data),
        "--task",
        "survival",
        "--time",
        "time",
        "--event-column",
        "event",
        "--groups",
        str(groups),
        "--hidden",
        "0",
        "--l1-ratio",
        "0.5",
        "--fdr",
        "0.5",
        "--out",
        str(tmp_path / "multi"),
    ]
    multi = _torchrun(args, tmp_path)
    assert multi.returncode == 0, multi.stderr[-3000:]

    summary = json.loads((tmp_path / "multi" / "summary.json").read_text())
    assert summary["task"] == "survival" and summary["event"] == "event"
    assert summary["streaming"]["processes"] == 2
    assert summary["rule"] == "fdr=0.5" and summary["fdr"]["draws"] == 1
    assert summary["config"]["model"]["l1_ratio"] == 0.5
    # the true columns x0, x1, x2 beat their copies (with 6 groups knockoff+ needs 1/Q = 2 selections, hence Q = 0.5)
    assert {"x0", "x1", "x2"} <= set(summary["selected_features"])
    assert summary["metrics"]["pruned"]["c_index"] > 0.65
