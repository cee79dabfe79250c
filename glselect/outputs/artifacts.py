"""Write the out dir atomically and read the saved model back, without pickle.

The out dir is built in a temporary sibling and renamed into place at the end, so a failed or
interrupted run never leaves a directory that looks like a result. Everything is JSON, CSV,
Parquet or safetensors: loading never executes code from a file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyarrow import ArrowException
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glselect.select.crossval import CrossValidation
from glselect.data.encoder import Encoder
from glselect.errors import GlselectError
from glselect.data.groups import GroupIndex
from glselect.select.importance import Importances
from glselect.model.mlp import GroupLassoMLP
from glselect.outputs import schema
from glselect.path.walk import LambdaPath

OUTPUT_FORMAT = "glselect-output"
MODEL_FORMAT = "glselect-model"
FORMAT_VERSION = 1
ARTIFACT_FILES = (
    "summary.json",
    "importances.csv",
    "groups.csv",
    "path.csv",
    "path_norms.parquet",
    "model.safetensors",
    "model.json",
)


def is_glselect_output(directory: Path) -> bool:
    """True when ``directory`` holds a ``summary.json`` written by glselect."""
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("format") == OUTPUT_FORMAT


def check_out_dir(out_dir: Path, force: bool, protected: tuple[Path, ...] = ()) -> None:
    """Refuse, before any work is done, an out dir that would destroy something not ours.

    Parameters
    ----------
    protected
        Files the run reads (the table, the group map): even ``force`` never replaces a
        directory that holds them, nor one that holds the working directory.

    Raises
    ------
    GlselectError
        ``out_dir`` is a file, holds a protected path or the working directory, or is a
        non-empty directory that is not a glselect output (without ``force``).
    """
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise GlselectError(f"output path '{out_dir}' exists and is not a directory", hint="choose another --out")
    resolved = out_dir.resolve()
    for kept in (Path.cwd(), *protected):
        if resolved == kept.resolve() or resolved in kept.resolve().parents:
            raise GlselectError(
                f"output directory '{out_dir}' contains '{kept}', which replacing it would delete",
                hint="choose a new directory for --out",
            )
    if force or is_glselect_output(out_dir) or not any(out_dir.iterdir()):
        return
    raise GlselectError(
        f"output directory '{out_dir}' exists and is not a glselect output",
        hint="choose another --out, or pass --force to replace it",
    )


class OutDirLock:
    """The claim of one fit on its out dir: a lock file beside it, ``.<name>.lock``, naming the owner.

    Two fits writing one ``--out`` would both report success while the later rename silently
    replaces the earlier result; with the lock the second stops at once with exit 2. Taking the
    lock also proves, before any work, that the out dir's folder can be written. A lock left by a
    process that died (killed, the machine lost power) is taken over when its pid is gone on this
    host; one from another host is left alone, since its process cannot be checked from here.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir.parent / f".{out_dir.name}.lock"
        self._created: list[Path] = []  # folders made for the out dir, removed again if it is never written
        self._held = False

    def acquire(self) -> OutDirLock:
        """Take the lock, or raise ``GlselectError`` naming the run that holds it or why it cannot be written."""
        self._make_parents()
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):  # a second try after removing a dead owner's lock
            try:
                self._create(owner)
                self._held = True
                return self
            except FileExistsError:
                holder = self._holder()
                if not self._is_dead(holder):
                    self._drop_created()
                    pid, host = holder.get("pid", "?"), holder.get("host", "?")
                    raise GlselectError(
                        f"output directory '{self.out_dir}' is being written by another glselect run "
                        f"(pid {pid} on {host}; lock file '{self.path}')",
                        hint="wait for that run to finish or choose another --out; if no such run exists, delete the lock file",
                    ) from None
                self.path.unlink(missing_ok=True)
            except OSError as err:
                self._drop_created()
                raise GlselectError(f"cannot write output directory '{self.out_dir}': {err}", hint="choose another --out") from err
        raise GlselectError(f"cannot take the lock file '{self.path}': another run keeps replacing it", hint="choose another --out")

    def release(self, *, written: bool = True) -> None:
        """Give the lock up; without ``written``, also remove the folders made only for the out dir."""
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False
        if not written:
            self._drop_created()

    def _make_parents(self) -> None:
        folder = self.out_dir.parent
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        if not folder.is_dir():
            raise GlselectError(f"cannot write output directory '{self.out_dir}': '{folder}' is not a directory", hint="choose another --out")
        for path in reversed(missing):
            try:
                path.mkdir()
            except OSError as err:
                self._drop_created()
                raise GlselectError(f"cannot write output directory '{self.out_dir}': {err}", hint="choose another --out") from err
            self._created.append(path)

    def _create(self, owner: dict[str, Any]) -> None:
        # written whole under a private name, then linked into place: a reader never sees half an owner,
        # and os.link fails if the lock exists, so two runs cannot both take it
        staging = self.path.with_name(f"{self.path.name}-{os.getpid()}")
        try:
            staging.write_text(json.dumps(owner), encoding="utf-8")
            os.link(staging, self.path)
        finally:
            staging.unlink(missing_ok=True)

    def _holder(self) -> dict[str, Any]:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    @staticmethod
    def _is_dead(holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
            return not holder  # unreadable: not a lock we wrote; another host's: cannot be checked, assume alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, under another user
        return False

    def _drop_created(self) -> None:
        for path in reversed(self._created):
            try:
                path.rmdir()
            except OSError:
                break  # something else was put there meanwhile: keep it
        self._created = []


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
    return json.dumps(_json_ready(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def path_tables(
    path: LambdaPath, group_index: GroupIndex, cross_validation: CrossValidation | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``path.csv`` (one row per lambda) and ``path_norms.parquet`` (step, group, norm; non-zero norms only).

    With cross-validation, ``path.csv`` also has ``cv_loss`` and ``cv_se`` (mean relaxed loss over
    folds and its standard error) and ``cv_mean_selected`` (groups non-zero, averaged over folds).
    """
    scalars = pd.DataFrame(
        {
            "step": np.arange(len(path.steps)),
            "lambda": [step.lam for step in path.steps],
            "n_selected": [step.n_selected for step in path.steps],
            # encoded columns with non-zero weights: below the selected groups' width under --l1-ratio
            "n_selected_columns": [int(step.column_mask(group_index.group_ids).sum()) for step in path.steps],
            "train_loss": [step.train_loss for step in path.steps],
            "val_loss": [step.val_loss for step in path.steps],
            "relaxed_val_loss": [step.relaxed_val_loss for step in path.steps],
            "relaxed_val_se": [step.relaxed_val_se for step in path.steps],
            "objective": [step.objective for step in path.steps],
            "n_iters": [step.n_iters for step in path.steps],
            "converged": [step.converged for step in path.steps],
        }
    )
    if cross_validation is not None:
        scores = cross_validation.scores()
        scalars["cv_loss"] = scores.loss
        scalars["cv_se"] = scores.se
        scalars["cv_mean_selected"] = cross_validation.fold_sizes.mean(axis=0)
    norms = np.stack([step.group_norms for step in path.steps])
    step_index, group = np.nonzero(norms)  # long and sparse: wide tables have tens of thousands of groups
    long = pd.DataFrame(
        {
            "step": step_index.astype(np.int32),
            "group": pd.Categorical.from_codes(group, categories=list(group_index.names)),
            "norm": norms[step_index, group],
        }
    )
    return scalars, long


def model_document(
    model: GroupLassoMLP,
    encoder: Encoder,
    inputs: list[str],
    used_columns: list[str],
    max_norm: float,
    version: str,
) -> dict[str, Any]:
    """``model.json``: architecture, the encoding of the columns the model reads, and class labels."""
    columns = [column for column in encoder.columns if column.name in set(used_columns)]
    return {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "glselect_version": version,
        "task": encoder.target.task,
        "target": encoder.target.name,
        "event": encoder.target.event,
        "hidden": list(model.hidden),
        "n_inputs": model.n_inputs,
        "n_outputs": model.n_outputs,
        "max_norm": max_norm,
        "inputs": inputs,
        "encoder": Encoder(columns=tuple(columns), target=encoder.target).to_dict(),
        "tensors": {name: list(tensor.shape) for name, tensor in model.state_dict().items()},
    }


def write_artifacts(
    out_dir: Path,
    *,
    summary: dict[str, Any],
    importances: Importances,
    path_scalars: pd.DataFrame,
    path_norms: pd.DataFrame,
    model: GroupLassoMLP,
    model_meta: dict[str, Any],
    force: bool,
    protected: tuple[Path, ...] = (),
) -> list[Path]:
    """Write every artifact into ``out_dir`` atomically; return the paths written.

    Raises
    ------
    GlselectError
        ``out_dir`` cannot be replaced (see ``check_out_dir``) or written.
    """
    check_out_dir(out_dir, force, protected)
    parent = out_dir.parent
    staging = parent / f".{out_dir.name}.tmp-{os.getpid()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        (staging / "summary.json").write_text(dump_json(summary), encoding="utf-8")
        importances.features.to_csv(staging / "importances.csv", index=False)
        importances.groups.to_csv(staging / "groups.csv", index=False)
        path_scalars.to_csv(staging / "path.csv", index=False)
        path_norms.to_parquet(staging / "path_norms.parquet", index=False)
        (staging / "model.json").write_text(dump_json(model_meta), encoding="utf-8")
        tensors = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in model.state_dict().items()}
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": MODEL_FORMAT})
        # safetensors creates its file owner-only; give it the permissions of its neighbours
        (staging / "model.safetensors").chmod((staging / "model.json").stat().st_mode)
        if out_dir.exists():
            # an existing output is replaced as a whole, never merged with the new one
            retired = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(retired)
            try:
                staging.rename(out_dir)
            except BaseException:
                retired.rename(out_dir)  # interrupted between the two renames: put the old result back
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except OSError as err:
        raise GlselectError(f"cannot write output directory '{out_dir}': {err}") from err
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / name for name in ARTIFACT_FILES]


@dataclass(frozen=True)
class LoadedModel:
    """A pruned model read back from an out dir: the network, its encoding and its input names."""

    model: GroupLassoMLP
    encoder: Encoder
    inputs: tuple[str, ...]
    meta: dict[str, Any]


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
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
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
        tensors = load_file(str(weights_path))
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
        summary = schema.check_summary(json.loads((out_dir / "summary.json").read_text(encoding="utf-8")), out_dir / "summary.json")
        tables = {
            # names stay text: a column called '007' must not come back as the number 7
            "importances.csv": pd.read_csv(out_dir / "importances.csv", dtype={"feature": str, "group": str}, keep_default_na=False),
            "groups.csv": pd.read_csv(out_dir / "groups.csv", dtype={"group": str, "columns": str}, keep_default_na=False),
            "path.csv": pd.read_csv(out_dir / "path.csv"),
            "path_norms.parquet": pd.read_parquet(out_dir / "path_norms.parquet"),
        }
    except (OSError, ValueError, ArrowException) as err:
        if isinstance(err, GlselectError):
            raise
        raise GlselectError(f"cannot read the results in '{out_dir}': {err}") from err
    features, groups, path, path_norms = (schema.check_table(table, name, out_dir) for name, table in tables.items())
    schema.check_consistent(summary, path, out_dir / "summary.json")
    return Results(out_dir=out_dir, summary=summary, features=features, groups=groups, path=path, path_norms=path_norms)
