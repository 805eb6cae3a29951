"""Training checkpoints: everything needed to continue a run exactly where it stopped.

One `.npz` file, written atomically (`minicnn.core.save_npz_atomic`: temporary file, fsync, rename),
so a crash while saving leaves the previous checkpoint intact. It holds

    model.<name>    the model's state_dict (parameters and buffers such as BatchNorm statistics)
    optim.<name>    the optimizer's state_dict (lr, step count = the schedule position, momentum/Adam buffers)
    meta            one JSON string: format version, model name and config, epoch and batch position
                    of the data stream (which, with the seed, *is* the shuffling state, see
                    `minicnn.data.batching`), the engine RNG state (`minicnn.core.rng()`: dropout etc.),
                    the partial-epoch running sums, the metrics history and anything the caller adds
                    (dataset name, normalisation mean/std, ...).

To rebuild a model from a checkpoint use `minicnn.app.load_model` (one loader for every model file).

No pickle is used: the file loads with `np.load(path, allow_pickle=False)`.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import core
from minicnn.core import Layer

FORMAT_VERSION = 1
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
META_KEY = "meta"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model/optimizer it is loaded into."""


@dataclass
class Checkpoint:
    """The three parts of a checkpoint file (see the module docstring)."""

    meta: dict[str, Any]
    model_state: dict[str, np.ndarray]
    optim_state: dict[str, np.ndarray] = field(default_factory=dict)


def engine_rng_state() -> dict:
    """The engine RNG's bit-generator state (a JSON-friendly dict of ints and strings)."""
    return core.rng().bit_generator.state


def set_engine_rng_state(state: dict) -> None:
    core.rng().bit_generator.state = state


def save_checkpoint(path: str | os.PathLike, model: Layer, optimizer=None, meta: dict[str, Any] | None = None) -> None:
    """Write model, optimizer and `meta` (plus the engine RNG state) atomically to `path`.

    `meta` values must be JSON-serialisable (NumPy arrays and scalars are converted to lists/numbers).
    """
    info = {"format": FORMAT_VERSION, "engine_rng": engine_rng_state(), **(meta or {})}
    arrays = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({OPTIM_PREFIX + k: np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays[META_KEY] = np.array(json.dumps(info, default=_json_default))
    core.save_npz_atomic(path, arrays)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"save_checkpoint: cannot store {type(value).__name__} in the metadata")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`. Raises CheckpointError with a readable message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zlib.error) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from e
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a minicnn training checkpoint (no '{META_KEY}' entry)")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')}, this minicnn reads {FORMAT_VERSION}")
    model_state = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    optim_state = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    return Checkpoint(meta, model_state, optim_state)


def restore(ckpt: Checkpoint, model: Layer, optimizer=None, rng: bool = True) -> None:
    """Load the model (and optimizer) state; with `rng`, also put the engine RNG back where it was."""
    try:
        model.load_state_dict(ckpt.model_state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint does not fit this model: {e}") from e
    if optimizer is not None:
        if not ckpt.optim_state:
            raise CheckpointError("checkpoint holds no optimizer state")
        optimizer.load_state_dict(ckpt.optim_state)
    if rng:
        set_engine_rng_state(ckpt.meta["engine_rng"])
