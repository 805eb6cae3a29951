"""One loader for every model file minicnn writes: `load_model(path)`.

    training checkpoint   `minicnn.app.checkpoint` (minicnn train, the experiments): names its model
                          and config, carries the dataset, normalisation and class names
    compressed .fr.npz    `minicnn.app.frequency.save_compressed`: kept DCT coefficients + a manifest
                          whose meta names the model (see `minicnn.app.frequency.describe`)
    plain state dict      `Layer.save` / `np.savez(**model.state_dict())`: give the model name

The architecture is always rebuilt with `minicnn.models.build(name, **config)`; a state holding DCT
coefficients goes into `to_frequency(model)` (and `frequency_biases` when its biases are in the
frequency domain too).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.core import Layer
from minicnn.data import standardize
from minicnn.models import build

from . import checkpoint as ckpt_io
from .frequency import frequency_biases, read_compressed, to_frequency

CARRIED = ("dataset", "mean", "std", "input_shape", "class_names")  # descriptive meta entries


class ModelFileError(ValueError):
    """A model file cannot be opened or rebuilt; the message says why and what to do."""


@dataclass
class LoadedModel:
    """A model read from a file, in eval mode, with what the file says about its inputs and outputs."""

    model: Layer
    name: str
    config: dict[str, Any]
    kind: str  # "checkpoint", "compressed" or "state"
    frequency: dict[str, Any] | None = None  # None, or {"biases": bool}: the DCT conversion applied
    input_shape: tuple[int, ...] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    class_names: list[str] | None = None
    dataset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def description(self) -> dict[str, Any]:
        """The file's descriptive entries (dataset, mean, std, input_shape, class_names) that are set,
        JSON-friendly: what a file written from this model should carry on."""
        values = {"dataset": self.dataset, "mean": self.mean, "std": self.std,
                  "input_shape": list(self.input_shape) if self.input_shape is not None else None,
                  "class_names": self.class_names}
        return {k: v for k, v in values.items() if v is not None}

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std per channel of x (N, C, H, W), as in training; x itself without mean/std."""
        return x if self.mean is None or self.std is None else standardize(x, self.mean, self.std)


def _has_coeffs(state: dict[str, np.ndarray]) -> bool:
    return any(k == "coeffs" or k.endswith(".coeffs") for k in state)


def _rebuild(name: str, config: dict, frequency: dict | None, state: dict[str, np.ndarray],
             path) -> tuple[Layer, dict | None]:
    """build(name, **config), converted as `frequency` says (None: as the state's keys say), filled
    with `state` -> (model in eval mode, the conversion applied)."""
    try:
        model = build(name, **config)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: cannot rebuild model {name!r} {config}: {e}") from e
    if frequency is None and _has_coeffs(state):
        # files written before the meta said so: frequency biases show up as extra ".1.coeffs" keys
        plain = set(to_frequency(build(name, **config)).state_dict())
        frequency = {"biases": set(state) != plain}
    if frequency is not None:
        model = to_frequency(model)
        if frequency.get("biases"):
            frequency_biases(model)
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise ModelFileError(f"{path}: the stored weights do not fit {name} {config}: {e}") from e
    return model.eval(), frequency


def _open(path: Path) -> set[str]:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            return set(f.files)
    except (OSError, ValueError, EOFError, zlib.error) as e:
        raise ModelFileError(f"{path}: not a readable .npz file ({e})") from e


def load_model(path: str | os.PathLike, name: str | None = None, **config: Any) -> LoadedModel:
    """Open a training checkpoint, a compressed `.fr.npz` or (given `name`, and `config` if the model
    was not built with defaults) a plain state-dict `.npz`; see the module docstring.

    `name` (with `config`) also overrides the architecture a checkpoint or compressed file names.
    Raises ModelFileError (a ValueError) with a readable message.
    """
    path = Path(path)
    files = _open(path)
    override = name is not None
    if files == {"manifest", "payload"}:
        try:
            manifest, state = read_compressed(path)
        except (ValueError, KeyError) as e:
            raise ModelFileError(str(e)) from e
        meta, kind = dict(manifest.get("meta", {})), "compressed"
        model_name, model_config = meta.get("model"), dict(meta.get("config", {}))
        if meta.get("c5_conv"):  # files written before lenet5 took c5_conv
            model_config["c5_conv"] = True
        frequency = meta.get("frequency")
    elif ckpt_io.META_KEY in files:
        try:
            ckpt = ckpt_io.load_checkpoint(path)
        except ckpt_io.CheckpointError as e:
            raise ModelFileError(str(e)) from e
        meta, state, kind = ckpt.meta, ckpt.model_state, "checkpoint"
        model_name, model_config, frequency = meta.get("model"), meta.get("model_config", {}), None
    else:
        if not override:
            raise ModelFileError(f"{path}: a plain state dict does not name its model; pass the model name "
                                 f"(--model NAME)")
        with np.load(path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        meta, kind, model_name, model_config, frequency = {}, "state", name, config, None
    if override:
        model_name, model_config = name, config
    if model_name is None:
        raise ModelFileError(f"{path}: the file does not name its model; pass the model name (--model NAME)")
    model, frequency = _rebuild(model_name, model_config, frequency, state, path)
    shape = meta.get("input_shape")
    return LoadedModel(model, model_name, dict(model_config), kind, frequency,
                       tuple(shape) if shape is not None else None, meta.get("mean"), meta.get("std"),
                       meta.get("class_names"), meta.get("dataset"),
                       {k: v for k, v in meta.items() if k not in CARRIED})
