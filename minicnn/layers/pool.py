"""Pooling layers. The math (and the output-size formula) is in `minicnn.functional.pool` (P); MaxPool2D and
AvgPool2D take the same math, fast, from `minicnn.kernels.pool` (K) when `minicnn.runtime.kernels_enabled()`.

All are parameter-free except a learnable MixedPool2D. Hyper-parameters are public pairs:
`kernel_size=(KH, KW)`, `stride=(SH, SW)` (default: the kernel size), `padding=(PH, PW)`.
Each layer also answers `window()` and `output_shape(input_shape)` (`minicnn.layers.shapes`) without
being run; `output_shape` refuses the inputs forward refuses (a window larger than the padded input).
"""

from __future__ import annotations

import numpy as np

from minicnn import core, runtime
from minicnn.core import Layer, Parameter
from minicnn.functional import pool as P
from minicnn.functional import pool_variants as PV
from minicnn.functional.checks import pair, positive_pair
from minicnn.kernels import pool as K

from .shapes import WHOLE_MAP, Shape, Window, expect_map, window_output_shape


class _SlidingWindow(Layer):
    """A layer that reduces each channel over a sliding window given by its `kernel_size`, `stride` and
    `padding` pairs: its shape protocol (`minicnn.layers.shapes`)."""

    def window(self) -> Window:
        return Window(self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape: Shape) -> Shape:
        """(C, OH, OW), OH = floor((H + 2 PH - KH) / SH) + 1; ValueError if the window does not fit."""
        who = type(self).__name__
        expect_map(input_shape, None, who)
        return window_output_shape(self.window(), input_shape, input_shape[0], who)

    def _check_dy(self, dy, x_shape: tuple[int, ...]) -> None:
        """backward's dy must be the output's shape (N, C, OH, OW) for forward's input x_shape."""
        self.check_dy(dy, (x_shape[0], *self.output_shape(x_shape[1:])))


class _Pool2D(_SlidingWindow):
    """Shared constructor: kernel_size, stride (None -> kernel_size), padding, normalised to pairs."""

    TRANSIENT = Layer.TRANSIENT + ("_x_shape",)  # forward's input shape (avg/sum pooling)

    _has_padding = True

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        who = type(self).__name__
        self.kernel_size = positive_pair(kernel_size, who, "kernel_size")
        self.stride = self.kernel_size if stride is None else positive_pair(stride, who, "stride")
        self.padding = pair(padding, who, "padding")
        if not self._has_padding and self.padding != (0, 0):
            raise ValueError(f"{who}: padding is not supported, got {padding!r}")
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        if min(ph, pw) < 0 or 2 * ph > kh or 2 * pw > kw:
            raise ValueError(f"{who}: expected 0 <= padding <= kernel_size / 2, got padding {self.padding} "
                             f"with kernel_size {self.kernel_size}")

    def _args(self):
        return self.kernel_size, self.stride, self.padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2D(_Pool2D):
    """y = max over each KH x KW window (stride, -inf padding).

    backward routes each dy to its window's argmax (first maximum on ties, NaN counting as the largest;
    overlapping windows add), and only there (inf or NaN in dy included).
    cache: argmax indices (N, C, OH, OW) and the input shape — not the windows. Either backward takes
    either forward's argmax, so the kernel switch may flip between the two.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        if runtime.kernels_enabled():
            y, argmax = K.max_pool2d(x, *self._args(), who="MaxPool2D")  # the same math, fast
        else:
            y, argmax = P.max_pool2d(x, *self._args(), who="MaxPool2D")  # the course's math, as written
        self._cache = (argmax, x.shape)  # cache: argmax, input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        argmax, x_shape = self._cache
        self.check_dy(dy, argmax.shape)
        if runtime.kernels_enabled():
            return K.max_pool2d_backward(dy, argmax, x_shape, *self._args())
        return P.max_pool2d_backward(dy, argmax, x_shape, *self._args())


class AvgPool2D(_Pool2D):
    """y = mean over each window (padded zeros count); backward spreads dy / (KH*KW) over the window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = P.avg_pool2d(x, *self._args(), who="AvgPool2D")  # checks x first
        self._x_shape = x.shape  # cache: input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._check_dy(dy, self._x_shape)
        if runtime.kernels_enabled():
            return K.avg_pool2d_backward(dy, self._x_shape, *self._args())  # the same math, fast
        return P.avg_pool2d_backward(dy, self._x_shape, *self._args())


class SumPool2D(_Pool2D):
    """y = sum over each window (the lecture's sum-pooling); backward copies dy to the window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = P.sum_pool2d(x, *self._args(), who="SumPool2D")  # checks x first
        self._x_shape = x.shape  # cache: input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._check_dy(dy, self._x_shape)
        return P.sum_pool2d_backward(dy, self._x_shape, *self._args())


class GlobalAvgPool2D(Layer):
    """y[n, c] = mean_{h, w} x[n, c, h, w]: (N, C, H, W) -> (N, C) (or (N, C, 1, 1) with keepdims=True)."""

    TRANSIENT = Layer.TRANSIENT + ("_x_shape",)  # forward's input shape

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = P.global_avg_pool2d(x, self.keepdims, who="GlobalAvgPool2D")  # checks x first
        self._x_shape = x.shape  # cache: input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, (self._x_shape[0], *self.output_shape(self._x_shape[1:])))
        return P.global_avg_pool2d_backward(dy, self._x_shape)

    def window(self) -> str:
        return WHOLE_MAP  # one window as large as the input map

    def output_shape(self, input_shape: Shape) -> Shape:
        expect_map(input_shape, None, "GlobalAvgPool2D")
        return (input_shape[0], 1, 1) if self.keepdims else (input_shape[0],)

    def extra_repr(self) -> str:
        return f"keepdims={self.keepdims}"


class SoftPool2D(_Pool2D):
    """SoftPool: y = sum_k softmax(x)_k x_k over each window; dx_k += dy * p_k (1 + x_k - y)."""

    _has_padding = False

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, coef = PV.soft_pool2d(x, self.kernel_size, self.stride, who="SoftPool2D")
        self._cache = (coef, x.shape)  # cache: dy/dx per window position, input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        coef, x_shape = self._cache
        self._check_dy(dy, x_shape)
        return PV.soft_pool2d_backward(dy, coef, x_shape, self.kernel_size, self.stride)


class MixedPool2D(_Pool2D):
    """y = alpha * maxpool(x) + (1 - alpha) * avgpool(x).

    With learnable=False `alpha` is a fixed float; with learnable=True it is a Parameter of shape (1,)
    (gradient dalpha = sum dy * (max - avg)); it is not clipped to [0, 1].
    """

    def __init__(self, kernel_size, stride=None, padding=0, alpha: float = 0.5, learnable: bool = False):
        super().__init__(kernel_size, stride, padding)
        self.learnable = learnable
        self.alpha = Parameter(np.array([alpha], dtype=core.DEFAULT_DTYPE)) if learnable else float(alpha)

    def _alpha(self) -> float:
        return float(self.alpha.data[0]) if self.learnable else self.alpha

    def forward(self, x: np.ndarray) -> np.ndarray:
        a = self._alpha()
        y, y_max, y_avg, argmax = PV.mixed_pool2d(x, a, *self._args(), who="MixedPool2D")
        self._cache = (a, y_max, y_avg, argmax, x.shape)  # cache: alpha, both pooled maps, argmax, shape
        return y.astype(x.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        a, y_max, y_avg, argmax, x_shape = self._cache
        self._check_dy(dy, x_shape)
        dx, dalpha = PV.mixed_pool2d_backward(dy, a, y_max, y_avg, argmax, x_shape, *self._args())
        if self.learnable:
            self.alpha.grad += dalpha
        return dx

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self._alpha():g}, learnable={self.learnable}"


class StochasticPool2D(_Pool2D):
    """Stochastic pooling of non-negative activations.

    training: each window outputs the value at a position drawn with probability x_k / sum(x),
    using the engine generator `minicnn.core.rng()` (so `manual_seed` reproduces it); backward
    routes dy to the drawn position. eval: the probability-weighted average sum(x^2) / sum(x).
    """

    _has_padding = False

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.training:
            y, index = PV.stochastic_pool2d(x, self.kernel_size, self.stride, core.rng(), who="StochasticPool2D")
            self._cache = ("train", index, x.shape)  # cache: drawn positions, input shape
        else:
            y, coef = PV.stochastic_pool2d_eval(x, self.kernel_size, self.stride, who="StochasticPool2D")
            self._cache = ("eval", coef, x.shape)  # cache: dy/dx per window position, input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mode, saved, x_shape = self._cache
        self._check_dy(dy, x_shape)
        if mode == "train":
            return PV.stochastic_pool2d_backward(dy, saved, x_shape, self.kernel_size, self.stride)
        return PV.stochastic_pool2d_eval_backward(dy, saved, x_shape, self.kernel_size, self.stride)


class Subsample2D(_SlidingWindow):
    """Keep every s-th row and column: y = x[:, :, ::SH, ::SW]; backward puts dy back, zeros elsewhere.

    Seen as pooling with a 1x1 window: kernel_size = (1, 1), padding = (0, 0).
    """

    TRANSIENT = Layer.TRANSIENT + ("_x_shape",)  # forward's input shape

    def __init__(self, stride):
        super().__init__()
        self.stride = positive_pair(stride, "Subsample2D", "stride")
        self.kernel_size = (1, 1)
        self.padding = (0, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = P.subsample2d(x, self.stride, who="Subsample2D")  # checks x first
        self._x_shape = x.shape  # cache: input shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._check_dy(dy, self._x_shape)
        return P.subsample2d_backward(dy, self._x_shape, self.stride)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"
