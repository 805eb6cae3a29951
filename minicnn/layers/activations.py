"""Nonlinearities as layers. The math is in `minicnn.functional.dense`; these cache what backward needs.
ReLU takes the same math, fast, from `minicnn.kernels.activations` when `minicnn.runtime.kernels_enabled()`.

All but Maxout act value by value: their output shape is their input shape and each output sees one
input position (`window()` None, `minicnn.layers.shapes`)."""

from __future__ import annotations

from minicnn import functional as F
from minicnn import runtime
from minicnn.core import Layer
from minicnn.functional.checks import check_float, positive_int
from minicnn.kernels import activations as K

from .shapes import Shape


class _Elementwise(Layer):
    """A layer applied value by value: any input shape, the same output shape."""

    def window(self) -> None:
        return None

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


class ReLU(_Elementwise):
    """y = max(x, 0); dx = dy * [x > 0].

    The kernel (`minicnn.kernels.activations`) caches the boolean mask [x > 0], not x (a quarter of the
    memory in float32, and x can be freed by the layer before); the plain path caches x. Backward takes
    the path that made the cache, so the kernel switch may flip in between."""

    TRANSIENT = Layer.TRANSIENT + ("_positive", "_x")  # forward's mask [x > 0] (kernel) or input (plain)

    def forward(self, x):
        check_float(x, "ReLU")
        if runtime.kernels_enabled():  # the same math, fast
            y, self._positive = K.relu(x, with_mask=True)  # cache: [x > 0]
            self._x = None
        else:  # the course's math, as written
            y, self._x, self._positive = F.relu(x), x, None  # cache: x
        return y

    def backward(self, dy):
        if self._positive is not None:  # the kernel made the cache
            self.check_dy(dy, self._positive.shape)
            return K.relu_backward(dy, None, positive=self._positive)
        self.check_dy(dy, self._x.shape)
        return F.relu_backward(dy, self._x)


class ReLU6(_Elementwise):
    """y = min(max(x, 0), 6) (MobileNet); dx = dy * [0 < x < 6]."""

    TRANSIENT = Layer.TRANSIENT + ("_x",)  # forward's input

    def forward(self, x):
        check_float(x, "ReLU6")
        self._x = x  # cache: x
        return F.relu6(x)

    def backward(self, dy):
        self.check_dy(dy, self._x.shape)
        return F.relu6_backward(dy, self._x)


class LeakyReLU(_Elementwise):
    """y = max(x, a x) for 0 <= a < 1; dx = dy * (1 if x > 0 else a)."""

    TRANSIENT = Layer.TRANSIENT + ("_x",)  # forward's input

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"LeakyReLU: expected 0 <= alpha < 1, got {alpha}")
        self.alpha = alpha

    def forward(self, x):
        check_float(x, "LeakyReLU")
        self._x = x  # cache: x
        return F.leaky_relu(x, self.alpha)

    def backward(self, dy):
        self.check_dy(dy, self._x.shape)
        return F.leaky_relu_backward(dy, self._x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(_Elementwise):
    """y = 1 / (1 + e^-x); dx = dy * y (1 - y)."""

    TRANSIENT = Layer.TRANSIENT + ("_y",)  # forward's output

    def forward(self, x):
        check_float(x, "Sigmoid")
        self._y = F.sigmoid(x)  # cache: y
        return self._y

    def backward(self, dy):
        self.check_dy(dy, self._y.shape)
        return F.sigmoid_backward(dy, self._y)


class Tanh(_Elementwise):
    """y = tanh(x); dx = dy * (1 - y^2)."""

    TRANSIENT = Layer.TRANSIENT + ("_y",)  # forward's output

    def forward(self, x):
        check_float(x, "Tanh")
        self._y = F.tanh(x)  # cache: y
        return self._y

    def backward(self, dy):
        self.check_dy(dy, self._y.shape)
        return F.tanh_backward(dy, self._y)


class GELU(_Elementwise):
    """y = x Phi(x) (exact, erf form); dx = dy * (Phi(x) + x phi(x))."""

    TRANSIENT = Layer.TRANSIENT + ("_x",)  # forward's input

    def forward(self, x):
        check_float(x, "GELU")
        self._x = x  # cache: x
        return F.gelu(x)

    def backward(self, dy):
        self.check_dy(dy, self._x.shape)
        return F.gelu_backward(dy, self._x)


class Maxout(Layer):
    """f(x) = max_k (a_k x + b_k): max over groups of `pieces` consecutive channels (or features).

    Put it after a Linear/Conv layer with pieces * C outputs: those outputs are the a_k x + b_k.
    (N, pieces*C, ...) -> (N, C, ...). Backward routes dy to the winning piece.
    """

    TRANSIENT = Layer.TRANSIENT + ("_idx",)  # forward's winning pieces

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = positive_int(pieces, "Maxout", "pieces")

    def forward(self, x):
        check_float(x, "Maxout")
        if x.ndim < 2 or x.shape[1] % self.pieces:
            raise ValueError(
                f"Maxout: expected input (N, C, ...) with C divisible by pieces={self.pieces}, "
                f"got shape {x.shape}"
            )
        y, self._idx = F.maxout(x, self.pieces)  # cache: argmax piece per output
        return y

    def backward(self, dy):
        self.check_dy(dy, self._idx.shape)
        return F.maxout_backward(dy, self._idx, self.pieces)

    def window(self) -> None:
        return None  # the pieces of one output sit at its own position

    def output_shape(self, input_shape: Shape) -> Shape:
        """(C / pieces, ...) for an input (C, ...)."""
        shape = tuple(input_shape)
        if len(shape) < 1 or shape[0] % self.pieces:
            raise ValueError(f"Maxout: expected input (C, ...) with C divisible by pieces={self.pieces}, got {shape}")
        return (shape[0] // self.pieces,) + shape[1:]

    def extra_repr(self):
        return f"pieces={self.pieces}"
