"""The pieces of a UNet (Ronneberger et al. 2015) that the other layers do not already provide.

    Identity()              y = x                                   (the skip branch)
    SkipConcat(inner)       y = [x, inner(x)] stacked on channels   (one level of the U: the encoder's map
                                                                     x is handed, unchanged, to the decoder)
    DoubleConv(c_in, c_out, mid=None)
                            [3x3 conv (no bias) -> BN -> ReLU] twice, c_in -> mid -> c_out  (mid = c_out)

A UNet is these nested: at every level `inner` = max-pool 2 -> the next level -> upsample 2, so
`inner(x)` has the spatial size of x again and can be stacked beside it (`minicnn.models.unet`).
SkipConcat is a `Concat` of two branches, Identity and `inner`, so it routes arrays with Concat's
forward and backward (no copy of them here) and `minicnn.layers.walk` walks it as a Concat:

    forward:   y[:, :C] = x,  y[:, C:] = inner(x)
    backward:  dx = dy[:, :C] + inner.backward(dy[:, C:])     (x reaches y along two paths; add both)
"""

from __future__ import annotations

import numpy as np

from minicnn.core import Layer, Sequential
from minicnn.functional.checks import check_float

from .activations import ReLU
from .blocks import Concat
from .conv import Conv2D
from .norm import BatchNorm2D
from .shapes import Shape

DOUBLE_CONV_KERNEL = 3
DOUBLE_CONV_PADDING = 1  # "same" for the 3x3 kernel: the level keeps its H and W


class Identity(Layer):
    """y = x;  dx = dy, for a floating array of any shape. Answers the shape protocol: the output shape is the
    input shape, position by position."""

    TRANSIENT = Layer.TRANSIENT + ("_shape",)  # forward's input (and output) shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float(x, "Identity")
        self._shape = x.shape  # cache: the shape backward expects
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._shape)
        return dy

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def window(self) -> None:
        return None


class SkipConcat(Concat):
    """One level of a UNet: y = concatenate([x, inner(x)], axis=1), the skip connection first (as the
    paper's repository stacks `[x2, x1]`, the encoder's map before the upsampled one).

    `inner` must return x's H and W (it pools and upsamples by the same factor); channels may differ.
    Input (N, C, H, W) -> output (N, C + C_inner, H, W). Children are named `skip` and `inner`, so a
    model's parameter names read "….inner.…" down the U.
    """

    def __init__(self, inner: Layer):
        Layer.__init__(self)  # not Concat's: the two branches get names instead of "0", "1"
        if not isinstance(inner, Layer):
            raise ValueError(f"SkipConcat: expected a Layer as inner, got {type(inner).__name__}")
        self.skip = Identity()
        self.inner = inner

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"SkipConcat: expected input (N, C, H, W), got shape {np.shape(x)}")
        return super().forward(x)


class DoubleConv(Sequential):
    """[3x3 conv (padding 1, no bias: BN's beta is the bias) -> BatchNorm2D -> ReLU] x 2.

    (N, in_channels, H, W) -> (N, out_channels, H, W); the first conv maps in_channels -> mid_channels
    (default out_channels). Weights: 9 (in * mid + mid * out) + 2 (mid + out) BN parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        mid = out_channels if mid_channels is None else mid_channels
        super().__init__(
            Conv2D(in_channels, mid, DOUBLE_CONV_KERNEL, padding=DOUBLE_CONV_PADDING, bias=False),
            BatchNorm2D(mid), ReLU(),
            Conv2D(mid, out_channels, DOUBLE_CONV_KERNEL, padding=DOUBLE_CONV_PADDING, bias=False),
            BatchNorm2D(out_channels), ReLU())
        self.in_channels, self.mid_channels, self.out_channels = in_channels, mid, out_channels
