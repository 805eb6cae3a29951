"""Stateful layers: each wraps the math of `minicnn.functional` and caches what backward needs."""

from minicnn.core import Layer, Parameter, Sequential

from .activations import GELU, LeakyReLU, Maxout, ReLU, ReLU6, Sigmoid, Tanh
from .dense import Dropout, Flatten, Linear
from .norm import BatchNorm1D, BatchNorm2D
from .dct import DCTLinear
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
