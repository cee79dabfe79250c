"""The files of an out dir, one registry entry each: its name, how it is written and read, its columns.

A new output file is one ``Artifact`` in ``ARTIFACTS`` (and its value in the mapping given to
``write_artifacts``). Everything is JSON, CSV, Parquet or safetensors: reading never executes
code from a file. The checks of what was read are in ``outputs.schema`` and ``outputs.load``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from glselect.errors import GlselectError
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs import schema
from glselect.outputs.outdir import atomic_write, check_out_dir
from glselect.select.importance import Importances

MODEL_FORMAT = "glselect-model"
FORMAT_VERSION = 1


def _json_ready(value: Any) -> Any:
    """Plain JSON types; non-finite floats become null so every reader can parse the file."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dump_json(value: Any) -> str:
    """``value`` as indented JSON text, numpy scalars and paths made plain, non-finite floats as null."""
    return json.dumps(_json_ready(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _write_json(document: dict[str, Any], path: Path) -> None:
    path.write_text(dump_json(document), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False)


def _write_parquet(table: pd.DataFrame, path: Path) -> None:
    table.to_parquet(path, index=False)


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file(tensors, str(path), metadata={"format": MODEL_FORMAT})
    # safetensors creates its file owner-only; give it the permissions of its neighbours
    path.chmod(path.parent.stat().st_mode & 0o666)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _text_columns(*names: str) -> Callable[[Path], pd.DataFrame]:
    """A CSV reader that keeps ``names`` as text: a column called '007' must not come back as the number 7."""
    return lambda path: pd.read_csv(path, dtype=dict.fromkeys(names, str), keep_default_na=False)


@dataclass(frozen=True)
class Artifact:
    """One file of the out dir.

    Attributes
    ----------
    name
        The file name inside the out dir.
    write
        ``write(value, path)`` writes the value into the file at ``path``.
    read
        ``read(path)`` returns the value as written (a dict, a DataFrame, a dict of tensors),
        unchecked; it raises ``OSError`` or ``ValueError`` on a damaged file.
    columns
        For a table, the columns every reader relies on (checked by ``outputs.schema``); empty
        for a document or the weights.
    """

    name: str
    write: Callable[[Any, Path], None]
    read: Callable[[Path], Any]
    columns: tuple[str, ...] = ()


def _table_columns(name: str) -> tuple[str, ...]:
    return tuple(column for column, _ in schema.TABLE_COLUMNS[name])


# in the order they are written and listed
ARTIFACTS = (
    Artifact("summary.json", _write_json, _read_json),
    Artifact("importances.csv", _write_csv, _text_columns("feature", "group"), _table_columns("importances.csv")),
    Artifact("groups.csv", _write_csv, _text_columns("group", "columns"), _table_columns("groups.csv")),
    Artifact("path.csv", _write_csv, pd.read_csv, _table_columns("path.csv")),
    Artifact("path_norms.parquet", _write_parquet, pd.read_parquet, _table_columns("path_norms.parquet")),
    Artifact("model.safetensors", _write_tensors, _read_tensors),
    Artifact("model.json", _write_json, _read_json),
)
ARTIFACT = {artifact.name: artifact for artifact in ARTIFACTS}
ARTIFACT_FILES = tuple(ARTIFACT)


def model_tensors(model: GroupLassoMLP) -> dict[str, torch.Tensor]:
    """The model's weights as ``model.safetensors`` holds them: float32, contiguous."""
    return {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in model.state_dict().items()}


def write_files(out_dir: Path, values: Mapping[str, Any], *, force: bool, protected: tuple[Path, ...] = ()) -> list[Path]:
    """Write every registered file, from ``values`` (file name to value), into ``out_dir`` atomically.

    Returns
    -------
    list of Path
        The paths written, in registry order.

    Raises
    ------
    GlselectError
        ``out_dir`` cannot be replaced (see ``check_out_dir``) or written.
    """
    check_out_dir(out_dir, force, protected)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out_dir) as staging:
            staging.mkdir()
            for artifact in ARTIFACTS:
                artifact.write(values[artifact.name], staging / artifact.name)
    except OSError as err:
        raise GlselectError(f"cannot write output directory '{out_dir}': {err}") from err
    return [out_dir / name for name in ARTIFACT_FILES]


@dataclass(frozen=True)
class PathTables:
    """The path as the out dir keeps it: ``steps`` (``path.csv``, one row per lambda) and ``norms``
    (``path_norms.parquet``: step, group, norm; non-zero norms only). ``outputs.artifacts.path_tables`` builds both."""

    steps: pd.DataFrame
    norms: pd.DataFrame


@dataclass(frozen=True)
class SavedModel:
    """The pruned model as the out dir keeps it: its weights (``model.safetensors``) and the
    description that rebuilds it (``model.json``, from ``outputs.artifacts.model_document``)."""

    network: GroupLassoMLP
    meta: dict[str, Any]


def write_artifacts(
    out_dir: Path,
    *,
    summary: dict[str, Any],
    importances: Importances,
    path: PathTables,
    model: SavedModel,
    force: bool,
    protected: tuple[Path, ...] = (),
) -> list[Path]:
    """Write every artifact of a fit into ``out_dir`` atomically; return the paths written.

    Raises
    ------
    GlselectError
        ``out_dir`` cannot be replaced (see ``check_out_dir``) or written.
    """
    values = {
        "summary.json": summary,
        "importances.csv": importances.features,
        "groups.csv": importances.groups,
        "path.csv": path.steps,
        "path_norms.parquet": path.norms,
        "model.json": model.meta,
        "model.safetensors": model_tensors(model.network),
    }
    return write_files(out_dir, values, force=force, protected=protected)
