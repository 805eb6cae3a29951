"""LeNet-5 (LeCun et al., 1998), the lecture's first CNN, in its common modern form:

    x (N, C, S, S) -> conv 5x5 (6), padding 2 -> act -> pool 2 -> conv 5x5 (16) -> act -> pool 2
                   -> flatten -> fc 120 -> act -> fc 84 -> act -> fc num_classes

On MNIST (S = 28): 28x28 -> 28x28x6 -> 14x14x6 -> 10x10x16 -> 5x5x16 = 400 -> 120 -> 84 -> 10,
61,706 parameters. On CIFAR-10 (S = 32, C = 3) the flattened size is 16 * 6 * 6 = 576.
Differences from 1998: ReLU instead of scaled tanh and max-pooling instead of trainable subsampling
(both selectable), every C3 map sees every S2 map, and a softmax classifier replaces the RBF outputs.
"""

from __future__ import annotations

from minicnn import layers as L
from minicnn.core import Layer, Sequential
from minicnn.functional.checks import conv_output_size

from ._registry import register

ACTIVATIONS = ("relu", "tanh")
POOLS = ("max", "avg")
MIN_IMAGE_SIZE = 12  # smallest S for which conv2 and the second pool still fit


def scaled(n: int, width: float) -> int:
    """n channels or units at width multiplier `width` (at least 1)."""
    return max(1, round(n * width))


def first_fully_connected(c2: int, side: int, f1: int, bias: bool, method: str, as_conv: bool) -> list:
    """The (N, c2, side, side) maps -> (N, f1) layer of the LeNets: Flatten -> Linear, or (as_conv, LeNet-5's
    C5) a valid side x side convolution -> Flatten: the same function with a 4-D weight (f1, c2, side, side)."""
    if as_conv:
        return [L.Conv2D(c2, f1, side, bias=bias, method=method), L.Flatten()]  # (N, f1, 1, 1) -> (N, f1)
    return [L.Flatten(), L.Linear(c2 * side * side, f1, bias=bias)]          # (N, c2*side*side) -> (N, f1)


@register("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1, width: float = 1.0, image_size: int = 28,
           activation: str = "relu", pool: str = "max", method: str = "im2col", bias: bool = True,
           c5_conv: bool = False) -> Layer:
    """LeNet-5 (see the module docstring). `width` scales every channel and hidden-unit count;
    `image_size` (S) sizes the first fully-connected layer; `method` is the convolution algorithm;
    `bias=False` drops every bias (conv and fully-connected), e.g. to spend a whole storage budget
    of a compressed model on weights. `c5_conv=True` computes the first fully-connected layer as
    LeNet-5's C5, a valid side x side convolution on the (c2, side, side) maps followed by Flatten
    (children 6 and 7 become Conv2D, Flatten): the same function as Flatten -> Linear(c2*side*side, f1)
    with the Linear weight unflattened to (f1, c2, side, side), but a 4-D weight, so a DCT of it
    runs over space too (`minicnn experiment frequency --c5-conv`)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"lenet5: expected activation one of {ACTIVATIONS}, got {activation!r}")
    if pool not in POOLS:
        raise ValueError(f"lenet5: expected pool one of {POOLS}, got {pool!r}")
    act = L.ReLU if activation == "relu" else L.Tanh
    pool_layer = L.MaxPool2D if pool == "max" else L.AvgPool2D
    c1, c2, f1, f2 = (scaled(n, width) for n in (6, 16, 120, 84))
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"lenet5: expected image_size >= {MIN_IMAGE_SIZE}, got {image_size}")
    side = conv_output_size(conv_output_size(image_size, 5, 1, 2), 2, 2)  # conv1 (padding 2), pool 2
    side = conv_output_size(conv_output_size(side, 5, 1, 0), 2, 2)        # conv2 (valid), pool 2
    c5 = first_fully_connected(c2, side, f1, bias, method, as_conv=c5_conv)
    return Sequential(
        L.Conv2D(in_channels, c1, 5, padding=2, bias=bias, method=method), act(), pool_layer(2),  # (N, c1, S/2, S/2)
        L.Conv2D(c1, c2, 5, bias=bias, method=method), act(), pool_layer(2),                     # (N, c2, side, side)
        *c5,                                                                                     # (N, f1)
        act(),
        L.Linear(f1, f2, bias=bias), act(),
        L.Linear(f2, num_classes, bias=bias),
    )
