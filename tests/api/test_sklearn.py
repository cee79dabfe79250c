"""The scikit-learn selector: sklearn's own checks, pipelines, grid search, and parity with the CLI."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

import glselect
from glselect._synthetic import make_mixed_table
from glselect.errors import GlselectError
from glselect.options import OPTIONS, SELECTOR_OPTIONS
from glselect.sklearn import GroupLassoSelector, TinyTableWarning
from tests.conftest import SAMPLES, config_value, invoke

# scikit-learn's checks test the estimator's contract, not its selections: the smallest fits that still
# walk a path (a few coarse lambdas), refit and score: about 0.25 s a fit instead of 18 s on average.
# The rule's step (goal minimal) spares each fit the default's search, cross-fitted on tables this small
TINY = {
    "goal": "minimal",
    "hidden": (4,),
    "max_iters": 20,
    "max_iters_per_lambda": 5,
    "tol": 0.1,
    "relax_iters": 5,
    "lambda_step": 2.0,
    "max_steps": 5,
    "confirm": 0,
    "permutation_repeats": 0,
}
# fits whose selections the tests check: a coarser path than the default, still resolving the planted columns
QUICK = {"hidden": (4,), "lambda_step": 1.5, "max_iters_per_lambda": 20, "tol": 0.1, "relax_iters": 30}
QUICK_FLAGS = ["--hidden", "4", "--lambda-step", "1.5", "--max-iters-per-lambda", "20", "--tol", "0.1", "--relax-iters", "30"]


@pytest.mark.slow
def test_passes_scikit_learns_estimator_checks():
    # every check, the ones that fit on 10 and 15 rows included (a tiny table fits, with a warning)
    results = check_estimator(GroupLassoSelector(**TINY), on_skip=None, on_fail=None)
    failed = [(result["check_name"], repr(result["exception"])) for result in results if result["status"] not in ("passed", "skipped")]
    assert failed == [], failed
    assert len(results) >= 40


def test_a_tiny_table_fits_with_a_warning_and_fewer_than_three_rows_are_refused():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 2))
    with pytest.warns(TinyTableWarning, match="X has 8 rows: fitted with what there is, but with fewer than 20"):
        selector = GroupLassoSelector(**TINY).fit(X, X[:, 0])
    assert selector.summary_["sizes"]["rows"] == 8
    assert min(selector.summary_["sizes"][part] for part in ("train_rows", "val_rows", "test_rows")) >= 1
    assert selector.predict(X).shape == (8,)
    with pytest.raises(GlselectError, match=r"X has 2 sample\(s\); glselect needs at least 3 rows to fit"):
        GroupLassoSelector(**TINY).fit(X[:2], X[:2, 0])


def test_parameters_are_the_selector_options_with_the_config_defaults():
    params = GroupLassoSelector().get_params()
    assert set(params) == {option.name for option in SELECTOR_OPTIONS}
    assert params == {option.name: option.default for option in SELECTOR_OPTIONS}
    signature = inspect.signature(GroupLassoSelector)
    assert all(parameter.kind is parameter.KEYWORD_ONLY for parameter in signature.parameters.values())


def test_options_the_selector_cannot_use_are_not_parameters():
    for option in OPTIONS:
        if not option.in_selector:
            with pytest.raises(TypeError, match=f"unexpected keyword argument '{option.name}'"):
                GroupLassoSelector(**{option.name: SAMPLES[option.name][1]})


class _Stop(Exception):
    """Raised instead of fitting: these tests look only at what the selector hands to fit_frame."""


@pytest.fixture
def fit_frame_calls(monkeypatch):
    calls = []

    def fit_frame(table, config, group_map, min_rows):
        calls.append((config, group_map))
        raise _Stop

    monkeypatch.setattr("glselect.sklearn.fit_frame", fit_frame)
    return calls


def test_every_selector_option_reaches_the_config_as_from_the_command_line(fit_frame_calls, tmp_path):
    group_map = tmp_path / "map.csv"
    group_map.write_text("feature,group\na,g\nb,g\n")
    params = {option.name: SAMPLES[option.name][1] for option in SELECTOR_OPTIONS} | {"groups": str(group_map)}
    X = pd.DataFrame({name: np.arange(30.0) for name in "abcde"})
    with pytest.raises(_Stop):
        GroupLassoSelector(**params).fit(X, np.arange(30) % 2)
    [(config, read_map)] = fit_frame_calls
    assert config.groups == group_map and read_map == {"a": "g", "b": "g"}
    for option in SELECTOR_OPTIONS:
        if option.name != "groups":
            assert config_value(config, option.field) == SAMPLES[option.name][1], option.name


def test_groups_as_a_dict_is_the_group_map(fit_frame_calls):
    with pytest.raises(_Stop):
        GroupLassoSelector(groups={"x0": "pair", "x1": "pair"}).fit(np.ones((30, 3)), np.arange(30.0))
    [(config, group_map)] = fit_frame_calls
    assert config.groups is None and group_map == {"x0": "pair", "x1": "pair"}


@pytest.fixture(scope="module")
def linear_data():
    from tests.conftest import make_linear_table

    table = make_linear_table()
    y = table.pop("y")
    return table, y


def test_selector_contract_on_a_dataframe(linear_data):
    X, y = linear_data
    selector = GroupLassoSelector(hidden=()).fit(X, y)
    assert list(selector.get_feature_names_out()) == ["a", "b", "c"] or {"a", "b"} <= set(selector.get_feature_names_out())
    assert selector.get_support().dtype == bool and selector.get_support().shape == (8,)
    assert selector.transform(X).shape == (300, int(selector.get_support().sum()))
    assert selector.feature_importances_.argmax() == 0  # 'a' survives longest
    assert {"lambda", "n_selected", "relaxed_val_loss"} <= set(selector.path_.columns)
    assert np.corrcoef(selector.predict(X), y)[0, 1] > 0.95


def test_mixed_types_and_classification_with_probabilities():
    table = make_mixed_table(400, seed=3)
    y = np.where(table.pop("y") > 0, "high", "low")
    selector = GroupLassoSelector(**QUICK).fit(table, y)
    assert "colour" in selector.get_feature_names_out()
    probabilities = selector.predict_proba(table)
    assert probabilities.shape == (400, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert list(selector.classes_) == ["high", "low"]
    assert (selector.predict(table) == y).mean() > 0.8


def test_pipeline_and_grid_search(linear_data):
    X, y = linear_data
    pipeline = Pipeline([("select", GroupLassoSelector(hidden=())), ("model", LinearRegression())])
    search = GridSearchCV(pipeline, {"select__max_features": [1, 2, 3]}, cv=3).fit(X, y)
    assert search.best_params_["select__max_features"] in (2, 3)
    assert search.best_estimator_.named_steps["select"].get_support()[:2].all()  # a and b kept
    assert search.score(X, y) > 0.9


def test_save_and_load_use_the_cli_artifacts(linear_data, tmp_path):
    X, y = linear_data
    selector = GroupLassoSelector(**QUICK, goal="minimal").fit(X, y)  # the rule's step: saving is the question
    selector.save(tmp_path / "out")
    shown = json.loads(invoke("show", tmp_path / "out", "--json").stdout)
    assert shown["selected_features"] == list(selector.get_feature_names_out())
    loaded = glselect.load(tmp_path / "out")
    assert loaded.get_params() == selector.get_params()
    assert list(loaded.get_feature_names_out()) == list(selector.get_feature_names_out())
    assert np.allclose(loaded.predict(X), selector.predict(X), atol=1e-5)
    assert np.array_equal(loaded.transform(X.to_numpy()), selector.transform(X.to_numpy()))


def test_api_and_cli_select_the_same_columns(tmp_path):
    table = make_mixed_table(400, seed=4)
    table.to_csv(tmp_path / "t.csv", index=False)
    cli = invoke("fit", tmp_path / "t.csv", "-t", "y", *QUICK_FLAGS, "--json", "-q", "--out", tmp_path / "o")
    assert cli.exit_code == 0, cli.output
    from glselect.data.io import read_table

    frame = read_table(tmp_path / "t.csv")  # the same typed table the CLI read
    y = frame.pop("y")
    selector = GroupLassoSelector(**QUICK).fit(frame, y)
    assert list(selector.get_feature_names_out()) == json.loads(cli.stdout)["selected_features"]


def test_bad_parameters_are_value_errors(linear_data):
    X, y = linear_data
    with pytest.raises(ValueError, match="rule must be one of 1se, min, got 'best'"):
        GroupLassoSelector(rule="best").fit(X, y)


def test_the_cli_does_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys, glselect, glselect.cli.app; print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_selector_refers_survival_to_the_command_line():
    with pytest.raises(GlselectError, match="task='survival' is not offered by GroupLassoSelector"):
        GroupLassoSelector(task="survival").fit(np.zeros((30, 2)), np.arange(30.0))


def test_score_is_r2_for_regression_and_accuracy_for_classification(linear_data):
    from sklearn.metrics import accuracy_score, r2_score

    X, y = linear_data
    regressor = GroupLassoSelector(hidden=(), permutation_repeats=0).fit(X, y)
    assert regressor.score(X, y) == pytest.approx(r2_score(y, regressor.predict(X)))
    assert regressor.score(X, y) > 0.9
    labels = np.where(y > np.median(y), "up", "down")
    classifier = GroupLassoSelector(hidden=(), permutation_repeats=0).fit(X, labels)
    assert classifier.score(X, labels) == pytest.approx(accuracy_score(labels, classifier.predict(X)))
    assert 0.8 < classifier.score(X, labels) <= 1


def test_grid_search_tunes_the_selector_alone_by_its_score(linear_data):
    X, y = linear_data
    search = GridSearchCV(GroupLassoSelector(hidden=(), permutation_repeats=0, confirm=0), {"max_features": [1, 3]}, cv=2).fit(X, y)
    assert search.best_params_ == {"max_features": 3}  # y needs a, b and c: three columns predict it better than one
    assert search.cv_results_["mean_test_score"][1] > search.cv_results_["mean_test_score"][0]


def test_the_fits_warnings_reach_python_as_glselect_warnings():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = np.where(X["a"] > 0, "yes", "no").astype(object)
    y[:1] = "yse"  # a one-row class, a likely typo of 'yes'
    with pytest.warns(glselect.GlselectWarning) as caught:
        GroupLassoSelector(**{**TINY, "max_iters_per_lambda": 1, "tol": 1e-9}).fit(X, y)  # short of a --tol out of reach
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, glselect.GlselectWarning)]
    assert any("'yse'" in message and "'yes'" in message for message in messages), messages  # the reading report's
    assert any("stopped short of --tol" in message for message in messages), messages  # the path's


def test_a_groups_dict_naming_a_missing_column_names_it():
    X = pd.DataFrame({"age": np.arange(30.0), "income": np.arange(30.0) % 7})
    with pytest.raises(GlselectError, match=r"^groups names column\(s\) not in X: 'agee', 'zzz'$") as caught:
        GroupLassoSelector(groups={"agee": "g", "zzz": "g", "income": "g"}).fit(X, np.arange(30.0))
    assert caught.value.hint == "did you mean 'age' for 'agee'? X's columns are: age, income"


def test_transform_of_a_mixed_dataframe_is_numeric_when_the_selected_columns_are():
    table = make_mixed_table(400, seed=3)
    y = table.pop("y")
    selector = GroupLassoSelector(**TINY).fit(table, y)  # its support is set below: the fit only has to be one
    selector.support_ = np.array([name in ("dose", "noise", "flag") for name in table.columns])  # numbers and booleans
    reduced = selector.transform(table)
    assert reduced.dtype == np.float64 and reduced.shape == (400, 3)
    assert np.array_equal(reduced[:, 0], table["dose"].to_numpy(), equal_nan=True)
    selector.support_ = np.array([name in ("colour", "dose") for name in table.columns])  # text stays as it is
    assert selector.transform(table).dtype == object
