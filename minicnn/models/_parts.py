"""Pieces shared by the model zoo: channel scaling, the classifier head, the SliceSamp conversion."""

from __future__ import annotations

import inspect
from collections.abc import Callable

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
    from minicnn import layers as L

    return [L.GlobalAvgPool2D(), L.Flatten(), *([L.Dropout(dropout)] if dropout else []),
            L.Linear(in_channels, num_classes)]


def stem_stride(image_size: int) -> int:
    """ImageNet-size inputs (>= 128 px) downsample in the stem; CIFAR-size ones keep full resolution."""
    return 2 if image_size >= 128 else 1


def _is_downsampling(layer: Layer) -> bool:
    name = type(layer).__name__
    stride = getattr(layer, "stride", None)
    strides = stride if isinstance(stride, tuple) else (stride, stride)
    return name in ("MaxPool2D", "Conv2D", "DepthwiseConv2D") and strides == (2, 2)


def to_slicesamp(model: Layer, input_shape: tuple[int, int, int]) -> Layer:
    """Replace, in place, every stride-2 max-pool or convolution by SliceSamp(C_in, C_out):
    space-to-depth (every value kept) -> depthwise 3x3 -> BN -> GELU -> 1x1 -> BN -> GELU.

    Channels come from `minicnn.analysis` at `input_shape`; spatial sizes must be even at each
    downsampling point (SliceSamp keeps every value, so it cannot drop a trailing row).
    The replacement keeps the layer's position in its parent (Sequential order is preserved).
    """
    from minicnn import layers as L
    from minicnn.analysis import analyze

    for row in analyze(model, input_shape).rows:
        path = row.name.split(".")
        parent = model
        for part in path[:-1]:
            parent = getattr(parent, part)
        layer = getattr(parent, path[-1], None)
        if not isinstance(layer, Layer) or not _is_downsampling(layer):
            continue
        if row.input_shape[1] // 2 != row.output_shape[1] or row.input_shape[1] % 2:
            raise ValueError(f"to_slicesamp: {row.name} maps {row.input_shape} -> {row.output_shape}; "
                             f"SliceSamp needs an even size halved exactly")
        new = L.SliceSamp(row.input_shape[0], row.output_shape[0], factor=2)
        setattr(parent, path[-1], new)  # same key, same position
    return model


def slicesamp_variant(constructor: Callable[..., Layer], default_size: int) -> Callable[..., Layer]:
    """A constructor that builds `constructor(...)` and converts it with `to_slicesamp`."""

    def build(**options) -> Layer:
        options.setdefault("image_size", default_size)
        size, channels = options["image_size"], options.get("in_channels", 3)
        return to_slicesamp(constructor(**options), (channels, size, size))

    build.__signature__ = inspect.signature(constructor)  # callers (minicnn train) see the real options
    build.__doc__ = f"{constructor.__name__} with every max-pool / stride-2 conv replaced by SliceSamp."
    build.__name__ = constructor.__name__ + "_slicesamp"
    return build
