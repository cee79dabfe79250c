"""Recall without losing precision: the paired 1se rule, --cv auto, --goal, the redundancy-aware top k."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from glselect import distributed
from glselect.cli.app import app
from glselect.config import SelectionConfig
from glselect.path.moments import target_outputs
from glselect.path.walk import LambdaPath, PathStep
from glselect.select.choose import StepScores, choose_step
from glselect.select.relevant import first_order_t
from tests.conftest import STREAM_FAST

runner = CliRunner()


def _path_with_rows(counts, rows):
    steps = tuple(
        PathStep(
            lam=0.1 * i,
            n_selected=n,
            group_norms=np.r_[np.ones(n), np.zeros(4 - n)],
            train_loss=0.0,
            val_loss=float(r.mean()),
            objective=0.0,
            n_iters=1,
            converged=True,
            relaxed_val_loss=float(r.mean()),
            relaxed_val_se=float(r.std(ddof=1) / np.sqrt(r.size)),
            relaxed_val_rows=r.astype(np.float32),
        )
        for i, (n, r) in enumerate(zip(counts, rows))
    )
    return LambdaPath(steps=steps, dense_model=None, dense_training=None, lambda_max_estimate=1.0, n_rejected=0, complete=True)


def test_1se_measures_a_step_against_the_best_row_by_row():
    rng = np.random.default_rng(0)
    hard = rng.exponential(1.0, 400)  # rows hard for every support: each loss alone has a wide standard error
    # step 1 (3 groups) is the best; step 2 (2 groups) is worse on every row by 0.05, far under the
    # unpaired standard error (~0.05) but many paired ones; step 3 (1 group) differs only by row noise
    rows = [hard + 0.3, hard, hard + 0.05 + 0.01 * rng.standard_normal(400), hard + 0.02 * rng.standard_normal(400)]
    path = _path_with_rows([4, 3, 2, 1], rows)
    unpaired = StepScores(loss=np.array([r.mean() for r in rows]), se=np.array([r.std() / 20 for r in rows]), source="validation")
    assert choose_step(path, SelectionConfig(rule="1se"), unpaired)[0] == 3  # the old rule: anything within 0.05
    rows[3] = hard + 0.1 + 0.02 * rng.standard_normal(400)
    path = _path_with_rows([4, 3, 2, 1], rows)
    assert choose_step(path, SelectionConfig(rule="1se")) == (1, "1se")
    rows[2] = hard + 0.01 * rng.standard_normal(400)  # now no worse than the best, row by row: the sparser step wins
    path = _path_with_rows([4, 3, 2, 1], rows)
    assert choose_step(path, SelectionConfig(rule="1se")) == (2, "1se")


def test_paired_standard_error_is_that_of_the_row_differences():
    rows = np.array([[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0]])
    scores = StepScores(loss=rows.mean(axis=1), se=np.array([9.0, 9.0]), source="validation", rows=rows)
    np.testing.assert_allclose(scores.paired_se(0), [0.0, np.std([0.5, 0.5, 0.0, 1.0], ddof=1) / 2])
    assert scores.paired_se(0)[1] < rows[1].std(ddof=1) / 2


# --- --cv auto --------------------------------------------------------------------------------


def test_cv_auto_cross_validates_only_when_validation_rows_are_few():
    from glselect.select.crossval import AUTO_CV_BELOW_ROWS, AUTO_FOLDS, folds_for

    assert folds_for("auto", AUTO_CV_BELOW_ROWS - 1) == AUTO_FOLDS
    assert folds_for("auto", AUTO_CV_BELOW_ROWS) == 0
    assert folds_for(3, 10) == 3 and folds_for(0, 10) == 0


def test_confirmation_is_cross_fitted_when_validation_rows_are_few_or_the_path_is_cross_validated():
    from glselect.select.confirm import CROSS_FIT_FROM_ROWS, confirmation_folds
    from glselect.select.crossval import AUTO_CV_BELOW_ROWS, AUTO_FOLDS

    assert confirmation_folds(0, AUTO_CV_BELOW_ROWS - 1) == AUTO_FOLDS  # whatever --cv says: it costs refits, not paths
    assert confirmation_folds(0, CROSS_FIT_FROM_ROWS) == AUTO_FOLDS
    assert confirmation_folds(0, CROSS_FIT_FROM_ROWS - 1) == 0  # a handful of rows per fold: no
    assert confirmation_folds(0, AUTO_CV_BELOW_ROWS) == 0
    assert confirmation_folds("auto", AUTO_CV_BELOW_ROWS) == 0
    assert confirmation_folds(3, AUTO_CV_BELOW_ROWS - 1) == 3 and confirmation_folds(3, 10_000) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "many"], "--cv must be a whole number of folds (0: off) or 'auto', got 'many'"),
        (["--max-correlation", "0"], "max_correlation must be in (0, 1] (1: off), got 0.0"),
        (["--max-correlation", "1.5"], "max_correlation must be in (0, 1] (1: off), got 1.5"),
        (["--fdr", "0.2", "--cv", "auto"], "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
    ],
)
def test_bad_recall_options_exit_2_with_one_line(write_table, linear_table, args, message):
    result = runner.invoke(app, ["fit", str(write_table(linear_table)), "-t", "y", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == f"error: {message}"


def _near_copies(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """y leans on a and its near-copy a2 (correlation 0.96) and, less, on b: the path's last two
    survivors are the copies, a redundancy-aware top 2 is one copy and b."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "n1", "n2", "n3"]})
    df["a2"] = df["a"] + 0.3 * rng.standard_normal(n)
    df["y"] = 2 * (df["a"] + df["a2"]) + 1.0 * df["b"] + 0.5 * rng.standard_normal(n)
    return df


def test_max_features_skips_a_near_copy_of_a_column_taken(tmp_path):
    # streamed and under torchrun: tests/cli/test_distributed.py (both runs there take --max-correlation)
    data = tmp_path / "data.csv"
    _near_copies().to_csv(data, index=False)
    common = [str(data), "-t", "y", "--hidden", "0", "--max-features", "2", "--json", "-q"]
    taken = _selected([*common, "--out", str(tmp_path / "skip")])
    assert len(taken) == 2 and "b" in taken and len({"a", "a2"} & taken) == 1
    assert json.loads((tmp_path / "skip" / "summary.json").read_text())["confirmed_by"] is None  # top k: not confirmed
    # the path's own two survivors: both copies (what the walk avoids)
    assert _selected([*common, "--max-correlation", "1", "--out", str(tmp_path / "own")]) == {"a", "a2"}


def _selected(args: list[str]) -> set[str]:
    result = runner.invoke(app, ["fit", *args])
    assert result.exit_code == 0, result.output
    return set(json.loads(result.stdout)["selected_features"])


# --- --goal -----------------------------------------------------------------------------------


def _redundant(n: int = 500, seed: int = 1) -> pd.DataFrame:
    """y = a + b + c + noise; r = a + b exactly (make_classification's redundant kind); n1..n4 noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "c", "n1", "n2", "n3", "n4"]})
    df["r"] = df["a"] + df["b"]
    df["y"] = df["a"] + df["b"] + df["c"] + 0.5 * rng.standard_normal(n)
    return df


@pytest.mark.parametrize("stream", [False, True])
def test_all_relevant_keeps_a_redundant_column_and_no_noise(tmp_path, stream):
    # the stream's mini-batch refits spread their weight over a, b and r = a + b alike, so on the
    # 100 validation rows of a 500-row table, where confirmation is cross-fitted, it keeps all three
    # in its first selection; with 250 validation rows it tests on them, as a streamed table usually has
    table = _redundant(1300 if stream else 500)
    data = tmp_path / ("data.parquet" if stream else "data.csv")
    table.to_parquet(data, index=False) if stream else table.to_csv(data, index=False)
    common = [str(data), "-t", "y", "--hidden", "0", "--json", "-q"] + (["--stream", *STREAM_FAST] if stream else [])
    # the default, --goal auto, walks the rounds here (streamed: its gate reads the stream's own
    # sample) because one of a, b, r is left out with its first-order signal; in memory the
    # rounds without the gate (tests/outputs/test_artifacts.py's fixture runs the default in memory)
    goal = [] if stream else ["--goal", "all-relevant"]
    result = runner.invoke(app, ["fit", *common, *goal, "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["selected_features"]) == {"a", "b", "c", "r"}
    # the first selection keeps one way to make a + b; a later round, without it, finds the other
    rounds = summary["all_relevant_rounds"]
    assert len(rounds) >= 1 and set().union(*map(set, rounds)) < {"a", "b", "r"}
    assert summary["rule"].endswith(", all-relevant")
    assert summary["confirmed_by"] == ("validation" if stream else "cross-fit5")  # 260 and 100 validation rows
    if not stream:
        minimal = _selected([*common, "--goal", "minimal", "--out", str(tmp_path / "minimal")])
        assert "c" in minimal and len(minimal) < 4  # a redundant one of a, b, r is left out


def test_auto_walks_no_round_when_only_noise_is_left_out(tmp_path):
    # y = a + b + c: the minimal set is the three, the columns left are noise, so the gate stops
    # the rounds before the first path fit; with --max-features auto asks the minimal question alone
    table = _redundant().drop(columns="r")
    data = tmp_path / "data.csv"
    table.to_csv(data, index=False)
    common = [str(data), "-t", "y", "--hidden", "0", "--json", "-q"]
    result = runner.invoke(app, ["fit", *common, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["selected_features"]) == {"a", "b", "c"}
    assert summary["all_relevant_rounds"] == [] and summary["rule"] == "1se"
    result = runner.invoke(app, ["fit", *common, "--max-features", "2", "--out", str(tmp_path / "top")])
    assert result.exit_code == 0, result.output
    assert "all_relevant_rounds" not in json.loads(result.stdout)


def test_first_order_t_is_the_t_statistic_of_the_centred_products():
    rng = np.random.default_rng(0)
    n = 2000
    X = rng.standard_normal((n, 40))
    X[:, 39] = 3.0  # constant: no spread, t = 0
    y = X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(n)
    t = first_order_t(torch.as_tensor(X, dtype=torch.float32), target_outputs(torch.as_tensor(y), "regression", 1), distributed.Context())[
        :, 0
    ]
    products = (X[:, 1] - X[:, 1].mean()) * (y - y.mean())
    assert t[1] == pytest.approx(products.mean() / products.std(ddof=1) * np.sqrt(n), rel=1e-3)
    assert t[0] > 20 and t[1] > 10 and t[2:39].max() < 4 and t[39] == 0


def test_survival_outputs_are_martingale_residuals_that_see_a_hazard_column():
    rng = np.random.default_rng(1)
    n = 1500
    x = rng.standard_normal((n, 20))
    time = rng.exponential(1 / np.exp(0.8 * x[:, 0]))
    censor = rng.exponential(2.0, n)
    event = time <= censor
    y = np.where(event, 1 + np.minimum(time, censor), -(1 + np.minimum(time, censor)))  # data/survival.py's fold
    residuals = target_outputs(torch.as_tensor(y, dtype=torch.float32), "survival", 1)
    assert residuals.shape == (n, 1) and abs(float(residuals.sum())) < 1e-6  # Nelson-Aalen residuals sum to 0
    t = first_order_t(torch.as_tensor(x, dtype=torch.float32), residuals, distributed.Context())[:, 0]
    assert t[0] > 10 and t[1:].max() < 4
    classes = target_outputs(torch.tensor([0, 2, 1, 2]), "multiclass", 3)
    assert classes.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
