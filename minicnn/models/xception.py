"""Xception (Chollet 2017): the Inception idea taken to the end — split spatial and cross-channel
convolution completely. Every conv after the entry is a SeparableConv2D (depthwise 3x3 then 1x1,
no nonlinearity between), with residual shortcuts around every block.

Entry flow: 3x3 s2 (32) -> 3x3 (64) -> three blocks [ReLU -> sep -> BN -> ReLU -> sep -> BN ->
3x3 s2 max-pool] + 1x1 s2 projection shortcut (128, 256, 728). Middle flow: 8 x [3 x (ReLU -> sep
728 -> BN)] + identity. Exit flow: block (728, 1024) with max-pool, sep 1536, sep 2048, global pool,
FC. At 299x299 x 1000 classes this is Keras' Xception: 22,855,952 trainable parameters.
For small inputs (image_size < 128) the two entry convs have stride 1 and padding 1.
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.layers import BatchNorm2D, Conv2D, MaxPool2D, ReLU, SeparableConv2D
from minicnn.layers.blocks import Residual, conv_bn

from ._parts import classifier, scaled, slicesamp_variant
from ._registry import register


def _sep_bn(cin: int, cout: int, relu_first: bool = True) -> list[Layer]:
    return [*([ReLU()] if relu_first else []), SeparableConv2D(cin, cout, 3, padding=1, bias=False),
            BatchNorm2D(cout)]


def xception_block(cin: int, mid: int, cout: int, relu_first: bool = True) -> Residual:
    """Two separable convs and a 3x3 s2 max-pool, plus a 1x1 s2 projection shortcut."""
    body = Sequential(*_sep_bn(cin, mid, relu_first), *_sep_bn(mid, cout), MaxPool2D(3, 2, padding=1))
    return Residual(body, Sequential(*conv_bn(cin, cout, 1, 2)))


@register("xception")
def xception(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 299,
             middle_repeats: int = 8) -> Layer:
    """Xception; `width` scales every channel number, `middle_repeats` the middle-flow blocks."""
    def s(n: int) -> int:
        return scaled(n, width)

    big = image_size >= 128
    stride, pad = (2, 0) if big else (1, 1)
    layers: list[Layer] = [Conv2D(in_channels, s(32), 3, stride=stride, padding=pad, bias=False),
                           BatchNorm2D(s(32)), ReLU(),
                           Conv2D(s(32), s(64), 3, padding=pad, bias=False), BatchNorm2D(s(64)), ReLU(),
                           xception_block(s(64), s(128), s(128), relu_first=False),
                           xception_block(s(128), s(256), s(256)),
                           xception_block(s(256), s(728), s(728))]
    for _ in range(middle_repeats):
        layers.append(Residual(Sequential(*_sep_bn(s(728), s(728)), *_sep_bn(s(728), s(728)),
                                          *_sep_bn(s(728), s(728)))))
    layers += [xception_block(s(728), s(728), s(1024)),
               *_sep_bn(s(1024), s(1536), relu_first=False), ReLU(),
               *_sep_bn(s(1536), s(2048), relu_first=False), ReLU()]
    return Sequential(*layers, *classifier(s(2048), num_classes))


register("xception_slicesamp")(slicesamp_variant(xception, 32))
