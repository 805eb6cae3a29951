"""Interpolation upsampling layer. Math in `minicnn.functional.upsample`."""

from __future__ import annotations

import numpy as np

from minicnn.core import Layer
from minicnn.functional import upsample as U
from minicnn.functional.checks import positive_pair

from .shapes import UNKNOWN, Shape


class Upsample(Layer):
    """(N, C, H, W) -> (N, C, H*sh, W*sw) by integer `scale_factor`.

    mode "nearest" (copy each value to an sh x sw block), "bilinear" or "bicubic" (PyTorch
    `align_corners=False`). Linear in x, so backward applies the transposed interpolation to dy.
    """

    TRANSIENT = Layer.TRANSIENT + ("_x_shape",)  # forward's input shape

    def __init__(self, scale_factor=2, mode: str = "nearest"):
        super().__init__()
        if mode not in U.MODES:
            raise ValueError(f"Upsample: expected mode in {U.MODES}, got {mode!r}")
        self.scale_factor = positive_pair(scale_factor, "Upsample", "scale_factor")
        self.mode = mode

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = U.upsample2d(x, self.scale_factor, self.mode, who="Upsample")  # checks x first
        self._x_shape = x.shape  # cache: input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, c, h, w = self._x_shape
        self.check_dy(dy, (n, c, h * self.scale_factor[0], w * self.scale_factor[1]))
        return U.upsample2d_backward(dy, self._x_shape, self.scale_factor, self.mode)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"Upsample: expected input (C, H, W), got {tuple(input_shape)}")
        c, h, w = input_shape
        return c, h * self.scale_factor[0], w * self.scale_factor[1]

    def window(self) -> str:
        return UNKNOWN

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
