"""The Caffe "LeNet" (the network of Caffe's MNIST example, `lenet_train_test.prototxt`): the LeNet-5
of the compression literature, about 0.4M parameters, and most likely the network Zhao et al. compress
to 776 numbers in "Frequency Regularization" (Zhao, Dong, Zhang, Tan, Basu, IEEE Access 11, 2023):

    x (N, 1, 28, 28) -> conv 5x5 (20) -> max-pool 2 -> conv 5x5 (50) -> max-pool 2
                     -> flatten -> fc 500 -> ReLU -> fc num_classes

    28x28 -> 24x24x20 -> 12x12x20 -> 8x8x50 -> 4x4x50 = 800 -> 500 -> 10

Parameters on MNIST: 20*25+20 = 520, 50*20*25+50 = 25,050, 800*500+500 = 400,500, 500*10+10 = 5,010:
431,080 in all (93% of them in fc 500). Unlike `lenet5` there is no padding, no activation after the
convolutions (max-pooling is the only non-linearity before fc 500) and one hidden layer.
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.functional.checks import conv_output_size

from ._registry import register
from .lenet import first_fully_connected, scaled

MIN_IMAGE_SIZE = 16  # smallest S for which conv2 and the second pool still fit


@register("lenet5_caffe")
def lenet5_caffe(num_classes: int = 10, in_channels: int = 1, width: float = 1.0, image_size: int = 28,
                 method: str = "im2col", bias: bool = True, c5_conv: bool = False) -> Layer:
    """Caffe's LeNet (see the module docstring). `width` scales the channel and hidden-unit counts
    (20, 50, 500); `image_size` (S) sizes fc 500; `bias=False` drops every bias; `c5_conv=True`
    computes fc 500 as a valid side x side convolution on the (50, side, side) maps followed by Flatten
    (the same function, weight (500, 50, side, side) instead of (500, 50*side*side)), as `lenet5` does."""
    from minicnn import layers as L

    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"lenet5_caffe: expected image_size >= {MIN_IMAGE_SIZE}, got {image_size}")
    c1, c2, f1 = (scaled(n, width) for n in (20, 50, 500))
    side = conv_output_size(conv_output_size(image_size, 5, 1, 0), 2, 2)  # conv1 (valid), pool 2
    side = conv_output_size(conv_output_size(side, 5, 1, 0), 2, 2)        # conv2 (valid), pool 2
    fc1 = first_fully_connected(c2, side, f1, bias, method, as_conv=c5_conv)
    return Sequential(
        L.Conv2D(in_channels, c1, 5, bias=bias, method=method), L.MaxPool2D(2),  # (N, c1, (S-4)/2, (S-4)/2)
        L.Conv2D(c1, c2, 5, bias=bias, method=method), L.MaxPool2D(2),           # (N, c2, side, side)
        *fc1, L.ReLU(),                                                          # (N, f1)
        L.Linear(f1, num_classes, bias=bias),
    )
