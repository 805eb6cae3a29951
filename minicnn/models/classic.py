"""AlexNet (Krizhevsky et al. 2012) and VGG (Simonyan & Zisserman 2014), plus their CIFAR-size cousins.

- `alexnet`: at image_size >= 128 the one-tower AlexNet (11x11 s4, 5x5, 3x3, 3x3, 3x3 convs,
  three 3x3 s2 max-pools, FC 4096 - 4096 - classes; about 61M parameters at 224x224). For small
  inputs an AlexNet-style net with the same five-conv shape: 5x5, 5x5, 3x3, 3x3, 3x3, 2x2 pools.
- `vgg11` / `vgg16` / `vgg19`: configurations A / D / E, all filters 3x3, FC 4096 - 4096 - classes
  (VGG-16 at 224x224: 138,357,544 parameters). No BatchNorm, as in the paper.
- `vgg_cifar`: a VGG-style 3x3 stack with BatchNorm and a global-pool head for 32x32 inputs.
The first FC layer of the ImageNet heads is sized from `image_size` with `minicnn.layers.output_shape`.
"""

from __future__ import annotations

from minicnn import layers as L
from minicnn.core import Layer, Sequential
from minicnn.layers.blocks import conv_bn

from ._parts import classifier, scaled, slicesamp_variant
from ._registry import register

VGG_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}
VGG_CIFAR = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, "M"]


def _fc_head(features: Sequential, in_shape: tuple[int, int, int], hidden: int, num_classes: int) -> list[Layer]:
    """Flatten -> Dropout -> FC hidden -> ReLU -> Dropout -> FC hidden -> ReLU -> FC classes."""
    c, h, w = L.output_shape(features, in_shape)
    return [L.Flatten(), L.Dropout(0.5), L.Linear(c * h * w, hidden), L.ReLU(), L.Dropout(0.5),
            L.Linear(hidden, hidden), L.ReLU(), L.Linear(hidden, num_classes)]


@register("alexnet")
def alexnet(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """AlexNet (image_size >= 128) or an AlexNet-style net for 32x32 inputs; `width` scales channels."""
    c = [scaled(n, width) for n in (64, 192, 384, 256, 256)]
    if image_size >= 128:
        kernels, pads, strides, pool = (11, 5, 3, 3, 3), (2, 2, 1, 1, 1), (4, 1, 1, 1, 1), (3, 2)
        hidden = scaled(4096, width)
    else:
        kernels, pads, strides, pool = (5, 5, 3, 3, 3), (2, 2, 1, 1, 1), (1, 1, 1, 1, 1), (2, 2)
        hidden = scaled(512, width)
    layers: list[Layer] = []
    cin = in_channels
    for i in range(5):
        layers += [L.Conv2D(cin, c[i], kernels[i], stride=strides[i], padding=pads[i]), L.ReLU()]
        if i in (0, 1, 4):
            layers.append(L.MaxPool2D(*pool))
        cin = c[i]
    features = Sequential(*layers)
    return Sequential(features, *_fc_head(features, (in_channels, image_size, image_size), hidden, num_classes))


def vgg(depth: int, num_classes: int, in_channels: int, width: float, image_size: int) -> Layer:
    """VGG-`depth` (11, 16 or 19, VGG_CONFIGS) at `width`: 3x3 conv-ReLU stacks, max-pools ("M"), the FC head."""
    layers: list[Layer] = []
    cin = in_channels
    for v in VGG_CONFIGS[depth]:
        if v == "M":
            layers.append(L.MaxPool2D(2))
        else:
            layers += [L.Conv2D(cin, scaled(v, width), 3, padding=1), L.ReLU()]
            cin = scaled(v, width)
    features = Sequential(*layers)
    hidden = scaled(4096, width)
    return Sequential(features, *_fc_head(features, (in_channels, image_size, image_size), hidden, num_classes))


@register("vgg11")
def vgg11(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """VGG configuration A (8 conv + 3 FC)."""
    return vgg(11, num_classes, in_channels, width, image_size)


@register("vgg16")
def vgg16(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """VGG configuration D (13 conv + 3 FC)."""
    return vgg(16, num_classes, in_channels, width, image_size)


@register("vgg19")
def vgg19(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, image_size: int = 224) -> Layer:
    """VGG configuration E (16 conv + 3 FC)."""
    return vgg(19, num_classes, in_channels, width, image_size)


@register("vgg_cifar")
def vgg_cifar(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32) -> Layer:
    """VGG-style for 32x32: 3x3 conv - BN - ReLU stacks (64, 64, M, 128, 128, M, 256, 256, M, 512, M),
    global average pool, one FC layer. At width 1: 2,329,280 weights, 172M mult-adds per image."""
    layers: list[Layer] = []
    cin = in_channels
    for v in VGG_CIFAR:
        if v == "M":
            layers.append(L.MaxPool2D(2))
        else:
            layers += conv_bn(cin, scaled(v, width), 3, act=L.ReLU)
            cin = scaled(v, width)
    return Sequential(*layers, *classifier(cin, num_classes))


register("alexnet_slicesamp")(slicesamp_variant(alexnet, 32))
register("vgg16_slicesamp")(slicesamp_variant(vgg16, 224))
register("vgg_cifar_slicesamp")(slicesamp_variant(vgg_cifar, 32))
