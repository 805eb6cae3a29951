"""The multiplicative layer (Linear) and the shape/regularisation layers of a dense net."""

from __future__ import annotations

import numpy as np

from minicnn import core
from minicnn.core import Layer, Parameter
from minicnn.functional import check_array, check_size, linear, linear_backward, positive_int
from minicnn.functional.checks import check_float

from .shapes import ALL, Cost, Shape

INIT_CHUNK = 2**20  # values drawn per call: the float64 draws never need more than 8 MB at once


def kaiming_uniform(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) — PyTorch's default for Linear/Conv weights and biases.

    Drawn in float64 chunks straight into the float32 result: the same numbers as one whole-tensor
    draw (each value takes the next draw of the engine RNG), without a float64 copy of a big layer."""
    if not core.filling_weights():  # a build to count (`minicnn models`): lazily zeroed pages, nothing touched
        return np.zeros(shape, dtype=core.DEFAULT_DTYPE)
    bound = 1.0 / np.sqrt(fan_in)
    out = np.empty(shape, dtype=core.DEFAULT_DTYPE)
    flat = out.reshape(-1)  # a view: filling it fills out
    for lo in range(0, flat.size, INIT_CHUNK):
        hi = min(lo + INIT_CHUNK, flat.size)
        flat[lo:hi] = core.rng().uniform(-bound, bound, size=hi - lo)
    return out


class PlainWeight:
    """The weight hooks of `Linear` and `Conv2D` when the weight is itself the Parameter `weight`.
    A subclass that stores it otherwise (DCTLinear, DCTConv2D keep DCT coefficients) overrides these
    three; forward and backward call only them."""

    def _make_weight(self, shape: tuple[int, ...], fan_in: int) -> None:
        self.weight = Parameter(kaiming_uniform(shape, fan_in))

    def _weight(self, dtype) -> np.ndarray:
        """The weight forward uses, in `dtype`."""
        return self.weight.data.astype(dtype, copy=False)

    def _add_weight_grad(self, dw: np.ndarray) -> None:
        self.weight.grad += dw


class Linear(PlainWeight, Layer):
    """Fully-connected (multiplicative) layer: y = x W^T + b.

    x (N, in_features) -> y (N, out_features); weight (out_features, in_features), bias (out_features,).
    Backward (see `minicnn.functional.dense`): dx = dy W, dW += dy^T x, db += sum_n dy.
    Subclasses change how the weight is stored by overriding `_make_weight`, `_weight` and
    `_add_weight_grad` (DCTLinear keeps DCT coefficients); forward and backward stay these.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        who = type(self).__name__
        self.in_features = positive_int(in_features, who, "in_features")
        self.out_features = positive_int(out_features, who, "out_features")
        self._make_weight((out_features, in_features), in_features)
        self.bias = Parameter(kaiming_uniform((out_features,), in_features)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = type(self).__name__
        check_array(x, who, 2, f"(N, {self.in_features})")
        check_size(x, 1, self.in_features, who, f"(N, {self.in_features})")
        w = self._weight(x.dtype)
        b = None if self.bias is None else self.bias.data.astype(x.dtype, copy=False)
        self._cache = (x, w)  # cache: x, w
        return linear(x, w, b)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, w = self._cache
        self.check_dy(dy, (x.shape[0], w.shape[0]))
        dx, dw, db = linear_backward(dy, x, w)
        self._add_weight_grad(dw)
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def window(self) -> str:
        return ALL

    def output_shape(self, input_shape: Shape) -> Shape:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{type(self).__name__}: expected input ({self.in_features},), got {tuple(input_shape)}")
        return (self.out_features,)

    def cost(self, input_shape: Shape) -> Cost:
        """MACs = weights = IN OUT."""
        self.output_shape(input_shape)
        return Cost(self.in_features * self.out_features, self.in_features * self.out_features, "Fully connected")

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Flatten(Layer):
    """(N, C, H, W) or any (N, ...) -> (N, C*H*W). Backward reshapes back."""

    TRANSIENT = Layer.TRANSIENT + ("_shape",)  # forward's input shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"Flatten: expected an input (N, ...) of rank >= 2, got {np.shape(x)}")
        self._shape = x.shape  # cache: input shape only
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # (N, C*H*W); also for N = 0

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, (self._shape[0], int(np.prod(self._shape[1:]))))  # (N, C*H*W)
        return dy.reshape(self._shape)  # (N, C, H, W)

    def window(self) -> str:
        return ALL

    def output_shape(self, input_shape: Shape) -> Shape:
        return (int(np.prod(input_shape)),)


class Dropout(Layer):
    """Inverted dropout: in training y = x * m / (1 - p), m ~ Bernoulli(1 - p); identity in eval.

    Dividing by (1 - p) at training time keeps E[y] = x, so evaluation needs no rescaling.
    """

    TRANSIENT = Layer.TRANSIENT + ("_scale", "_shape")  # forward's mask / (1 - p), its input shape

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: expected 0 <= p < 1, got {p}")
        self.p = p

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float(x, "Dropout")
        self._shape = x.shape  # cache: the shape backward expects
        if not self.training or self.p == 0.0:
            self._scale = None
            return x
        keep = core.rng().random(x.shape) >= self.p
        self._scale = keep.astype(x.dtype) / (1.0 - self.p)  # cache: mask / (1 - p)
        return x * self._scale

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._shape)
        return dy if self._scale is None else dy * self._scale

    def window(self) -> None:
        return None

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"
