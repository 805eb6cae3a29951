"""MobileNet v1 (Howard et al. 2017) and MobileNet v2 (Sandler et al. 2018).

v1: a 3x3 conv, then 13 depthwise-separable units (dw 3x3 -> 1x1), global pool, one FC layer.
v2: a 3x3 conv, 17 inverted residual bottlenecks (expand 1x1 -> dw 3x3 -> linear 1x1 project,
    residual when shapes match), a 1x1 conv to 1280 channels, global pool, one FC layer.
At 224x224 x 1000 classes these reproduce the papers' counts:
v1 4,209,088 weights and 568,740,352 mult-adds; v2 3,469,760 weights and 300,774,272 mult-adds
(the paper: 3.4M and 300M); tests/test_analysis.py checks them.
For small inputs (image_size < 128) the first conv has stride 1 instead of 2.
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.layers import ReLU, ReLU6
from minicnn.layers.blocks import DepthwiseSeparable, InvertedResidual, conv_bn

from ._parts import classifier, scaled, slicesamp_variant, stem_stride
from ._registry import register

# MobileNet v1 body (Table 1 of the paper): (output channels, stride) of each depthwise-separable unit
V1_UNITS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

# MobileNet v2 (Table 2 of the paper): expansion t, output channels c, repeats n, first stride s
V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]


@register("mobilenet_v1")
def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 image_size: int = 224) -> Layer:
    """MobileNet v1 with width multiplier alpha = `width` (channels scaled, at least 8)."""
    c = scaled(32, width, minimum=8)
    layers: list[Layer] = conv_bn(in_channels, c, 3, stem_stride(image_size), act=ReLU)
    for out, stride in V1_UNITS:
        out = scaled(out, width, minimum=8)
        layers.append(DepthwiseSeparable(c, out, stride))
        c = out
    return Sequential(*layers, *classifier(c, num_classes))


@register("mobilenet_v2")
def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 image_size: int = 224) -> Layer:
    """MobileNet v2 with width multiplier `width` (channels rounded to multiples of 8, as the paper's code)."""
    c = scaled(32, width, 8)
    layers: list[Layer] = conv_bn(in_channels, c, 3, stem_stride(image_size), act=ReLU6)
    for t, out, n, s in V2_STAGES:
        out = scaled(out, width, 8)
        for i in range(n):
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    last = scaled(1280, max(1.0, width), 8)
    layers += conv_bn(c, last, 1, act=ReLU6)
    return Sequential(*layers, *classifier(last, num_classes))


register("mobilenet_v1_slicesamp")(slicesamp_variant(mobilenet_v1, 224))
register("mobilenet_v2_slicesamp")(slicesamp_variant(mobilenet_v2, 224))
