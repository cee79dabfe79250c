"""Read an out dir back: the saved model for ``predict`` and ``glselect.load_model``, the result tables
for ``show``, ``report``, ``select`` and ``check``. Every field a reader uses is checked as it is read
(``outputs.schema``), and nothing is unpickled: loading never executes code from a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyarrow import ArrowException
from safetensors import SafetensorError

from glselect.data.encoder import Encoder
from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs import schema
from glselect.outputs.files import ARTIFACT, FORMAT_VERSION, MODEL_FORMAT
from glselect.outputs.outdir import is_glselect_output

RESULT_TABLES = ("importances.csv", "groups.csv", "path.csv", "path_norms.parquet")


@dataclass(frozen=True)
class LoadedModel:
    """A pruned model read back from an out dir: the network, its encoding and its input names.

    ``predict``, ``predict_proba`` and ``predict_table`` take a raw table (the fitted table's columns, as
    read: only those the model reads must be present) and encode it as the fit did (``Encoder.transform``).
    """

    model: GroupLassoMLP
    encoder: Encoder
    inputs: tuple[str, ...]  # the encoded columns the network reads, in its order
    meta: dict[str, Any]

    @property
    def task(self) -> str:
        return self.encoder.target.task

    def _outputs(self, frame: pd.DataFrame) -> torch.Tensor:
        """The network's outputs for every row of ``frame`` (float64, shape (n_rows, n_outputs))."""
        X = torch.from_numpy(self.encoder.transform(frame, self.inputs))
        with torch.no_grad():
            return self.model(X).double()

    def _probabilities(self, out: torch.Tensor) -> np.ndarray:
        if self.task == "binary":
            positive = torch.sigmoid(out[:, 0]).numpy()
            return np.stack([1.0 - positive, positive], axis=1)
        return torch.softmax(out, dim=1).numpy()

    def _predictions(self, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, class probabilities or None) from the network's outputs."""
        target = self.encoder.target
        if self.task == "survival":
            return out[:, 0].numpy(), None
        if self.task == "regression":
            return out[:, 0].numpy() * target.scale + target.center, None
        probabilities = self._probabilities(out)
        return np.asarray(target.classes, dtype=object)[probabilities.argmax(axis=1)], probabilities

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """One prediction per row of ``frame``, as ``glselect predict`` writes it: the class label
        (classification), the value in the target's units (regression), or the risk score (survival: the
        model's log-hazard; higher, the event comes sooner).

        Raises
        ------
        GlselectError
            A column the model reads is missing or has the wrong type.
        """
        return self._predictions(self._outputs(frame))[0]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), in the order of ``encoder.target.classes``.

        Raises
        ------
        GlselectError
            The model is not a classifier, or a column it reads is missing or has the wrong type.
        """
        if self.task not in ("binary", "multiclass"):
            raise GlselectError(f"predict_proba needs a classification model; this one was fitted for {self.task}")
        return self._probabilities(self._outputs(frame))

    def predict_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table ``glselect predict`` writes, indexed like ``frame``: ``risk_score`` (survival), ``prediction``
        (regression), or ``prediction`` and one ``probability_<label>`` column per class (classification)."""
        predictions, probabilities = self._predictions(self._outputs(frame))
        if self.task == "survival":
            return pd.DataFrame({"risk_score": predictions}, index=frame.index)
        table = pd.DataFrame({"prediction": predictions}, index=frame.index)
        if probabilities is not None:
            for index, label in enumerate(self.encoder.target.classes):
                table[f"probability_{label}"] = probabilities[:, index]
        return table


def load_model(out_dir: str | Path) -> LoadedModel:
    """Read ``model.json`` and ``model.safetensors`` from ``out_dir`` (no pickle, no code execution).

    Raises
    ------
    GlselectError
        A file is missing, corrupted, of another format or version, or does not match its architecture.
    """
    out_dir = Path(out_dir)
    meta_path, weights_path = out_dir / "model.json", out_dir / "model.safetensors"
    for required in (meta_path, weights_path):
        if not required.is_file():
            raise GlselectError(f"'{out_dir}' is not a glselect output: '{required.name}' is missing")
    try:
        meta = ARTIFACT["model.json"].read(meta_path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GlselectError(f"'{meta_path}' is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise GlselectError(f"'{meta_path}' is not a glselect model description")
    if meta.get("format_version") != FORMAT_VERSION:
        raise GlselectError(
            f"'{meta_path}' has format version {meta.get('format_version')!r}; this glselect reads version {FORMAT_VERSION}",
            hint="refit with this version of glselect",
        )
    encoder = schema.encoder_from_meta(meta, meta_path)
    n_inputs, hidden, n_outputs, inputs = schema.architecture_from_meta(meta, meta_path, encoder)
    try:
        tensors = ARTIFACT["model.safetensors"].read(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise GlselectError(f"'{weights_path}' is corrupted or not a safetensors file: {err}") from err
    # compared before the model is built: a tampered width must not allocate a huge network
    found = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if found != schema.tensor_shapes(n_inputs, hidden, n_outputs):
        raise GlselectError(f"'{weights_path}' does not match the architecture in '{meta_path.name}'", hint=schema.HINT)
    if not all(tensor.is_floating_point() and bool(torch.isfinite(tensor).all()) for tensor in tensors.values()):
        raise GlselectError(f"'{weights_path}' holds weights that are not finite numbers", hint=schema.HINT)
    model = GroupLassoMLP(n_inputs, hidden, n_outputs)
    model.load_state_dict(tensors)
    model.eval()
    return LoadedModel(model=model, encoder=encoder, inputs=inputs, meta=meta)


@dataclass(frozen=True)
class Results:
    """The tables of an out dir, as ``show``, ``report``, ``select`` and ``check`` read them."""

    out_dir: Path
    summary: dict[str, Any]
    features: pd.DataFrame  # importances.csv
    groups: pd.DataFrame  # groups.csv
    path: pd.DataFrame  # path.csv
    path_norms: pd.DataFrame  # path_norms.parquet: step, group, norm


def load_results(out_dir: str | Path) -> Results:
    """Read the result tables of ``out_dir``, every field a reader uses checked (``outputs.schema``).

    Raises
    ------
    GlselectError
        ``out_dir`` is not a glselect output, or one of its files is missing, unreadable or malformed.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise GlselectError(f"'{out_dir}' is not a directory", hint="pass the --out directory of a glselect fit")
    if not is_glselect_output(out_dir):
        raise GlselectError(f"'{out_dir}' is not a glselect output: 'summary.json' is missing or not ours")
    try:
        summary = schema.check_summary(ARTIFACT["summary.json"].read(out_dir / "summary.json"), out_dir / "summary.json")
        tables = {name: ARTIFACT[name].read(out_dir / name) for name in RESULT_TABLES}
    except (OSError, ValueError, ArrowException) as err:
        if isinstance(err, GlselectError):
            raise
        raise GlselectError(f"cannot read the results in '{out_dir}': {err}") from err
    features, groups, path, path_norms = (schema.check_table(table, name, out_dir) for name, table in tables.items())
    schema.check_consistent(summary, path, out_dir / "summary.json")
    return Results(out_dir=out_dir, summary=summary, features=features, groups=groups, path=path, path_norms=path_norms)
