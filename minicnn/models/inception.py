"""GoogLeNet / Inception v1 (Szegedy et al. 2014): "large but fast" — keep many maps, but run the
3x3 and 5x5 convolutions only on 1x1-reduced stacks.

An Inception module is four parallel branches concatenated on channels (`Concat`):
    1x1  |  1x1 reduce -> 3x3  |  1x1 reduce -> 5x5  |  3x3 max-pool (stride 1) -> 1x1 projection
Channel numbers are the paper's Table 1 (3a ... 5b); every conv is followed by BatchNorm and ReLU
(BatchNorm is an Inception-v2 addition that makes the net trainable without auxiliary classifiers,
which are left out). At image_size >= 128 the stem is 7x7 s2 - max-pool - 1x1 - 3x3 - max-pool; for
small inputs a single 3x3 conv (192) at full resolution.
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.layers import BatchNorm2D, Conv2D, MaxPool2D, ReLU
from minicnn.layers.blocks import Concat, conv_bn

from ._parts import classifier, scaled, slicesamp_variant, stem_stride
from ._registry import register

# (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "M" = 3x3 stride-2 max-pool
MODULES = [("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), "M",
           ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
           ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128), "M",
           ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128)]


def inception_module(cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> Concat:
    """Concat of the four branches; output channels c1 + c3 + c5 + cp."""
    return Concat(Sequential(*conv_bn(cin, c1, 1, act=ReLU)),
                  Sequential(*conv_bn(cin, c3r, 1, act=ReLU), *conv_bn(c3r, c3, 3, act=ReLU)),
                  Sequential(*conv_bn(cin, c5r, 1, act=ReLU), *conv_bn(c5r, c5, 5, act=ReLU)),
                  Sequential(MaxPool2D(3, 1, padding=1), *conv_bn(cin, cp, 1, act=ReLU)))


@register("inception")
def inception(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """GoogLeNet (Inception v1 modules 3a-5b) with BatchNorm; `width` scales every channel number."""
    def s(n: int) -> int:
        return scaled(n, width)

    if stem_stride(image_size) == 2:
        layers: list[Layer] = [Conv2D(in_channels, s(64), 7, stride=2, padding=3, bias=False),
                               BatchNorm2D(s(64)), ReLU(), MaxPool2D(3, 2, padding=1),
                               *conv_bn(s(64), s(64), 1, act=ReLU), *conv_bn(s(64), s(192), 3, act=ReLU),
                               MaxPool2D(3, 2, padding=1)]
    else:
        layers = conv_bn(in_channels, s(192), 3, act=ReLU)
    c = s(192)
    for m in MODULES:
        if m == "M":
            layers.append(MaxPool2D(3, 2, padding=1))
            continue
        _, *chans = m
        chans = [s(v) for v in chans]
        layers.append(inception_module(c, *chans))
        c = chans[0] + chans[2] + chans[4] + chans[5]
    return Sequential(*layers, *classifier(c, num_classes, dropout=0.4))


register("inception_slicesamp")(slicesamp_variant(inception, 224))
