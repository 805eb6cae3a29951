"""Training checkpoints: everything needed to continue a run exactly where it stopped.

One `.npz` file, written atomically (`minicnn.files.save_npz_atomic`: temporary file, fsync, rename;
never onto a device, FIFO, folder or link),
so a crash while saving leaves the previous checkpoint intact. It holds

    model.<name>    the model's state_dict (parameters and buffers such as BatchNorm statistics)
    optim.<name>    the optimizer's state_dict (lr, step count = the schedule position, momentum/Adam buffers)
    meta            one JSON string: format version, model name and config, epoch and batch position
                    of the data stream (which, with the seed, *is* the shuffling state, see
                    `minicnn.data.batching`), the engine RNG state (`minicnn.core.rng()`: dropout etc.),
                    the partial-epoch running sums, the metrics history and anything the caller adds
                    (dataset name, normalisation mean/std, ...).

To rebuild a model from a checkpoint use `minicnn.app.load_model` (one loader for every model file).

No pickle is used: the file is read with `minicnn.files.read_npz`, which checks the whole archive
(a truncated or bit-flipped file is refused, never half-loaded); the meta's types are checked too.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import core
from minicnn.core import Layer
from minicnn.files import FileFormatError, read_npz, save_npz_atomic

FORMAT_VERSION = 1
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
META_KEY = "meta"


class CheckpointError(FileFormatError):
    """A checkpoint cannot be read or does not fit the model/optimizer it is loaded into (a ValueError;
    the message names the file and what is wrong)."""


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


def save_checkpoint(path: str | os.PathLike, model: Layer, optimizer=None, meta: dict[str, Any] | None = None,
                    *, overwrite: bool = False) -> None:
    """Write model, optimizer and `meta` (plus the engine RNG state) atomically to `path`.

    `meta` values must be JSON-serialisable (NumPy arrays and scalars are converted to lists/numbers).
    The file rule of `minicnn.files.safe_target` applies: a folder, device, FIFO or link is refused.
    By default (`overwrite=False`) an existing file this process did not write is refused
    (FileExistsError), so a checkpoint of another run is never replaced unseen; a file this process
    wrote (last epoch's checkpoint) is replaced. `overwrite=True` lets it replace a regular file a
    previous process wrote: a resumed run's own checkpoint (`fit` passes it on resume), or a file the
    user said to replace (--overwrite).
    """
    info = {"format": FORMAT_VERSION, "engine_rng": engine_rng_state(), **(meta or {})}
    arrays = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({OPTIM_PREFIX + k: np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays[META_KEY] = np.array(json.dumps(info, default=_json_default))
    save_npz_atomic(path, arrays, overwrite=overwrite)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"save_checkpoint: cannot store {type(value).__name__} in the metadata")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`. Raises CheckpointError with a readable message
    for a missing, damaged or foreign file and for meta entries of the wrong type."""
    path = Path(path)
    try:
        arrays = read_npz(path, what="training checkpoint", keys=(META_KEY,))
    except FileFormatError as e:
        raise CheckpointError(str(e)) from e
    return checkpoint_from_arrays(arrays, path)


def checkpoint_from_arrays(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> Checkpoint:
    """The Checkpoint in `arrays`, every array of the file `path` as `read_npz` returned them (so a
    caller that has read the file already need not read it again; `path` names the file in messages).
    Raises CheckpointError as `load_checkpoint` does."""
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: training checkpoint lacks ['{META_KEY}']; it holds {sorted(arrays)}")
    arrays = dict(arrays)
    raw = arrays.pop(META_KEY)
    try:
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ValueError(f"expected one JSON string, got {raw.dtype} of shape {raw.shape}")
        meta = json.loads(str(raw))
    except ValueError as e:  # also json.JSONDecodeError
        raise CheckpointError(f"{path}: damaged checkpoint: its '{META_KEY}' entry is not readable ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: damaged checkpoint: expected its '{META_KEY}' entry to be a JSON "
                              f"object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, this minicnn reads {FORMAT_VERSION}")
    wrong = [f"{key} ({_describe(meta[key])}, expected {what})" for key, (check, what) in META_TYPES.items()
             if key in meta and not check(meta[key])]
    if wrong:
        raise CheckpointError(f"{path}: damaged checkpoint: wrong meta entries: {'; '.join(wrong)}")
    model_state = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    optim_state = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    return Checkpoint(meta, model_state, optim_state)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:40]}"


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_number(v) for v in value)


def _partial(value: Any) -> bool:
    """None, or a partial epoch's running sums (`EpochState`); "pixels" (labels per image, >= 1) is absent
    in checkpoints written before segmentation training."""
    fields = {"epoch": _count, "batch": _count, "loss_sum": _number, "correct": _count, "seen": _count,
              "seconds": _number, "interrupted": lambda v: isinstance(v, bool),
              "pixels": lambda v: _count(v) and v >= 1}
    return value is None or (isinstance(value, dict) and set(value) in (set(fields), set(fields) - {"pixels"})
                             and all(check(value[k]) for k, check in fields.items() if k in value))


# meta entry -> (check, what it must be); entries written by `fit` and `minicnn train`
META_TYPES = {
    "model": (lambda v: isinstance(v, str), "a model name"),
    "model_config": (lambda v: isinstance(v, dict), "a dict of build options"),
    "dataset": (lambda v: isinstance(v, str), "a dataset name or path"),
    "class_names": (lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v), "a list of names"),
    "mean": (_numbers, "a list of numbers"),
    "std": (lambda v: _numbers(v) and all(s > 0 for s in v), "a list of positive numbers"),
    "input_shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(_count(n) and n > 0 for n in v),
                    "[C, H, W]"),
    "seed": (_count, "an int >= 0"),
    "batch_size": (lambda v: _count(v) and v > 0, "an int >= 1"),
    "epoch": (_count, "an int >= 0"),
    "partial": (_partial, "null or the partial epoch's running sums"),
    "history": (lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v), "a list of rows"),
    "seconds": (_number, "a number"),
    "engine_rng": (lambda v: isinstance(v, dict), "a bit-generator state"),
}


def restore(ckpt: Checkpoint, model: Layer, optimizer=None, rng: bool = True) -> None:
    """Load the model (and optimizer) state; with `rng`, also put the engine RNG back where it was."""
    try:
        model.load_state_dict(ckpt.model_state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint does not fit this model: {e}") from e
    if optimizer is not None:
        if not ckpt.optim_state:
            raise CheckpointError("checkpoint holds no optimizer state")
        try:
            optimizer.load_state_dict(ckpt.optim_state)
        except ValueError as e:
            raise CheckpointError(f"checkpoint's optimizer state does not fit: {e}") from e
    if rng:
        try:
            set_engine_rng_state(ckpt.meta["engine_rng"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint holds no usable engine RNG state ({e!r:.60})") from e
