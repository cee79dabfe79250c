"""``GroupLassoSelector``: glselect as a scikit-learn feature selector (``pip install glselect[sklearn]``).

The estimator's parameters are the fit options of ``glselect.options`` that an in-memory fit can
use, and it only stores them in ``__init__``; ``fit`` builds the ``RunConfig`` from them with the
same ``config_from`` the command line uses and calls the same ``pipeline.fit_frame``, so the two
cannot drift.
``save`` writes the same out dir as ``glselect fit``, and ``glselect.load`` reads one back.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.validation import _check_feature_names, _check_n_features, check_is_fitted

from glselect.config import RunConfig
from glselect.data.encoder import Encoder
from glselect.data.groups import resolve_patterns
from glselect.data.io import read_group_map
from glselect.data.names import with_suggestion
from glselect.errors import GlselectError, GlselectWarning
from glselect.options import SELECTOR_OPTIONS, config_from
from glselect.outputs.load import LoadedModel, load_model, load_results
from glselect.outputs.predict import predict_table
from glselect.outputs.report import run_warnings
from glselect.pipeline import MIN_ROWS, fit_frame, save_result

TARGET = "__target__"  # the name y takes inside the table; no user column is called this
# scikit-learn fits estimators on tables of 10 or 15 rows (check_estimator does): the selector fits
# them too, with a warning; the command line keeps its floor of MIN_ROWS
FEWEST_ROWS = 3  # one row each for training, validation and test


class TinyTableWarning(GlselectWarning):
    """A fit on fewer than ``MIN_ROWS`` rows: it ran, but its held-out scores rest on a row or two."""


def _as_input(X: Any) -> Any:
    """X as a DataFrame or a numpy array, after the checks scikit-learn users expect."""
    if sp.issparse(X):
        raise GlselectError("X is a sparse matrix: sparse input is not supported; pass a dense array or a DataFrame")
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    array = np.asarray(X)
    if array.ndim == 1:
        raise GlselectError(
            "Expected a 2D array, got a 1D array instead: Reshape your data with X.reshape(-1, 1) for one "
            "feature or X.reshape(1, -1) for one sample"
        )
    if array.ndim != 2:
        raise GlselectError(f"X must be 2-dimensional (rows x columns), got shape {array.shape}")
    if array.dtype.kind == "c":
        raise GlselectError("Complex data not supported: X has complex numbers")
    if array.shape[1] == 0:
        raise GlselectError(f"X has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    return array


def _check_group_columns(group_map: dict[str, str], names: list[str]) -> None:
    """Refuse a ``groups`` dict naming columns X lacks, in the selector's words (X, not a group-map file)."""
    resolved = resolve_patterns(group_map, names, TARGET, "groups")
    unknown = [name for name in resolved if name not in set(names)]
    if unknown:
        raise GlselectError(
            f"groups names column(s) not in X: {', '.join(map(repr, unknown[:5]))}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
            hint=with_suggestion(f"X's columns are: {', '.join(names[:20])}" + (" ..." if len(names) > 20 else ""), unknown[:5], names),
        )


def _as_frame(X: Any, names: list[str]) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=names)


class GroupLassoSelector(SelectorMixin, BaseEstimator):
    """Select the columns a neural network needs, by a group-lasso path (see the README).

    The parameters are ``glselect fit``'s options (``glselect.options.SELECTOR_OPTIONS``), with
    the same defaults; all are keyword-only. ``groups`` is a group-map file as for ``--groups``,
    or a dict ``{column or pattern: group}``. After ``fit``: ``support_`` (bool per input column),
    ``feature_importances_`` (path survival per column), ``path_`` (one row per lambda),
    ``summary_`` (``summary.json``), and ``predict``/``predict_proba`` through the refit model.
    """

    def __init__(self, **params: Any) -> None:
        # scikit-learn's rule: store the arguments, nothing else (validation happens in fit);
        # get_params reads their names and defaults from the signature set below the class
        arguments = _INIT_SIGNATURE.bind(self, **params)
        arguments.apply_defaults()
        for name, value in arguments.arguments.items():
            if name != "self":
                setattr(self, name, value)

    def _config(self) -> tuple[RunConfig, dict[str, str] | None]:
        """The run's config and group map, built from the parameters as the CLI builds it from its options."""
        values = {option.name: getattr(self, option.name) for option in SELECTOR_OPTIONS}
        if values["task"] == "survival":  # y is one column here; a survival target is two (time and event)
            raise GlselectError(
                "task='survival' is not offered by GroupLassoSelector: its target is two columns (time and event)",
                hint="use glselect fit DATA --task survival --time COL --event COL",
            )
        groups = values.pop("groups")
        if groups is None or isinstance(groups, Mapping):
            return config_from(values, table=Path("<X>"), target=TARGET), None if groups is None else dict(groups)
        config = config_from({**values, "groups": Path(groups)}, table=Path("<X>"), target=TARGET)
        return config, read_group_map(Path(groups))

    def _names(self, n_columns: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [str(name) for name in names] if names is not None else [f"x{j}" for j in range(n_columns)]

    def fit(self, X: Any, y: Any) -> GroupLassoSelector:
        """Fit the path on X (array or DataFrame, mixed types allowed) and y; choose and refit."""
        X = _as_input(X)
        if X.shape[0] < FEWEST_ROWS:
            raise GlselectError(
                f"X has {X.shape[0]} sample(s); glselect needs at least {FEWEST_ROWS} rows to fit "
                "(one each for training, validation and test)"
            )
        if X.shape[0] < MIN_ROWS:
            warnings.warn(
                f"X has {X.shape[0]} rows: fitted with what there is, but with fewer than {MIN_ROWS} the validation "
                "and test scores rest on a row or two and the selection is little more than a guess",
                TinyTableWarning,
                stacklevel=2,
            )
        _check_feature_names(self, X, reset=True)
        _check_n_features(self, X, reset=True)
        frame = _as_frame(X, self._names(X.shape[1]))
        target = np.asarray(y)
        if target.ndim != 1 or len(target) != len(frame):
            raise GlselectError(f"y must be 1-dimensional with one value per row of X, got shape {target.shape}")
        frame[TARGET] = target
        config, group_map = self._config()
        if group_map is not None:
            _check_group_columns(group_map, self._names(X.shape[1]))
        result = fit_frame(frame, config, group_map, min_rows=FEWEST_ROWS)
        for message in run_warnings(result.summary):  # what the command line prints as 'warning: ...'
            warnings.warn(message, GlselectWarning, stacklevel=2)
        self._set_result(result.summary, result.importances.features, result.path_scalars, self._names(frame.shape[1] - 1))
        self.result_ = result
        self.model_ = LoadedModel(
            model=result.selection.model,
            encoder=Encoder.from_dict(result.model_meta["encoder"]),
            inputs=tuple(result.model_meta["inputs"]),
            meta=result.model_meta,
        )
        return self

    def _set_result(self, summary: dict, features: pd.DataFrame, path: pd.DataFrame, names: list[str]) -> None:
        selected = set(summary["selected_features"])
        importance = dict(zip(features["feature"], features["importance"]))
        self.support_ = np.array([name in selected for name in names])
        self.feature_importances_ = np.array([float(importance.get(name, 0.0)) for name in names])
        self.path_ = path
        self.summary_ = summary
        if summary["task"] != "regression":
            self.classes_ = np.array(summary["classes"])

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def _frame(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "support_")
        X = _as_input(X)
        _check_feature_names(self, X, reset=False)
        _check_n_features(self, X, reset=False)
        return _as_frame(X, self._names(X.shape[1]))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the refit model: values (regression) or class labels (of ``classes_``'s type)."""
        frame = self._frame(X)
        predicted = predict_table(self.model_, frame)["prediction"].to_numpy()
        if self.summary_["task"] == "regression":
            return predicted.astype(np.float64)
        return np.asarray(predicted.tolist(), dtype=self.classes_.dtype)

    def transform(self, X: Any) -> Any:
        """X's selected columns: a numeric array when every selected column of a DataFrame is numeric (or
        boolean), whatever the types of the columns left out."""
        if not isinstance(X, pd.DataFrame) or not self._get_support_mask().any():
            return super().transform(X)
        selected = self._frame(X).loc[:, self._get_support_mask()]
        values = selected.to_numpy()
        if values.dtype == object and all(pd.api.types.is_numeric_dtype(dtype) for dtype in selected.dtypes):
            values = selected.to_numpy(dtype=np.float64, na_value=np.nan)  # e.g. ints beside booleans, or a nullable Int64
        return values

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The refit model on (X, y): R² for regression, accuracy for classification (as scikit-learn's
        ``RegressorMixin`` and ``ClassifierMixin`` score), so ``GridSearchCV`` can tune the selector alone."""
        check_is_fitted(self, "support_")
        predicted = self.predict(X)
        if self.summary_["task"] == "regression":
            return float(r2_score(y, predicted, sample_weight=sample_weight))
        return float(accuracy_score(np.asarray(y), predicted, sample_weight=sample_weight))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        frame = self._frame(X)
        if self.summary_["task"] == "regression":
            raise GlselectError("predict_proba needs a classification target; this selector was fitted for regression")
        frame = predict_table(self.model_, frame)
        return frame[[f"probability_{label}" for label in self.summary_["classes"]]].to_numpy()

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write the same out dir as ``glselect fit`` (then ``glselect show/predict/check`` work on it)."""
        check_is_fitted(self, "result_")
        return save_result(self.result_, Path(out_dir))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing cells are imputed and flagged
        tags.input_tags.string = True  # text columns are one-hot encoded
        tags.input_tags.categorical = True
        return tags


_INIT_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=option.default,
                annotation=dict[str, str] | str | Path | None if option.name == "groups" else option.type,
            )
            for option in SELECTOR_OPTIONS
        ),
    ],
    return_annotation=None,
)
GroupLassoSelector.__init__.__signature__ = _INIT_SIGNATURE  # type: ignore[attr-defined]


def _parameters_doc() -> str:
    """The numpydoc Parameters section, from the options' help texts."""
    lines = ["", "    Parameters", "    ----------"]
    for option in SELECTOR_OPTIONS:
        parameter = _INIT_SIGNATURE.parameters[option.name]
        lines.append(f"    {option.name} : {inspect.formatannotation(parameter.annotation)}, default {parameter.default!r}")
        lines.append(f"        {option.help}")
    return "\n".join(lines) + "\n"


GroupLassoSelector.__doc__ = (GroupLassoSelector.__doc__ or "").rstrip() + "\n" + _parameters_doc()


def _saved_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The selector's parameters as a saved run's config (``summary.json``) records them; defaults for any it lacks."""
    params = {}
    for option in SELECTOR_OPTIONS:
        section, _, name = option.field.rpartition(".")
        values = config.get(section, {}) if section else config
        params[option.name] = option.parse(values[name]) if name in values else option.default
    return params


def load(out_dir: str | Path) -> GroupLassoSelector:
    """A fitted ``GroupLassoSelector`` from an out dir written by ``glselect fit`` or ``save``.

    Raises
    ------
    GlselectError
        ``out_dir`` is not a glselect output, or its model files are missing or invalid.
    """
    results = load_results(Path(out_dir))
    try:
        params = _saved_params(results.summary["config"])
    except (TypeError, AttributeError, ValueError) as err:  # an edited summary.json: name it, as the loaders do
        if isinstance(err, GlselectError):
            raise
        raise GlselectError(f"'{Path(out_dir) / 'summary.json'}' is malformed: its 'config' does not parse ({err})") from err
    selector = GroupLassoSelector(**params)
    names = list(results.summary["columns"])
    selector.feature_names_in_ = np.array(names, dtype=object)
    selector.n_features_in_ = len(names)
    selector._set_result(results.summary, results.features, results.path, names)
    selector.model_ = load_model(Path(out_dir))
    return selector
