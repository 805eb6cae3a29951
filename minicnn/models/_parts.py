"""Pieces shared by the model zoo: channel scaling, the classifier head, the SliceSamp conversion."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from minicnn import layers as L
from minicnn.core import Layer


def scaled(channels: int, width: float, divisor: int = 1, minimum: int = 1) -> int:
    """channels * width, rounded to the nearest multiple of `divisor` (never below 90% of the
    scaled value, as MobileNet v2's reference code does), at least `minimum`."""
    value = channels * width
    out = max(minimum, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def classifier(in_channels: int, num_classes: int, dropout: float = 0.0) -> list[Layer]:
    """Global average pooling -> Flatten -> (Dropout) -> Linear: works at any input size."""
    return [L.GlobalAvgPool2D(), L.Flatten(), *([L.Dropout(dropout)] if dropout else []),
            L.Linear(in_channels, num_classes)]


def stem_stride(image_size: int) -> int:
    """ImageNet-size inputs (>= 128 px) downsample in the stem; CIFAR-size ones keep full resolution."""
    return 2 if image_size >= 128 else 1


class _Leaves(L.Visitor):
    """Records (name, layer, input shape, output shape) of every leaf `walk` visits."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Layer, tuple, tuple]] = []

    def leaf(self, name, layer, in_shape, out_shape, state):
        self.seen.append((name, layer, in_shape, out_shape))
        return state


def to_slicesamp(model: Layer, input_shape: tuple[int, int, int]) -> Layer:
    """Replace, in place, every stride-2 max-pool or convolution by SliceSamp(C_in, C_out):
    space-to-depth (every value kept) -> depthwise 3x3 -> BN -> GELU -> 1x1 -> BN -> GELU.

    Channels come from walking the model at `input_shape` (`minicnn.layers.walk`); spatial sizes must
    be even at each downsampling point (SliceSamp keeps every value, so it cannot drop a trailing row).
    The replacement keeps the layer's position in its parent (Sequential order is preserved).
    """
    leaves = _Leaves()
    L.walk(model, input_shape, leaves)
    for name, layer, in_shape, out_shape in leaves.seen:
        if not (isinstance(layer, (L.MaxPool2D, L.Conv2D)) and layer.stride == (2, 2)):
            continue
        if in_shape[1] // 2 != out_shape[1] or in_shape[1] % 2:
            raise ValueError(f"to_slicesamp: {name} maps {in_shape} -> {out_shape}; "
                             f"SliceSamp needs an even size halved exactly")
        *path, last = name.split(".")
        parent = model
        for part in path:
            parent = getattr(parent, part)
        setattr(parent, last, L.SliceSamp(in_shape[0], out_shape[0], factor=2))  # same key, same position
    return model


def slicesamp_variant(constructor: Callable[..., Layer], default_size: int) -> Callable[..., Layer]:
    """A constructor that builds `constructor(...)` and converts it with `to_slicesamp`."""

    def build(**options) -> Layer:
        options.setdefault("image_size", default_size)
        size, channels = options["image_size"], options.get("in_channels", 3)
        return to_slicesamp(constructor(**options), (channels, size, size))

    signature = inspect.signature(constructor)
    build.__signature__ = signature.replace(parameters=[  # callers see the real options and defaults
        p.replace(default=default_size) if p.name == "image_size" else p for p in signature.parameters.values()])
    build.__doc__ = f"{constructor.__name__} with every max-pool / stride-2 conv replaced by SliceSamp."
    build.__name__ = constructor.__name__ + "_slicesamp"
    return build
