"""Information-retaining resampling layers: slicing (space-to-depth), its inverse, Haar wavelet
down/up, and the review's SliceSamp / SliceUpsamp blocks. Math in `minicnn.functional.slicing`.
"""

from __future__ import annotations

import numpy as np

from minicnn.core import Layer, Sequential
from minicnn.functional import positive_int
from minicnn.functional import slicing as S

from .activations import GELU
from .conv import DepthwiseConv2D, PointwiseConv2D
from .norm import BatchNorm2D
from .shapes import UNKNOWN, Shape, Window


class SliceDownsample(Layer):
    """Space-to-depth: (N, C, H, W) -> (N, C*r*r, H/r, W/r), every value kept, in
    `pixel_unshuffle` order y[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j].
    backward = depth-to-space of dy. Seen as a window: kernel_size = stride = (r, r)."""

    TRANSIENT = Layer.TRANSIENT + ("_y_shape",)  # forward's output shape

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = positive_int(factor, "SliceDownsample", "factor")
        self.kernel_size = self.stride = (self.factor, self.factor)
        self.padding = (0, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = S.space_to_depth(x, self.factor, who="SliceDownsample")
        self._y_shape = y.shape  # cache: the shape backward expects (a permutation keeps nothing else)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._y_shape)
        return S.depth_to_space(dy, self.factor, who="SliceDownsample.backward")

    def output_shape(self, input_shape: Shape) -> Shape:
        return _downsampled(input_shape, self.factor, "SliceDownsample")

    def window(self) -> Window:
        return Window(self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class SliceUpsample(Layer):
    """Depth-to-space (sub-pixel, `pixel_shuffle` order): (N, C*r*r, H, W) -> (N, C, H*r, W*r);
    the exact inverse of SliceDownsample. backward = space-to-depth of dy."""

    TRANSIENT = Layer.TRANSIENT + ("_y_shape",)  # forward's output shape

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = positive_int(factor, "SliceUpsample", "factor")

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = S.depth_to_space(x, self.factor, who="SliceUpsample")
        self._y_shape = y.shape  # cache: the shape backward expects (a permutation keeps nothing else)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._y_shape)
        return S.space_to_depth(dy, self.factor, who="SliceUpsample.backward")

    def output_shape(self, input_shape: Shape) -> Shape:
        return _upsampled(input_shape, self.factor, "SliceUpsample")

    def window(self) -> str:
        return UNKNOWN

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class HaarDownsample(Layer):
    """One orthonormal Haar DWT level: (N, C, H, W) -> (N, 4C, H/2, W/2), bands LL, LH, HL, HH
    (band-major channels). Orthogonal, so backward = HaarUpsample of dy."""

    TRANSIENT = Layer.TRANSIENT + ("_y_shape",)  # forward's output shape

    def __init__(self):
        super().__init__()
        self.kernel_size = self.stride = (2, 2)
        self.padding = (0, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = S.haar_downsample(x, who="HaarDownsample")
        self._y_shape = y.shape  # cache: the shape backward expects (a permutation keeps nothing else)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._y_shape)
        return S.haar_upsample(dy, who="HaarDownsample.backward")

    def output_shape(self, input_shape: Shape) -> Shape:
        return _downsampled(input_shape, 2, "HaarDownsample")

    def window(self) -> Window:
        return Window(self.kernel_size, self.stride)


class HaarUpsample(Layer):
    """Inverse Haar DWT level: (N, 4C, H, W) -> (N, C, 2H, 2W); backward = HaarDownsample of dy."""

    TRANSIENT = Layer.TRANSIENT + ("_y_shape",)  # forward's output shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = S.haar_upsample(x, who="HaarUpsample")
        self._y_shape = y.shape  # cache: the shape backward expects (a permutation keeps nothing else)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._y_shape)
        return S.haar_downsample(dy, who="HaarUpsample.backward")

    def output_shape(self, input_shape: Shape) -> Shape:
        return _upsampled(input_shape, 2, "HaarUpsample")

    def window(self) -> str:
        return UNKNOWN


def _downsampled(shape: Shape, r: int, who: str) -> Shape:
    """(C, H, W) -> (C r r, H / r, W / r), H and W divisible by r (every value is kept)."""
    if len(shape) != 3 or shape[1] % r or shape[2] % r:
        raise ValueError(f"{who}: expected H and W divisible by {r}, got {tuple(shape)}")
    return shape[0] * r * r, shape[1] // r, shape[2] // r


def _upsampled(shape: Shape, r: int, who: str) -> Shape:
    """(C, H, W) -> (C / (r r), H r, W r), C divisible by r r."""
    if len(shape) != 3 or shape[0] % (r * r):
        raise ValueError(f"{who}: expected C divisible by {r * r}, got {tuple(shape)}")
    return shape[0] // (r * r), shape[1] * r, shape[2] * r


def _separable_block(channels: int, out_channels: int, kernel_size: int) -> list[Layer]:
    """depthwise kxk (stride 1, same padding) -> BN -> GELU -> pointwise 1x1 -> BN -> GELU.

    The convolutions have no bias: the BatchNorm right after each one subtracts the per-channel mean,
    so a bias there would have no effect (its gradient is exactly 0); BN's own beta plays its role.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"SliceSamp: expected an odd kernel_size for same padding, got {kernel_size}")
    return [DepthwiseConv2D(channels, kernel_size, stride=1, padding=kernel_size // 2, bias=False),
            BatchNorm2D(channels), GELU(),
            PointwiseConv2D(channels, out_channels, bias=False),
            BatchNorm2D(out_channels), GELU()]


class SliceSamp(Sequential):
    """The review's information-retaining downsampling block:

        slice (space-to-depth, C -> C*r*r) -> depthwise kxk conv (stride 1, same padding) -> BN -> GELU
        -> pointwise 1x1 conv (C*r*r -> out_channels) -> BN -> GELU

    (N, in_channels, H, W) -> (N, out_channels, H/r, W/r). Every input value reaches the block.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int = 2, kernel_size: int = 3):
        r = positive_int(factor, "SliceSamp", "factor")
        super().__init__(SliceDownsample(r), *_separable_block(in_channels * r * r, out_channels, kernel_size))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.factor = r


class SliceUpsamp(Sequential):
    """The upsampling twin: depth-to-space (C -> C/(r*r), size x r) -> the same depthwise-separable
    block (depthwise kxk -> BN -> GELU -> pointwise 1x1 -> BN -> GELU).

    (N, in_channels, H, W) -> (N, out_channels, H*r, W*r); in_channels must be a multiple of r*r.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int = 2, kernel_size: int = 3):
        r = positive_int(factor, "SliceUpsamp", "factor")
        if in_channels % (r * r):
            raise ValueError(f"SliceUpsamp: expected in_channels divisible by factor^2 = {r * r}, got {in_channels}")
        super().__init__(SliceUpsample(r), *_separable_block(in_channels // (r * r), out_channels, kernel_size))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.factor = r
