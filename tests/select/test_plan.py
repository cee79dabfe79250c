"""The selection plan: its conflict table, its documented overrides, the stage protocol and the summary's checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glselect.errors import GlselectError
from glselect.options import config_from
from glselect.outputs.schema import check_summary as schema_check_summary
from glselect.outputs.summary import FIELDS, SummaryFacts, check_summary, summary_document
from glselect.pipeline import fit_frame
from glselect.select.base import Part
from glselect.select.knockoffs import KNOCKOFF_COLUMNS
from glselect.select.plan import CONFLICTS, OVERRIDES, STAGES, resolve

CHEAP = {"hidden": "0", "max_iters": 200, "lambda_step": 1.3, "max_iters_per_lambda": 20}


def config(**values):
    return config_from({"target": "y", **values}, table=Path("t.csv"))


def names(**values) -> tuple[str, ...]:
    return resolve(config(**values)).names


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fdr": 0.1, "max_features": 3}, "--fdr and --max-features both choose the selected set: give one of them"),
        ({"fdr": 0.1, "cv": 5}, "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
        ({"fdr": 0.1, "cv": "auto"}, "--fdr selects by knockoffs, which use no cross-validation scores: drop --cv"),
        (
            {"fdr": 0.1, "goal": "all-relevant"},
            "--goal all-relevant and --fdr ask different questions: knockoffs test each group given all the others, "
            "so a redundant copy is never selected; give one of them",
        ),
        (
            {"max_features": 3, "goal": "all-relevant"},
            "--goal all-relevant and --max-features both choose the selected set: give one of them",
        ),
        # several conflicts at once: the first line of the table is the one raised
        (
            {"fdr": 0.1, "max_features": 3, "cv": 5, "goal": "all-relevant"},
            "--fdr and --max-features both choose the selected set: give one of them",
        ),
    ],
)
def test_each_conflict_stops_the_plan_with_its_exact_message(values, message):
    with pytest.raises(GlselectError) as raised:
        resolve(config(**values))
    assert str(raised.value) == message


def test_every_conflict_of_the_table_is_reachable_and_each_option_alone_is_not_one():
    assert len({conflict.message for conflict in CONFLICTS}) == len(CONFLICTS)
    for values in ({"fdr": 0.1}, {"max_features": 3}, {"cv": 5}, {"goal": "all-relevant"}, {"confirm": 0}):
        resolve(config(**values))  # no error: each option alone is fine


def test_the_default_plan_searches_the_smallest_set_as_good_as_all_columns_names_stand_ins_and_measures_permutation():
    assert names() == ("smallest", "stand-ins", "permutation", "leakage")


def test_max_features_turns_off_cross_validation_confirmation_and_the_all_relevant_rounds():
    assert names(max_features=3, cv=5, confirm=3.0) == ("top-k", "permutation", "leakage")
    assert names(max_features=3, goal="minimal") == ("top-k", "permutation", "leakage")
    # with --max-correlation 1 the path's own K survivors: the rule's stage reads --max-features
    assert names(max_features=3, cv=5, max_correlation=1.0) == ("rule", "permutation", "leakage")


def test_fdr_replaces_the_rule_and_turns_off_confirmation_and_the_all_relevant_rounds():
    assert names(fdr=0.2, confirm=3.0) == ("knockoffs", "permutation", "leakage")


def test_cv_confirm_goal_and_stability_each_add_their_own_stage():
    assert names(cv=5) == ("cross-validation", "smallest", "stand-ins", "permutation", "leakage")
    assert names(cv="auto") == ("cross-validation", "smallest", "stand-ins", "permutation", "leakage")
    assert names(confirm=0) == ("smallest", "stand-ins", "permutation", "leakage")  # the search does not use the confirmation test
    assert names(goal="minimal") == ("rule", "confirmation", "permutation", "leakage")
    assert names(goal="minimal", confirm=0) == ("rule", "permutation", "leakage")
    assert names(goal="all-relevant") == ("smallest", "stand-ins", "all-relevant", "permutation", "leakage")
    assert names(stability=2) == ("smallest", "stand-ins", "stability", "permutation", "leakage")


def test_every_plan_without_a_conflict_has_one_chooser_and_runs_its_stages_in_the_table_order():
    order = [step.stage.name for step in STAGES]
    options = {
        "fdr": [None, 0.2],
        "max_features": [None, 3],
        "cv": [0, 5],
        "goal": ["auto", "minimal", "all-relevant"],
        "confirm": [0, 3.0],
    }
    for combination in itertools.product(*options.values()):
        values = {key: value for key, value in zip(options, combination) if value is not None}
        try:
            plan = resolve(config(**values))
        except GlselectError:
            assert any(conflict.applies(config(**values).selection) for conflict in CONFLICTS)
            continue
        kinds = [stage.kind for stage in plan.stages]
        assert kinds.count("choose") == 1, values
        assert [order.index(name) for name in plan.names] == sorted(order.index(name) for name in plan.names)
        assert kinds == sorted(kinds, key=["score", "choose", "refine", "measure"].index)


def test_every_override_names_stages_of_the_table():
    known = {step.stage.name for step in STAGES}
    for override in OVERRIDES:
        assert set(override.turns_off) <= known and override.why


@pytest.fixture(scope="module")
def linear() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((240, 6)), columns=[f"x{i}" for i in range(6)])
    frame["y"] = 2 * frame["x0"] - frame["x1"] + 0.3 * rng.standard_normal(240)
    return frame


def test_each_stage_returns_its_named_columns_and_summary_fragment(linear):
    result = fit_frame(linear, config(**CHEAP, stability=1, cv=3, permutation_repeats=2))
    parts = {part.stage: part for part in result.parts}
    assert list(parts) == ["cross-validation", "smallest", "stand-ins", "stability", "permutation", "leakage"]
    n_groups = result.selection.group_mask.size
    assert set(parts["permutation"].group_columns) == {"permutation", "permutation_std"}
    assert set(parts["stability"].group_columns) == {"stability"}
    for part in parts.values():
        assert all(np.shape(values) == (n_groups,) for values in part.group_columns.values())
        assert set(part.summary) <= {entry.key for entry in FIELDS}
        assert part.seconds >= 0
    assert parts["smallest"].summary["scored_by"] == "cv3"
    assert parts["smallest"].summary["as_good_as_all"]["compared_on"] == "cross-fit3"
    assert set(parts["stand-ins"].group_columns) == {"stand_in", "stand_in_for"}
    assert set(parts["stability"].summary["stability"]) == {"pairs", "q", "threshold", "stable_groups", "expected_false_bound"}
    assert result.cross_validation is parts["cross-validation"].result and result.cross_validation.n_folds == 3
    assert result.stability is parts["stability"].result
    # the ranked tables hold every stage's columns, in the plan's column order, the knockoffs' blank
    groups = result.importances.groups
    assert list(groups.columns[-9:]) == [
        "stand_in",
        "stand_in_for",
        "permutation",
        "permutation_std",
        "stability",
        *KNOCKOFF_COLUMNS,
        "perm_not_positive",
    ]
    assert groups[list(KNOCKOFF_COLUMNS)].isna().all().all()
    by_group = dict(zip(groups["group"], groups["stability"]))
    assert by_group == dict(zip(result.summary["columns"], parts["stability"].group_columns["stability"]))
    # the summary's fields come in FIELDS order, each stage's fragment in its place
    order = [entry.key for entry in FIELDS]
    assert list(result.summary) == [key for key in order if key in result.summary]
    assert result.summary["scored_by"] == "cv3" and result.summary["stability"] == parts["stability"].summary["stability"]


def test_the_knockoff_stage_returns_its_columns_and_the_fdr_block(linear):
    result = fit_frame(linear, config(**CHEAP, fdr=0.2, permutation_repeats=0))
    part = next(part for part in result.parts if part.stage == "knockoffs")
    assert set(part.group_columns) == set(KNOCKOFF_COLUMNS)
    assert part.summary["scored_by"] == "knockoffs" and part.summary["fdr"]["q"] == 0.2
    assert result.knockoffs is part.result
    assert result.summary["confirmed_by"] is None and "all_relevant_rounds" not in result.summary


def _summary(linear) -> dict:
    return dict(fit_frame(linear, config(**CHEAP, permutation_repeats=0, confirm=0, goal="minimal")).summary)


def test_summary_validation_names_the_malformed_field(linear, tmp_path):
    summary = _summary(linear)
    file = tmp_path / "summary.json"
    assert check_summary(summary, file) is summary
    with pytest.raises(GlselectError, match=r"is malformed: 'rule' must be text, found 3$"):
        check_summary({**summary, "rule": 3}, file)
    without_task = {key: value for key, value in summary.items() if key != "task"}
    with pytest.raises(GlselectError, match=r"is malformed: it lacks 'task'$"):
        check_summary(without_task, file)
    with pytest.raises(GlselectError, match=r"is malformed: 'stability.q' must be a number, found 'many'"):
        check_summary(
            {**summary, "stability": {"pairs": 1, "q": "many", "threshold": 0.6, "stable_groups": [], "expected_false_bound": 0.1}}, file
        )
    with pytest.raises(GlselectError, match=r"is malformed: the file must be a JSON object, found \[1\]"):
        schema_check_summary([1], file)  # the readers' entry point checks against the same fields


def test_summary_document_refuses_a_fragment_it_does_not_define_or_would_not_read_back(linear):
    result = fit_frame(linear, config(**CHEAP, permutation_repeats=0, confirm=0, goal="minimal"))
    from glselect.data.open import frame_dataset

    run_config = config(**CHEAP, permutation_repeats=0, confirm=0, goal="minimal")
    data = frame_dataset(linear, run_config, None, result.path.dense_model.first_weight.device)
    facts = SummaryFacts(run_config, data, result.path, result.selection, result.summary["metrics"])
    summary = summary_document(facts, [Part("rule", summary={"scored_by": "validation"})])
    assert summary["scored_by"] == "validation" and summary["stability"] is None and "streaming" not in summary
    with pytest.raises(ValueError, match="no field\\(s\\) novelty"):
        summary_document(facts, [Part("new", summary={"novelty": 1})])
    with pytest.raises(ValueError, match="'scored_by' must be text, found 5"):
        summary_document(facts, [Part("rule", summary={"scored_by": 5})])
