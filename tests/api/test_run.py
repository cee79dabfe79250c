"""glselect.run, the Python API: it tells its progress callback of every stage and leaves the caller's thread count alone."""

from __future__ import annotations

import torch

from glselect.config import ModelConfig, PathConfig, RunConfig, SelectionConfig, TrainConfig
from glselect.pipeline import run


def test_progress_hears_of_every_stage(tmp_path, write_table, linear_table):
    stages: list[str] = []
    config = RunConfig(
        table=write_table(linear_table.head(150)),
        target="y",
        out=tmp_path / "out",
        seed=1,
        selection=SelectionConfig(cv=2),
        **_tiny(),
    )
    run(config, on_stage=lambda stage, done, total: stages.append(stage))
    assert list(dict.fromkeys(stages))[:3] == ["dense fit", "cv fold", "set 1 against all columns"]
    assert list(dict.fromkeys(stages))[-4:] == ["refit", "stand-ins", "permutation importance", "writing"]
    assert stages.count("cv fold") == 2


def _tiny() -> dict:
    from glselect.config import ImportanceConfig, ModelConfig

    return {
        "model": ModelConfig(hidden=()),
        "train": TrainConfig(max_iters=200),
        "path": PathConfig(lambda_step=2.0, max_iters_per_lambda=10, tol=0.1, relax_iters=10),
        "importance": ImportanceConfig(permutation_repeats=1),
    }


def test_run_leaves_the_callers_thread_count_alone(tmp_path, write_table, linear_table):
    from glselect import RunConfig, run

    torch.set_num_threads(2)
    run(RunConfig(table=write_table(linear_table), target="y", out=tmp_path / "o", threads=1, model=ModelConfig(hidden=())))
    assert torch.get_num_threads() == 2
