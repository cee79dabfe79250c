"""--goal auto: the smallest set as good as all columns, and what could stand in for each of its groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glselect.options import config_from
from glselect.outputs.report import SUMMARY_LINES, as_good_line, stand_ins_line, top_features_table
from glselect.pipeline import fit_frame
from glselect.select import standins
from glselect.select.smallest import Comparison, compare
from glselect.select.standins import column_t, cross_fitted_prediction, residualised
from tests.conftest import FAST, invoke, write_parquet

LINEAR = {"hidden": "0", "max_iters_per_lambda": 40, "permutation_repeats": 0}


def stand_in_table(n: int = 300, seed: int = 5) -> pd.DataFrame:
    """y = 3a - 2b + noise; ``a_copy`` is a exactly, ``a_echo`` a + noise (no signal of its own), n1..n3 noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.standard_normal(n) for name in ["a", "b", "n1", "n2", "n3"]})
    frame["a_copy"] = frame["a"]
    frame["a_echo"] = frame["a"] + 0.8 * rng.standard_normal(n)
    frame["y"] = 3 * frame["a"] - 2 * frame["b"] + 0.5 * rng.standard_normal(n)
    return frame


def test_a_set_is_as_good_within_one_paired_standard_error_or_a_negligible_difference():
    ours, dense = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 3.0, 3.0])
    comparison = compare(ours, dense)
    assert comparison.difference == 0.5
    assert comparison.se == pytest.approx(np.std([0, 1, 0, 1], ddof=1) / 2)
    assert not comparison.as_good  # 0.5 above 0.5 x 0.289: worse beyond the rows' noise
    assert compare(ours, dense, negligible=0.5).as_good  # but no more than a negligible share
    assert Comparison(-1.0, 0.0).as_good and Comparison(0.1, 0.25).as_good and not Comparison(0.2, 0.25).as_good


def test_the_stand_in_tests_predict_out_of_sample_and_score_what_the_model_still_misses(monkeypatch):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((200, 2))
    exact = 2 * Z[:, :1] - Z[:, 1:]
    # an exact linear relation is recovered on each half from a fit on the other
    np.testing.assert_allclose(cross_fitted_prediction(Z, exact), exact, atol=1e-10)
    # with Z's linear part taken out, what is left is uncorrelated with Z
    left = residualised(Z, exact + rng.standard_normal((200, 1)))
    assert np.abs(left.T @ Z).max() < 1e-8
    gradient = rng.standard_normal((200, 1))
    # a column equal to the residual: mean 1, spread sqrt(2) per row, so t = sqrt(200 / 2); a noise column's t is small
    candidates = np.hstack([gradient + 0.01 * rng.standard_normal((200, 1)), rng.standard_normal((200, 1)), np.ones((200, 1))])
    t = column_t(candidates, gradient)
    assert t[0] == pytest.approx(10, rel=0.15) and t[1] < 3
    assert t[2] == pytest.approx(abs(gradient.mean()) / (gradient.std(ddof=1) / np.sqrt(200)))  # each column its own t
    # the largest over the outputs, the same in chunks of any width
    two = np.hstack([rng.standard_normal((200, 1)), gradient])
    whole = column_t(candidates, two)
    assert whole[0] == pytest.approx(t[0])
    monkeypatch.setattr("glselect.select.standins.PRODUCT_CELLS", 400)  # one column per chunk
    np.testing.assert_allclose(column_t(candidates, two), whole)


@pytest.fixture(scope="module")
def fitted():
    return fit_frame(stand_in_table(), config_from({"target": "y", **LINEAR}, table=Path("t.csv")))


def test_the_default_keeps_one_of_two_exact_copies_and_names_the_other_its_substitute(fitted):
    summary = fitted.summary
    assert sorted(summary["selected_groups"]) in (["a", "b"], ["a_copy", "b"])
    kept = "a" if "a" in summary["selected_groups"] else "a_copy"
    other = "a_copy" if kept == "a" else "a"
    assert summary["stand_ins"]["selected"][kept]["substitutes"] == [other]
    assert not summary["stand_ins"]["selected"][kept]["together"]
    # the echo is correlated with a but carries nothing once a is in: a proxy, never selected
    assert summary["stand_ins"]["selected"][kept]["proxies"] == ["a_echo"]
    assert summary["stand_ins"]["own_signal"] == []
    as_good = summary["as_good_as_all"]
    assert as_good["as_good"] and as_good["compared_on"] == "cross-fit5"
    assert as_good["loss_difference"] <= max(0.5 * as_good["standard_error"], as_good["negligible"])
    groups = fitted.importances.groups.set_index("group")
    assert groups.loc[other, "stand_in"] == "substitute" and groups.loc[other, "stand_in_for"] == kept
    assert groups.loc["a_echo", "stand_in"] == "proxy" and not groups.loc["a_echo", "selected"]
    assert (groups.loc[["n1", "n2", "n3"], "stand_in"] == "").all()  # noise stands in for nothing


def test_the_printed_lines_say_the_rule_and_the_stand_ins(fitted):
    lines = [line for line in (describe(fitted.summary) for describe in SUMMARY_LINES) if line]
    as_good = fitted.summary["as_good_as_all"]
    kept = "a" if "a" in fitted.summary["selected_groups"] else "a_copy"
    other = "a_copy" if kept == "a" else "a"
    assert lines[0].startswith(
        "as good as all columns: the smallest set whose held-out loss is within 0.5 paired standard error of the best model "
        f"seen ({as_good['reference_groups']} groups) (difference "
    )
    assert lines[1] == f"stand-ins: {other} could stand in for {kept}; a_echo only echoes {kept}"


def test_a_selected_group_independent_of_the_others_has_no_stand_in(fitted):
    assert fitted.summary["stand_ins"]["selected"]["b"] == {"substitutes": [], "together": False, "proxies": []}


def test_a_streamed_fit_names_the_same_stand_ins(tmp_path):
    table = write_parquet(stand_in_table(1200, seed=6), tmp_path / "t.parquet")
    out = tmp_path / "out"
    # the stream's own settings: STREAM_FAST's 25 steps leave every refit short of the dense fit
    result = invoke("fit", table, "--target", "y", "--out", out, "--stream", *FAST, "--hidden", "0")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    kept = "a" if "a" in summary["selected_groups"] else "a_copy"
    assert "b" in summary["selected_groups"] and not {"a", "a_copy"} <= set(summary["selected_groups"])
    assert summary["stand_ins"]["selected"][kept]["substitutes"] == ["a_copy" if kept == "a" else "a"]
    assert "a_echo" not in summary["selected_groups"]


def test_a_set_not_shown_as_good_says_so_with_its_numbers():
    summary = {
        "as_good_as_all": {
            "noise_se": 0.5,
            "compared_on": "validation",
            "reference_groups": 8,
            "loss_difference": 0.0179,
            "standard_error": 0.0094,
            "negligible": 0.0066,
            "as_good": False,
            "dropped": ["x7", "x5"],
            "against_all": {"groups": 9, "loss_difference": 0.0123, "standard_error": 0.011},
        },
        "stand_ins": {"selected": {"r": {"substitutes": ["a", "b"], "together": True, "proxies": []}}, "own_signal": ["w"]},
    }
    assert as_good_line(summary) == (
        "not shown as good as all columns: no set the search tried came within 0.5 paired standard error of the best "
        "model seen (8 groups) (difference +0.0179 ± 0.0094; against all 9: +0.0123 ± 0.011, on the validation rows); "
        "dropped from the path's step: x7, x5"
    )
    assert stand_ins_line(summary) == "stand-ins: a and b together could stand in for r; signal of their own, not needed: w"


def test_the_printed_table_says_what_each_left_out_column_stands_in_for(fitted):
    table = top_features_table(fitted.importances.features, 8)
    columns = {column.header: list(column._cells) for column in table.columns}
    roles = dict(zip(columns["feature"], columns["stands in"]))
    kept = "a" if "a" in fitted.summary["selected_groups"] else "a_copy"
    other = "a_copy" if kept == "a" else "a"
    assert roles[other] == f"for {kept}" and roles["a_echo"] == f"echoes {kept}"
    assert roles[kept] == roles["b"] == roles["n1"] == ""


def test_all_relevant_selects_the_substitute_and_never_the_proxy():
    result = fit_frame(stand_in_table(), config_from({"target": "y", "goal": "all-relevant", **LINEAR}, table=Path("t.csv")))
    # the copy stands in for a and is selected with it; the echo is not, though the second round (run
    # without a and its copy) finds it
    assert sorted(result.summary["selected_groups"]) == ["a", "a_copy", "b"]
    assert result.summary["rule"].endswith(", all-relevant")
    groups = result.importances.groups.set_index("group")
    assert groups.loc["a_echo", "stand_in"] == "proxy" and not groups.loc["a_echo", "selected"]


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ("as_good_as_all", "noise_se", "lacks 'as_good_as_all.noise_se'"),
        ("as_good_as_all", "dropped", "lacks 'as_good_as_all.dropped'"),
        ("stand_ins", "own_signal", "lacks 'stand_ins.own_signal'"),
    ],
)
def test_a_summary_missing_a_field_the_lines_read_is_named_when_read_back(fitted, section, key, message):
    from glselect.errors import GlselectError
    from glselect.outputs.summary import check_summary

    document = json.loads(json.dumps(fitted.summary, default=str))
    assert check_summary(document, Path("summary.json")) is document  # the fit's own summary reads back
    del document[section][key]
    with pytest.raises(GlselectError, match=f"^'summary.json' is malformed: it {message}"):
        check_summary(document, Path("summary.json"))
    kept = next(iter(fitted.summary["stand_ins"]["selected"]))
    broken = json.loads(json.dumps(fitted.summary, default=str))
    broken["stand_ins"]["selected"][kept]["proxies"] = "a_echo"
    with pytest.raises(GlselectError, match=f"'stand_ins.selected.{kept}.proxies'"):
        check_summary(broken, Path("summary.json"))
    # what the rows were scored by may be absent (an earlier release's summary), not malformed
    earlier = json.loads(json.dumps(fitted.summary, default=str))
    del earlier["as_good_as_all"]["compared_by"]
    assert check_summary(earlier, Path("summary.json")) is earlier
    assert as_good_line(earlier) == as_good_line(fitted.summary)  # a number: "held-out loss" either way
    earlier["as_good_as_all"]["compared_by"] = 3
    with pytest.raises(GlselectError, match=r"'as_good_as_all\.compared_by'"):
        check_summary(earlier, Path("summary.json"))


def test_a_left_out_linear_combination_of_the_set_is_a_substitute_though_it_correlates_with_no_member():
    """d = the sum of seven true columns correlates about 0.38 with each (under the proxy threshold
    0.5), yet with the other six it determines any one of them: a substitute, which --goal
    all-relevant selects."""
    rng = np.random.default_rng(3)
    n, true = 400, ["a", "b", "c", "e", "f", "g", "h"]
    frame = pd.DataFrame({name: rng.standard_normal(n) for name in [*true, "n1", "n2"]})
    frame["d"] = frame[true].sum(axis=1)
    weights = [2.0, 1.5, -2.0, 1.5, -1.0, 1.0, -1.5]
    frame["y"] = frame[true].to_numpy() @ np.array(weights) + 0.3 * rng.standard_normal(n)
    assert frame[true].corrwith(frame["d"]).abs().max() < 0.45
    summary = fit_frame(frame, config_from({"target": "y", **LINEAR}, table=Path("t.csv"))).summary
    selected = set(summary["selected_groups"])
    assert len(selected) == 7 and selected <= {*true, "d"}
    left_out = ({*true, "d"} - selected).pop()
    substitutes = {name for found in summary["stand_ins"]["selected"].values() for name in found["substitutes"]}
    assert left_out in substitutes, summary["stand_ins"]
    relevant = fit_frame(frame, config_from({"target": "y", **LINEAR, "goal": "all-relevant"}, table=Path("t.csv"))).summary
    assert set(relevant["selected_groups"]) == {*true, "d"}


def test_classes_are_compared_by_the_brier_score_and_the_line_says_so():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f"x{i}": rng.standard_normal(400) for i in range(5)})
    frame["y"] = np.where(frame["x0"] - frame["x1"] + 0.3 * rng.standard_normal(400) > 0, "yes", "no")
    result = fit_frame(frame, config_from({"target": "y", **LINEAR}, table=Path("t.csv")))
    as_good = result.summary["as_good_as_all"]
    assert as_good["compared_by"] == "Brier score" and as_good["as_good"]
    assert {"x0", "x1"} <= set(result.summary["selected_groups"])
    line = as_good_line(result.summary)
    assert line is not None and line.startswith("as good as all columns: the smallest set whose held-out Brier score is within 0.5 ")


def test_a_number_is_compared_by_its_own_loss(fitted):
    assert fitted.summary["as_good_as_all"]["compared_by"] == "loss"


def test_stand_ins_for_classes_keep_the_loss_by_the_brier_score_the_set_was_chosen_by(monkeypatch):
    """A class target: the exact copy is the kept column's substitute and the noisy echo its proxy,
    and a replacement is judged by each row's Brier score, as the smallest-set search judged the set."""
    scored_by: list[str] = []
    row_losses = standins.selection_row_losses

    def recorded(selection, rows, row_loss):
        scored_by.append(row_loss.__name__)
        return row_losses(selection, rows, row_loss)

    monkeypatch.setattr(standins, "selection_row_losses", recorded)
    frame = stand_in_table().assign(y=lambda table: np.where(table["y"] > 0, "up", "down"))
    summary = fit_frame(frame, config_from({"target": "y", **LINEAR}, table=Path("t.csv"))).summary
    assert summary["as_good_as_all"]["compared_by"] == "Brier score"
    kept = ({"a", "a_copy"} & set(summary["selected_groups"])).pop()
    assert summary["stand_ins"]["selected"][kept]["substitutes"] == ["a_copy" if kept == "a" else "a"]
    assert "a_echo" in summary["stand_ins"]["selected"][kept]["proxies"]
    assert scored_by and set(scored_by) == {"comparison_row_loss"}


def test_a_replacement_that_differs_only_by_rounding_keeps_the_loss():
    """An exact copy's replacement leaves only float32 rounding in the row losses, a difference and
    a paired standard error both near 1e-9: it keeps the loss, though not within half a standard
    error; a real loss of a thousandth does not."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.05, 0.5, 300)
    rounding = base + 1e-9 * (1.0 + 0.1 * rng.standard_normal(300))
    assert not compare(rounding, base).as_good  # half a standard error alone fails it
    assert standins.keeps_loss(rounding, base)
    assert not standins.keeps_loss(base + 1e-3, base)


def test_a_table_of_60_rows_compares_sets_across_folds_where_confirmation_keeps_to_its_validation_rows():
    """9 validation rows: the search cross-fits its comparison over the 52 model rows (from
    ``smallest.SEARCH_CROSS_FIT_FROM_ROWS``), while confirmation's permutation test waits for 20."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"x{i}": rng.standard_normal(60) for i in range(8)})
    frame["y"] = 2 * frame["x0"] - 1.5 * frame["x1"] + 0.3 * rng.standard_normal(60)
    auto = fit_frame(frame, config_from({"target": "y", **LINEAR}, table=Path("t.csv"))).summary
    assert auto["sizes"]["val_rows"] == 9
    assert auto["as_good_as_all"]["compared_on"] == "cross-fit5" and auto["as_good_as_all"]["as_good"]
    assert auto["selected_groups"] == ["x0", "x1"]
    minimal = fit_frame(frame, config_from({"target": "y", **LINEAR, "goal": "minimal"}, table=Path("t.csv"))).summary
    assert minimal["confirmed_by"] == "validation" and minimal["selected_groups"] == ["x0", "x1"]
