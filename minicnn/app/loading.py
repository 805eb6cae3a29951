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

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.core import Layer
from minicnn.data import standardize
from minicnn.files import FileFormatError, read_npz
from minicnn.models import build
from minicnn.models._registry import MAX_WIDTH  # the widest width a file may ask for (train's too)

from . import checkpoint as ckpt_io
from .frequency import compressed_from_arrays, fold_batchnorm, frequency_biases, to_frequency

CARRIED = ("dataset", "mean", "std", "input_shape", "class_names")  # descriptive meta entries
MAX_SIZE_OPTION = 4096  # any other int build option (classes, channels, image size, depth) at most this


class ModelFileError(ValueError):
    """A model file cannot be opened or rebuilt; the message says why and what to do."""


class UnnamedModelError(ModelFileError):
    """The file (a plain state dict, or a damaged meta) does not name its model: pass `name`."""


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


def check_config(name: Any, config: Any, path) -> None:
    """Refuse a model name or build config from a file that is not what `minicnn` writes, or that
    would make `build` allocate without bound (a crafted width 1e6): ModelFileError naming the file.
    Options are JSON scalars; `width` is in (0, MAX_WIDTH], other numbers in [0, MAX_SIZE_OPTION]."""
    if not isinstance(name, str):
        raise ModelFileError(f"{path}: expected the model name as a string, got {name!r:.60}")
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelFileError(f"{path}: expected the model config as a dict of options, got {config!r:.60}")
    for key, value in config.items():
        if value is None or isinstance(value, (bool, str)):
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModelFileError(f"{path}: model option {key}={value!r:.40} is not a number, string or bool")
        low, high = (0.0, MAX_WIDTH) if key == "width" else (0, MAX_SIZE_OPTION)
        if not (low < value if key == "width" else low <= value) or value > high:
            where = f"({low:g}, {high:g}]" if key == "width" else f"[{low:g}, {high:g}]"
            raise ModelFileError(f"{path}: model option {key}={value!r} is outside {where}; "
                                 f"the file is damaged or not made by minicnn")


def _rebuild(name: str, config: dict, frequency: dict | None, state: dict[str, np.ndarray],
             path) -> tuple[Layer, dict | None]:
    """build(name, **config), converted as `frequency` says (None: as the state's keys say), filled
    with `state` -> (model in eval mode, the conversion applied)."""
    check_config(name, config, path)
    if frequency is not None and not (isinstance(frequency, dict) and isinstance(frequency.get("biases", False), bool)
                                      and isinstance(frequency.get("batchnorm_folded", False), bool)):
        raise ModelFileError(f"{path}: expected the frequency entry as {{'biases': bool, 'batchnorm_folded': bool}}, "
                             f"got {frequency!r:.60}")
    try:
        model = build(name, **config)
    except MemoryError as e:
        raise ModelFileError(f"{path}: model {name!r} {config} does not fit in memory") from e
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: cannot rebuild model {name!r} {config}: {e}") from e
    if frequency is None and _has_coeffs(state):
        # files written before the meta said so: frequency biases show up as extra ".1.coeffs" keys
        plain = set(to_frequency(build(name, **config)).state_dict())
        frequency = {"biases": set(state) != plain}
    if frequency is not None:
        if frequency.get("batchnorm_folded"):  # each BatchNorm was folded into its convolution before the DCT
            fold_batchnorm(model)
        model = to_frequency(model)
        if frequency.get("biases"):
            frequency_biases(model)
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise ModelFileError(f"{path}: the stored weights do not fit {name} {config}: {e}") from e
    return model.eval(), frequency


def _open(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, checked by `read_npz` (a damaged file is refused here, whatever it is)."""
    try:
        return read_npz(path, what="model file (.npz)")
    except FileFormatError as e:
        raise ModelFileError(str(e)) from e


def load_model(path: str | os.PathLike, name: str | None = None, **config: Any) -> LoadedModel:
    """Open a training checkpoint, a compressed `.fr.npz` or (given `name`, and `config` if the model
    was not built with defaults) a plain state-dict `.npz`; see the module docstring.

    `name` (with `config`) also overrides the architecture a checkpoint or compressed file names;
    `config` without `name` is refused (it would be ignored).
    The file is read once, checked by `minicnn.files.read_npz`, and the model built from what was read
    (except a compressed file, which `read_compressed` still reads a second time).
    Raises ModelFileError (a ValueError) with a readable message.
    """
    path = Path(path)
    if config and name is None:
        raise ModelFileError(f"load_model: build options {sorted(config)} were given without the model name; "
                             f"they replace the file's config only with it: load_model(path, name, **config)")
    arrays = _open(path)
    files = set(arrays)
    override = name is not None
    if files == {"manifest", "payload"}:
        try:
            manifest, state = compressed_from_arrays(arrays, path)
        except (ValueError, KeyError) as e:
            raise ModelFileError(str(e)) from e
        meta, kind = manifest.get("meta", {}), "compressed"
        if not isinstance(meta, dict):
            raise ModelFileError(f"{path}: expected the manifest's meta as a dict, got {meta!r:.60}")
        model_name, model_config = meta.get("model"), meta.get("config", {})
        if not isinstance(model_config, dict):
            raise ModelFileError(f"{path}: expected the model config as a dict of options, got {model_config!r:.60}")
        model_config = dict(model_config)
        if meta.get("c5_conv"):  # files written before lenet5 took c5_conv
            model_config["c5_conv"] = True
        frequency = meta.get("frequency")
    elif ckpt_io.META_KEY in files:
        try:
            ckpt = ckpt_io.checkpoint_from_arrays(arrays, path)
        except ckpt_io.CheckpointError as e:
            raise ModelFileError(str(e)) from e
        meta, state, kind = ckpt.meta, ckpt.model_state, "checkpoint"
        model_name, model_config, frequency = meta.get("model"), meta.get("model_config", {}), None
    else:
        if not override:
            raise UnnamedModelError(f"{path}: a plain state dict does not name its model; give the model name")
        state = arrays
        meta, kind, model_name, model_config, frequency = {}, "state", name, config, None
    if override:
        model_name, model_config = name, config
    if model_name is None:
        raise UnnamedModelError(f"{path}: the file does not name its model; give the model name")
    wrong = [key for key in CARRIED if meta.get(key) is not None and not ckpt_io.META_TYPES[key][0](meta[key])]
    if wrong:
        raise ModelFileError(f"{path}: damaged file: wrong meta entries {wrong} "
                             f"({'; '.join(f'{k} must be {ckpt_io.META_TYPES[k][1]}' for k in wrong)})")
    model, frequency = _rebuild(model_name, model_config, frequency, state, path)
    shape = meta.get("input_shape")
    return LoadedModel(model, model_name, dict(model_config), kind, frequency,
                       tuple(shape) if shape is not None else None, meta.get("mean"), meta.get("std"),
                       meta.get("class_names"), meta.get("dataset"),
                       {k: v for k, v in meta.items() if k not in CARRIED})
