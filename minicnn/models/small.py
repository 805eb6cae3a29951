"""`cifar_net`: the small net of the CIFAR-10 and downsampling experiments.

    [3x3 conv c - BN - ReLU] x 2 -> DOWN(c) -> [3x3 conv 2c - BN - ReLU] x 2 -> DOWN(2c)
    -> 3x3 conv 4c - BN - ReLU -> global average pool -> FC

DOWN halves the spatial size at the two downsampling points, one of
    "maxpool":   MaxPool2D(2)                                      (no weights)
    "stride":    3x3 conv stride 2 (C -> C) - BN - ReLU           (9 C^2 weights)
    "slicesamp": SliceSamp(C, C): space-to-depth -> dw 3x3 -> BN -> GELU -> 1x1 (4C -> C) -> BN -> GELU
so the three variants differ only there (the downsampling review's comparison). c = 32 * width.
Works on 28x28 (Fashion-MNIST, 1 channel) and 32x32x3 (CIFAR-10).
"""

from __future__ import annotations

from minicnn import layers as L
from minicnn.core import Layer, Sequential
from minicnn.layers.blocks import conv_bn

from ._parts import classifier, scaled, slicesamp_variant
from ._registry import register

DOWNSAMPLING = ("maxpool", "stride", "slicesamp")


def downsample(kind: str, channels: int) -> list[Layer]:
    """The layers of one downsampling point (see the module docstring)."""
    if kind == "maxpool":
        return [L.MaxPool2D(2)]
    if kind == "stride":
        return conv_bn(channels, channels, 3, 2, act=L.ReLU)
    if kind == "slicesamp":
        return [L.SliceSamp(channels, channels, factor=2)]
    raise ValueError(f"downsample: expected one of {DOWNSAMPLING}, got {kind!r}")


@register("cifar_net")
def cifar_net(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32,
              downsample_kind: str = "maxpool") -> Layer:
    """The small net above; `downsample_kind` in ("maxpool", "stride", "slicesamp")."""
    c = scaled(32, width)
    return Sequential(*conv_bn(in_channels, c, 3, act=L.ReLU), *conv_bn(c, c, 3, act=L.ReLU),
                      *downsample(downsample_kind, c),
                      *conv_bn(c, 2 * c, 3, act=L.ReLU), *conv_bn(2 * c, 2 * c, 3, act=L.ReLU),
                      *downsample(downsample_kind, 2 * c),
                      *conv_bn(2 * c, 4 * c, 3, act=L.ReLU),
                      *classifier(4 * c, num_classes))


register("cifar_net_slicesamp")(slicesamp_variant(cifar_net, 32))
