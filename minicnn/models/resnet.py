"""ResNet (He et al. 2015): stacks of residual blocks y = ReLU(F(x) + x), "learn F(x) instead of H(x)".

- `resnet20`: the paper's CIFAR-10 net (Section 4.2): 3x3 conv (16), three stages of 3 basic blocks
  with 16 / 32 / 64 channels (x `width`), global pool, FC. About 0.27M weights, 41M mult-adds.
- `resnet18`: the ImageNet net (7x7 s2 conv, 3x3 s2 max-pool, four stages of 2 basic blocks with
  64 / 128 / 256 / 512 channels); 11,689,512 parameters at 224x224. For image_size < 128 the stem is a
  3x3 stride-1 conv without max-pool (the usual CIFAR adaptation).
A stage's first block halves the size with a stride-2 3x3 conv; its shortcut is then a 1x1 stride-2
projection with BatchNorm (the paper's option B).
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.layers import BatchNorm2D, Conv2D, MaxPool2D, ReLU
from minicnn.layers.blocks import Residual, conv_bn

from ._parts import classifier, scaled, slicesamp_variant
from ._registry import register


def basic_block(in_channels: int, out_channels: int, stride: int = 1) -> Layer:
    """ReLU(F(x) + shortcut(x)), F = conv3x3 (stride) - BN - ReLU - conv3x3 - BN."""
    body = Sequential(*conv_bn(in_channels, out_channels, 3, stride, act=ReLU), *conv_bn(out_channels, out_channels, 3))
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = Sequential(*conv_bn(in_channels, out_channels, 1, stride))
    return Sequential(Residual(body, shortcut), ReLU())


def _resnet(stem: list[Layer], c: int, stages: list[tuple[int, int]], num_classes: int) -> Layer:
    layers = list(stem)
    for i, (out, blocks) in enumerate(stages):
        for b in range(blocks):
            layers.append(basic_block(c, out, 2 if b == 0 and i > 0 else 1))
            c = out
    return Sequential(*layers, *classifier(c, num_classes))


@register("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32,
             blocks: int = 3) -> Layer:
    """CIFAR ResNet with 6 * blocks + 2 layers (blocks=3: ResNet-20)."""
    c = scaled(16, width)
    stem = conv_bn(in_channels, c, 3, act=ReLU)
    return _resnet(stem, c, [(scaled(n, width), blocks) for n in (16, 32, 64)], num_classes)


@register("resnet18")
def resnet18(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """ImageNet ResNet-18 (image_size >= 128) or its CIFAR-stem variant."""
    c = scaled(64, width)
    if image_size >= 128:
        stem = [Conv2D(in_channels, c, 7, stride=2, padding=3, bias=False), BatchNorm2D(c), ReLU(),
                MaxPool2D(3, 2, padding=1)]
    else:
        stem = conv_bn(in_channels, c, 3, act=ReLU)
    return _resnet(stem, c, [(scaled(n, width), 2) for n in (64, 128, 256, 512)], num_classes)


register("resnet20_slicesamp")(slicesamp_variant(resnet20, 32))
register("resnet18_slicesamp")(slicesamp_variant(resnet18, 224))
