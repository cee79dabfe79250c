"""Save the path's walking state between lambdas, and read it back for ``--resume``.

A checkpoint lives in a hidden sibling of the out dir (``.NAME.checkpoint``) and is removed once
the out dir is written. It is JSON plus safetensors, like every other file glselect reads, and
it carries a fingerprint of the data and settings so a resume never mixes two different runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glselect.errors import GlselectError
from glselect.outputs.outdir import atomic_write
from glselect.path.walk import PathState, PathStep
from glselect.solve.train import TrainResult

CHECKPOINT_VERSION = 3  # 2: per-row relaxed losses; 3: the last relaxed refit
STATE_FILE = "state.json"
# settings that change how the result is computed; the out dir, --force, threads and resume do not
IRRELEVANT_SETTINGS = ("out", "force", "threads", "resume", "table", "groups")
STEP_FIELDS = (
    "lam",
    "n_selected",
    "train_loss",
    "val_loss",
    "objective",
    "n_iters",
    "converged",
    "optimality",
    "relaxed_val_loss",
    "relaxed_val_se",
)


def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.checkpoint"


def fingerprint(settings: dict[str, Any], arrays: list[np.ndarray]) -> str:
    """A hash of the settings that shape the result and of the encoded data itself."""
    digest = hashlib.sha256()
    relevant = {key: value for key, value in settings.items() if key not in IRRELEVANT_SETTINGS}
    digest.update(json.dumps(relevant, sort_keys=True, default=str).encode())
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_checkpoint(directory: Path, state: PathState, run_fingerprint: str) -> None:
    """Write ``state`` so that a crash at any moment leaves the previous checkpoint or this one, whole."""
    directory.mkdir(parents=True, exist_ok=True)
    n_steps = len(state.steps)
    tensors = {f"model.{name}": tensor.detach().cpu().clone().contiguous() for name, tensor in state.model_state.items()}
    tensors |= {f"dense.{name}": tensor.detach().cpu().clone().contiguous() for name, tensor in state.dense_state.items()}
    if state.relaxed_state is not None and state.relaxed_columns is not None:  # where the next relaxed run starts
        tensors |= {f"relaxed.{name}": tensor.detach().cpu().clone().contiguous() for name, tensor in state.relaxed_state.items()}
        tensors["relaxed_columns"] = torch.from_numpy(state.relaxed_columns.astype(np.uint8))
    tensors["norms"] = torch.from_numpy(np.stack([step.group_norms for step in state.steps]).astype(np.float64))
    tensors["active"] = torch.from_numpy(state.active.astype(np.uint8))
    column_support = [step.column_support for step in state.steps if step.column_support is not None]
    if column_support:  # the sparse group lasso records it at every step, the dense one too
        tensors["column_support"] = torch.from_numpy(np.stack(column_support))
    # per-row relaxed losses (the paired 1se rule reads them): one row per step, one per scored support
    tensors["step_rows"] = torch.from_numpy(_stack_rows([step.relaxed_val_rows for step in state.steps]))
    tensors["support_rows"] = torch.from_numpy(_stack_rows([rows for _, _, rows in state.relaxed_by_support.values()]))
    tensor_file = f"tensors-{n_steps}.safetensors"
    save_file(tensors, str(directory / tensor_file))
    document = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": run_fingerprint,
        "tensors": tensor_file,
        "steps": [{field: getattr(step, field) for field in STEP_FIELDS} for step in state.steps],
        "lam": state.lam,
        "log_ratio": state.log_ratio,
        "previous_lam": state.previous_lam,
        "n_rejected": state.n_rejected,
        "first_step_retries": state.first_step_retries,
        "last_relaxed_size": state.last_relaxed_size,
        "relaxed": [[key.hex(), loss, se] for key, (loss, se, _) in state.relaxed_by_support.items()],
        "lambda_max_estimate": state.lambda_max_estimate,
        "solver_step": state.solver_step,
        "dense_training": [state.dense_training.n_iters, state.dense_training.best_val_loss, state.dense_training.stopped_early],
    }
    with atomic_write(directory / STATE_FILE) as staging:  # the rename is the commit point: state.json names its tensor file
        staging.write_text(json.dumps(document), encoding="utf-8")  # floats round-trip exactly (repr), NaN included
    for old in directory.glob("tensors-*.safetensors"):
        if old.name != tensor_file:
            old.unlink()


def load_checkpoint(directory: Path, run_fingerprint: str) -> PathState | None:
    """The saved state, or None when there is no checkpoint.

    Raises
    ------
    GlselectError
        The checkpoint was made with other data or settings, or is unreadable.
    """
    state_path = directory / STATE_FILE
    if not state_path.exists():
        return None
    try:
        document = json.loads(state_path.read_text(encoding="utf-8"))
        tensors = load_file(str(directory / document["tensors"]))
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise GlselectError(f"the checkpoint in '{directory}' is unreadable: {err}", hint="delete it and run without --resume") from err
    if document.get("version") != CHECKPOINT_VERSION or document.get("fingerprint") != run_fingerprint:
        raise GlselectError(
            f"the checkpoint in '{directory}' was made with other data or settings",
            hint="run without --resume to start afresh (the checkpoint is then replaced)",
        )
    norms = tensors["norms"].numpy()
    columns = tensors["column_support"].numpy() if "column_support" in tensors else None
    step_rows = _unstack_rows(tensors["step_rows"].numpy())
    support_rows = _unstack_rows(tensors["support_rows"].numpy())
    steps = [
        PathStep(
            group_norms=norms[index],
            column_support=None if columns is None else columns[index].copy(),
            relaxed_val_rows=step_rows[index],
            **raw,
        )
        for index, raw in enumerate(document["steps"])
    ]
    n_iters, best_val_loss, stopped_early = document["dense_training"]
    return PathState(
        steps=steps,
        lam=document["lam"],
        log_ratio=document["log_ratio"],
        previous_lam=document["previous_lam"],
        active=tensors["active"].numpy().astype(bool),
        n_rejected=document["n_rejected"],
        first_step_retries=document["first_step_retries"],
        last_relaxed_size=document["last_relaxed_size"],
        relaxed_by_support={bytes.fromhex(key): (loss, se, rows) for (key, loss, se), rows in zip(document["relaxed"], support_rows)},
        lambda_max_estimate=document["lambda_max_estimate"],
        solver_step=document["solver_step"],
        model_state={name[6:]: tensor for name, tensor in tensors.items() if name.startswith("model.")},
        dense_state={name[6:]: tensor for name, tensor in tensors.items() if name.startswith("dense.")},
        dense_training=TrainResult(n_iters=n_iters, best_val_loss=best_val_loss, stopped_early=stopped_early),
        relaxed_state={name[8:]: tensor for name, tensor in tensors.items() if name.startswith("relaxed.")} or None,
        relaxed_columns=tensors["relaxed_columns"].numpy().astype(bool) if "relaxed_columns" in tensors else None,
    )


def _stack_rows(rows: list[np.ndarray | None]) -> np.ndarray:
    """(len(rows), n validation rows) float32; an unscored entry (None) is a row of NaN."""
    width = max((r.size for r in rows if r is not None), default=0)
    stacked = np.full((len(rows), width), np.nan, dtype=np.float32)
    for index, r in enumerate(rows):
        if r is not None:
            stacked[index] = r
    return stacked


def _unstack_rows(stacked: np.ndarray) -> list[np.ndarray | None]:
    # a row's losses are finite once scored (a diverged support's NaN loss is never chosen either way)
    return [r.copy() if r.size and np.isfinite(r).any() else None for r in stacked]


class Checkpointer:
    """``on_checkpoint`` callback that saves at most every ``interval`` seconds (and always the first time)."""

    def __init__(self, directory: Path, run_fingerprint: str, interval: float = 2.0) -> None:
        self.directory = directory
        self.fingerprint = run_fingerprint
        self.interval = interval
        self._last = -float("inf")

    def __call__(self, state: PathState) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            save_checkpoint(self.directory, state, self.fingerprint)
            self._last = now
