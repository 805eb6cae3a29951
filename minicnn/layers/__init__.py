"""Stateful layers: each wraps the math of `minicnn.functional` and caches what backward needs.

Each layer also answers `output_shape(input_shape)`, `cost(input_shape)` and `window()` without being
run (`minicnn.layers.shapes`); `output_shape(model, (C, H, W))` and `walk` trace a whole network
(`minicnn.layers.walk`)."""

from minicnn.core import Layer, Parameter, Sequential

from .activations import GELU, LeakyReLU, Maxout, ReLU, ReLU6, Sigmoid, Tanh
from .blocks import (
    ChannelShuffle,
    ChannelSplit,
    Concat,
    DepthwiseSeparable,
    InvertedResidual,
    Residual,
    ShuffleV2Unit,
)
from .conv import Conv2D, ConvTranspose2D, DepthwiseConv2D, LocallyConnected2D, PointwiseConv2D, SeparableConv2D
from .dct import DCTConv2D, DCTConvTranspose2D, DCTLinear, FrequencyBias
from .dense import Dropout, Flatten, Linear
from .norm import BatchNorm1D, BatchNorm2D
from .pool import (
    AvgPool2D,
    GlobalAvgPool2D,
    MaxPool2D,
    MixedPool2D,
    SoftPool2D,
    StochasticPool2D,
    Subsample2D,
    SumPool2D,
)
from .slicing import HaarDownsample, HaarUpsample, SliceDownsample, SliceSamp, SliceUpsamp, SliceUpsample
from .unet import DoubleConv, Identity, SkipConcat
from .upsample import Upsample

# isort: split
from .shapes import ALL, UNKNOWN, WHOLE_MAP, Cost, Window
from .walk import Visitor, output_shape, walk
