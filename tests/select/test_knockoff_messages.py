"""--fdr on a small table: why knockoff+ selected nothing, and --fdr-offset 0 (plain knockoff, the modified FDR)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.options import config_from
from glselect.pipeline import fit_frame
from glselect.select.knockoffs import KnockoffSelection, empty_selection_warning, knockoff_threshold
from tests.conftest import assert_user_error, knockoff_table

runner = CliRunner()
CHEAP_OPTIONS = {"hidden": "0", "permutation_repeats": 0, "max_iters": 200, "lambda_step": 1.3, "max_iters_per_lambda": 20}
CHEAP = [text for name, value in CHEAP_OPTIONS.items() for text in ("--" + name.replace("_", "-"), str(value))]


def test_knockoff_plus_and_plain_knockoff_thresholds_on_hand_made_statistics() -> None:
    W = np.array([5.0, 4, 3, 2, 1, -0.5, 0])
    # knockoff+: t = 0.5 gives (1 + 1) / 5 = 0.4, t = 1 gives (1 + 0) / 5 = 0.2; plain: t = 0.5 gives (0 + 1) / 5 = 0.2
    assert knockoff_threshold(W, 0.2) == 1.0 and knockoff_threshold(W, 0.2, offset=0) == 0.5
    # three clear positives: knockoff+ at 0.2 needs five, plain knockoff takes them
    assert knockoff_threshold(np.array([3.0, 2, 1]), 0.2) == np.inf
    assert knockoff_threshold(np.array([3.0, 2, 1]), 0.2, offset=0) == 1.0
    # plain knockoff still counts the negatives: at t = 1 one against two, at t = 2 none against two
    assert knockoff_threshold(np.array([3.0, 2, -1]), 0.1, offset=0) == 2.0


def selection(statistics: list[float], q: float, draws: int = 1, level: float | None = None) -> KnockoffSelection:
    W = np.tile(np.array(statistics), (draws, 1))
    return KnockoffSelection(
        q=q,
        level=q if level is None else level,
        statistics=W,
        thresholds=np.full(draws, np.inf),
        e_values=np.zeros(W.shape[1]),
        selected=np.zeros(W.shape[1], dtype=bool),
        gamma=1.0,
    )


def test_fewer_groups_than_one_over_q_is_named_as_impossible_with_the_smallest_fdr_that_can_select() -> None:
    assert empty_selection_warning(selection([2.0, 1, 1, 0.5, -0.1, 3, 2, 1], 0.1)) == (
        "knockoff+ cannot select anything here: at --fdr 0.1 it needs at least 10 groups with clearly positive statistics "
        "(the +1 of knockoff+), and this table has only 8; try --fdr 0.125 or larger, or --fdr-offset 0 (controls the modified FDR)"
    )
    # several draws: each draw's level decides, and plain knockoff has no e-values to average
    assert empty_selection_warning(selection([2.0, 1, 1, 0.5, -0.1, 3, 2, 1], 0.15, draws=3, level=0.1)) == (
        "knockoff+ cannot select anything here: at --fdr 0.15 (3 draws, each at level 0.1) it needs at least 10 groups with "
        "clearly positive statistics (the +1 of knockoff+), and this table has only 8; try --knockoff-draws 1 with --fdr 0.125 or larger"
    )


def test_an_empty_selection_at_fdr_0_1_says_why_and_plain_knockoff_selects_the_true_columns(tmp_path: Path) -> None:
    frame = knockoff_table(200, 2, 5, 1.0, p=12)  # 5 true columns of 12
    table = tmp_path / "t.csv"
    frame.to_csv(table, index=False)
    result = runner.invoke(app, ["fit", str(table), "-t", "y", "--out", str(tmp_path / "plus"), "--fdr", "0.1", *CHEAP])
    assert result.exit_code == 0, result.output
    block = json.loads((tmp_path / "plus" / "summary.json").read_text())["fdr"]
    n_positive = sum(value > 0 for value in block["statistic"].values())
    assert block["selected_groups"] == [] and block["offset"] == 1 and block["threshold_rule"] == "knockoff+" and n_positive < 10
    line = (
        "warning: knockoff+ selected nothing: at --fdr 0.1 it needs at least 10 groups with clearly positive statistics "
        f"(the +1 of knockoff+), and this table gave {n_positive}; try a larger --fdr, or --fdr-offset 0 (controls the modified FDR)"
    )
    assert line in result.stderr.splitlines(), result.stderr
    assert block["warning"] == line.removeprefix("warning: ")
    # the same table and seed: the statistics are the same, and the threshold without the +1 takes the clear ones
    plain = fit_frame(frame, config_from({"target": "y", **CHEAP_OPTIONS, "fdr": 0.1, "fdr_offset": 0}, table=table))
    plain_block = plain.summary["fdr"]
    assert plain_block["offset"] == 0 and plain_block["threshold_rule"] == "knockoff" and plain_block["e_bh_threshold"] is None
    assert plain.summary["config"]["selection"]["fdr_offset"] == 0 and "modified FDR" in plain_block["method"]
    assert plain_block["statistic"] == block["statistic"]
    assert {f"x{j}" for j in range(5)} <= set(plain.summary["selected_groups"]) and plain_block["warning"] is None


def test_plain_knockoff_with_several_draws_and_an_unknown_offset_are_usage_errors(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    knockoff_table(40, 0, 2, 1.0).to_csv(table, index=False)
    base = ["fit", str(table), "-t", "y", "--out", str(tmp_path / "out"), "--fdr", "0.1"]
    assert_user_error(
        runner.invoke(app, [*base, "--fdr-offset", "0", "--knockoff-draws", "3"]),
        "--fdr-offset 0 (plain knockoff) is for one draw: only knockoff+'s e-values can be averaged over --knockoff-draws; "
        "give one of them",
    )
    assert_user_error(
        runner.invoke(app, [*base, "--fdr-offset", "2"]),
        "fdr_offset must be 1 (knockoff+, controls the FDR) or 0 (knockoff, controls the modified FDR), got 2",
    )
