"""The model registry: name -> constructor, the one way to build a registered model, and its natural input.

A constructor's defaults `in_channels` and `image_size` describe the images the model is made for:
`default_input(name)` is (in_channels, image_size, image_size) — 1x28x28 for lenet5, 3x32x32 for the
CIFAR nets, 3x224x224 for the ImageNet models, 3x299x299 for xception.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from minicnn.core import Layer

MODELS: dict[str, Callable[..., Layer]] = {}
MAX_WIDTH = 8.0  # the widest channel multiplier `build` accepts: width in (0, MAX_WIDTH]


def register(name: str):
    """Decorator: `@register("lenet5")` puts the constructor in MODELS under `name`."""

    def add(constructor: Callable[..., Layer]) -> Callable[..., Layer]:
        if name in MODELS:
            raise ValueError(f"register: model name {name!r} is already taken")
        MODELS[name] = constructor
        return constructor

    return add


def check_name(name: str) -> None:
    """ValueError naming the registered models unless `name` is one of them."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")


def _constructor(name: str) -> Callable[..., Layer]:
    check_name(name)
    return MODELS[name]


def build(name: str, **config: Any) -> Layer:
    """The registered model `name` built with `config` (keyword arguments of its constructor).

    Every command, experiment and file loader builds models here, so `(name, config)` is the whole
    description of an architecture (checkpoints and compressed files store exactly that).
    Raises ValueError for an unknown name, an option the constructor does not take, or a `width`
    (channel multiplier) that is not a number in (0, MAX_WIDTH], before anything is built.
    """
    constructor = _constructor(name)
    accepted = inspect.signature(constructor).parameters
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r}: unknown option(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(accepted)}")
    width = config.get("width", 1.0)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        raise ValueError(f"model {name!r}: expected width in (0, {MAX_WIDTH:g}], got {width!r:.40}")
    return constructor(**config)


def default_input(name: str) -> tuple[int, int, int]:
    """The input (C, H, W) model `name` is made for: its constructor's default in_channels, and its default
    image_size as H and W. ValueError for an unknown name or a constructor without both defaults."""
    accepted = inspect.signature(_constructor(name)).parameters
    defaults = [accepted[k].default if k in accepted else None for k in ("in_channels", "image_size")]
    if not all(isinstance(v, int) for v in defaults):
        raise ValueError(f"model {name!r}: its constructor has no default in_channels and image_size, so it "
                         f"has no natural input shape; give one (C, H, W)")
    c, size = defaults
    return c, size, size


def config_for(name: str, input_shape: tuple[int, ...], **options: Any) -> dict[str, Any]:
    """The `build` options of model `name` for images of `input_shape` (C, H, W): `in_channels` = C,
    `image_size` = H (when the model takes it), and those of `options` (num_classes, width, method, ...)
    that the model takes and that are not None. Options a model does not take are left out, so one
    command line (e.g. `--method`) can serve every model."""
    accepted = inspect.signature(_constructor(name)).parameters
    wanted = {"in_channels": input_shape[0], "image_size": input_shape[1] if len(input_shape) > 1 else None,
              **options}
    return {k: v for k, v in wanted.items() if k in accepted and v is not None}
