"""The convolution family as layers: Conv2D and its special cases, transposed and untied variants.

Each layer wraps the convolution math and keeps what backward needs. The one dispatch point is in the
layers' forward and backward: the fast kernels (`minicnn.kernels.conv`) when
`minicnn.runtime.kernels_enabled()`, else the course's plain math (`minicnn.functional.conv`); both
have one signature. Weight layout (T, C/groups, KH, KW) as PyTorch (ConvTranspose2D: (C, T/groups, KH, KW)).
Weights and biases start as PyTorch's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups*KH*KW.
"""

from __future__ import annotations

import numpy as np

import minicnn.kernels.conv  # noqa: F401  (loads the submodule: `kernels.conv` below)
from minicnn import functional as F
from minicnn import kernels, runtime
from minicnn.core import Layer, Parameter
from minicnn.functional.checks import check_array, pair, positive_int, positive_pair
from minicnn.functional.conv import METHODS, resolve_padding, transpose_output_size
from minicnn.functional.locally_connected import (
    locally_connected2d,
    locally_connected2d_backward,
    locally_connected_output_size,
)
from minicnn.kernels.workspace import ConvWorkspace

from .dense import PlainWeight, kaiming_uniform
from .shapes import UNKNOWN, Cost, Shape, Window, expect_map, window_output_shape


def _set_conv_hyperparameters(layer: Layer, who: str, in_channels, out_channels, kernel_size, stride, dilation,
                              groups, method: str) -> None:
    """Check and store the hyper-parameters Conv2D and ConvTranspose2D share (pairs for 2-D ones)."""
    layer.in_channels = positive_int(in_channels, who, "in_channels")
    layer.out_channels = positive_int(out_channels, who, "out_channels")
    layer.groups = positive_int(groups, who, "groups")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{who}: groups={groups} must divide in_channels={in_channels} and "
                         f"out_channels={out_channels}")
    if method not in METHODS:
        raise ValueError(f"{who}: expected method one of {sorted(METHODS)}, got {method!r}")
    layer.kernel_size = positive_pair(kernel_size, who, "kernel_size")
    layer.stride = positive_pair(stride, who, "stride")
    layer.dilation = positive_pair(dilation, who, "dilation")


class Conv2D(PlainWeight, Layer):
    """2-D convolution (cross-correlation), the lecture's tied-weight layer:

        y[n, t, oh, ow] = b[t] + sum_{s,i,j} w[t, s, i, j] x_pad[n, g(t) C/G + s, oh sh + i dil_h, ow sw + j dil_w]

    x (N, C, H, W) -> y (N, T, OH, OW), OH = floor((H + 2 ph - dil_h (KH - 1) - 1) / sh) + 1.
    Backward: dx = full correlation of dy with flip_kernel(w); dw = correlation of x with dy; db = sum dy.
    `method` picks the algorithm ("im2col" default; "direct" the slow reference; "fft" for large kernels).
    Between forward and backward the layer keeps x and w (and, on the fast path with "fft", the spectrum
    of x in a ConvWorkspace); the im2col kernels rebuild x's columns in backward instead of keeping them.
    `input_grad = False` makes backward return None for dx (the fast path skips computing it): nobody
    needs the gradient with respect to the image, and it is the costliest part
    (`minicnn.app.fit(input_grad=False)`, the default, sets it on a network's first layer while training
    and restores it afterwards).
    Subclasses change how the weight is stored by overriding `_make_weight`, `_weight` and
    `_add_weight_grad` (DCTConv2D keeps DCT coefficients); forward and backward stay these.
    """

    TRANSIENT = Layer.TRANSIENT + ("_workspace",)  # what forward leaves for backward (release() drops it)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, method: str = "im2col"):
        super().__init__()
        who = type(self).__name__
        _set_conv_hyperparameters(self, who, in_channels, out_channels, kernel_size, stride, dilation, groups, method)
        self.padding = resolve_padding(padding, self.kernel_size, self.dilation, self.stride, who)
        self.method = method
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self._make_weight((out_channels, in_channels // groups, *self.kernel_size), fan_in)
        self.bias = Parameter(kaiming_uniform((out_channels,), fan_in)) if bias else None
        self.input_grad = True

    def _args(self):
        return self.stride, self.padding, self.dilation, self.groups, self.method

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = type(self).__name__
        check_array(x, who, 4, f"(N, {self.in_channels}, H, W)")
        w = self._weight(x.dtype)
        b = None if self.bias is None else self.bias.data.astype(x.dtype, copy=False)
        self._cache = (x, w)  # cache: x, w (both paths' backward needs only these)
        self._workspace = None  # the fast path's extra (fft: the spectrum of x); the plain math keeps nothing
        if runtime.kernels_enabled():
            self._workspace = ConvWorkspace()
            return kernels.conv.conv2d(x, w, b, *self._args(), who=who, workspace=self._workspace)  # fast
        return F.conv.conv2d(x, w, b, *self._args(), who=who)  # the course's math, as written

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, w = self._cache
        who = type(self).__name__
        if runtime.kernels_enabled():
            dx, dw, db = kernels.conv.conv2d_backward(dy, x, w, *self._args(), who=who, workspace=self._workspace,
                                                      input_grad=self.input_grad)
        else:
            dx, dw, db = F.conv.conv2d_backward(dy, x, w, *self._args(), who=who)
            dx = dx if self.input_grad else None  # the plain math computes dx anyway; the layer's answer is one
        self._add_weight_grad(dw)
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def window(self) -> Window:
        return Window(self.kernel_size, self.stride, self.padding, self.dilation)

    def output_shape(self, input_shape: Shape) -> Shape:
        who = type(self).__name__
        expect_map(input_shape, self.in_channels, who)
        return window_output_shape(self.window(), input_shape, self.out_channels, who)

    def cost(self, input_shape: Shape) -> Cost:
        """MACs = OH OW T (C/groups) KH KW (a depthwise conv is counted at its output size)."""
        _, oh, ow = self.output_shape(input_shape)
        (kh, kw), c, t = self.kernel_size, self.in_channels, self.out_channels
        weights = t * (c // self.groups) * kh * kw
        if kh == kw == 1:
            kind = "Conv 1x1"
        elif self.groups == c == t and c > 1:
            kind = f"Conv DW {kh}x{kw}"
        else:
            kind = f"Conv {kh}x{kw}"
        return Cost(oh * ow * weights, weights, kind)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, method={self.method!r}")


class DepthwiseConv2D(Conv2D):
    """Depthwise convolution: one KH x KW filter per channel, no mixing across channels (groups = C):

        V(x, y, t) = sum_{i,j} K(i - x + d, j - y + d, t) U(i, j, t)

    weight (C, 1, KH, KW). C times fewer operations and parameters than a full convolution. The im2col
    method runs it as a shift-and-accumulate over the taps (it is not a matrix multiply).
    """

    def __init__(self, channels: int, kernel_size, stride=1, padding=0, bias: bool = True, method: str = "im2col"):
        super().__init__(channels, channels, kernel_size, stride, padding, 1, channels, bias, method)


class PointwiseConv2D(Conv2D):
    """1x1 convolution ("network in network"): the same small fully-connected layer at every pixel,

        V(x, y, t) = sum_s K(1, 1, s, t) U(x, y, s)

    weight (T, C, 1, 1): the 4-D kernel is really a T x C matrix. No spatial propagation.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 1, bias=bias)


class SeparableConv2D(Layer):
    """Depthwise separable convolution (Xception): DepthwiseConv2D then PointwiseConv2D, no nonlinearity
    between. Parameters C KH KW + C T (+ biases) instead of C T KH KW. Children: `depthwise`, `pointwise`;
    the bias (if any) is the pointwise one."""

    runs_children_in_order = True  # for `minicnn.layers.walk`: depthwise, then pointwise

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__()
        self.depthwise = DepthwiseConv2D(in_channels, kernel_size, stride, padding, bias=False)
        self.pointwise = PointwiseConv2D(in_channels, out_channels, bias=bias)
        self.in_channels, self.out_channels = self.depthwise.in_channels, self.pointwise.out_channels
        self.kernel_size, self.stride = self.depthwise.kernel_size, self.depthwise.stride
        self.padding, self.dilation = self.depthwise.padding, self.depthwise.dilation
        self.groups, self.method = 1, self.depthwise.method

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(x, "SeparableConv2D", 4, f"(N, {self.in_channels}, H, W)")
        return self.pointwise.forward(self.depthwise.forward(x))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.depthwise.backward(self.pointwise.backward(dy))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class ConvTranspose2D(Layer):
    """Transposed convolution ("deconvolution", learnable upsampling): the data-gradient of a Conv2D,
    used as a forward pass. x (N, C, H, W) -> y (N, T, OH, OW),

        OH = (H - 1) sh - 2 ph + dh (KH - 1) + output_padding + 1,

    weight (C, T/groups, KH, KW) as PyTorch. Forward: dilate x by the stride, pad, correlate with
    flip_kernel(w). Backward: dx is a plain convolution of dy with w.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, dilation=1, groups: int = 1, method: str = "im2col"):
        super().__init__()
        who = type(self).__name__
        _set_conv_hyperparameters(self, who, in_channels, out_channels, kernel_size, stride, dilation, groups, method)
        self.padding = resolve_padding(padding, self.kernel_size, self.dilation, (1, 1), who)
        self.output_padding = pair(output_padding, who, "output_padding")
        if not all(0 <= o < s for o, s in zip(self.output_padding, self.stride, strict=True)):
            raise ValueError(f"{who}: expected 0 <= output_padding < stride {self.stride}, got {self.output_padding}")
        self.method = method
        fan_in = out_channels // groups * self.kernel_size[0] * self.kernel_size[1]  # PyTorch's choice
        self.weight = Parameter(kaiming_uniform((in_channels, out_channels // groups, *self.kernel_size), fan_in))
        self.bias = Parameter(kaiming_uniform((out_channels,), fan_in)) if bias else None

    def _args(self):
        return self.stride, self.padding, self.output_padding, self.dilation, self.groups, self.method

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(x, type(self).__name__, 4, f"(N, {self.in_channels}, H, W)")
        w = self.weight.data.astype(x.dtype, copy=False)
        b = None if self.bias is None else self.bias.data.astype(x.dtype, copy=False)
        self._cache = (x, w)  # cache: x, w
        if runtime.kernels_enabled():
            return kernels.conv.conv_transpose2d(x, w, b, *self._args(), who=type(self).__name__)  # fast
        return F.conv.conv_transpose2d(x, w, b, *self._args(), who=type(self).__name__)  # the course's math

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, w = self._cache
        if runtime.kernels_enabled():
            dx, dw, db = kernels.conv.conv_transpose2d_backward(dy, x, w, *self._args(), who=type(self).__name__)
        else:
            dx, dw, db = F.conv.conv_transpose2d_backward(dy, x, w, *self._args(), who=type(self).__name__)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def window(self) -> str:
        return UNKNOWN  # every input position spreads over a window of outputs: not a sliding window

    def output_shape(self, input_shape: Shape) -> Shape:
        expect_map(input_shape, self.in_channels, type(self).__name__)
        out = tuple(transpose_output_size(input_shape[1 + a], self.kernel_size[a], self.stride[a], self.padding[a],
                                          self.dilation[a], self.output_padding[a]) for a in range(2))
        if min(out) < 1:
            raise ValueError(f"{type(self).__name__}: padding {self.padding} leaves an empty output {out} for input "
                             f"{tuple(input_shape)}")
        return (self.out_channels,) + out

    def cost(self, input_shape: Shape) -> Cost:
        """MACs = H W (C T/groups KH KW): every input value meets every weight of its group once."""
        self.output_shape(input_shape)
        return Cost(input_shape[1] * input_shape[2] * self.weight.size, self.weight.size, "Conv transpose")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}")


class LocallyConnected2D(Layer):
    """Locally-connected layer (the lecture's first idea): a receptive field like a convolution, but
    UNTIED weights — every output position (oh, ow) has its own kernel:

        V(x, y, t) = sum_{i,j,s} K^{x,y,t}(i - x + d, j - y + d, s) U(i, j, s)

    weight (OH, OW, T, C, KH, KW), bias (T, OH, OW). `input_size` (H, W) fixes OH, OW.
    Parameters OH OW T C KH KW: O((W / 2d)^2) fewer than fully connected, O(W^2) more than a convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size, kernel_size, stride=1, padding=0,
                 bias: bool = True):
        super().__init__()
        who = "LocallyConnected2D"
        self.in_channels = positive_int(in_channels, who, "in_channels")
        self.out_channels = positive_int(out_channels, who, "out_channels")
        self.input_size = positive_pair(input_size, who, "input_size")
        self.kernel_size = positive_pair(kernel_size, who, "kernel_size")
        self.stride = positive_pair(stride, who, "stride")
        self.padding = resolve_padding(padding, self.kernel_size, (1, 1), self.stride, who)
        self.dilation, self.groups = (1, 1), 1
        oh, ow = locally_connected_output_size(self.input_size, self.kernel_size, self.stride, self.padding, who)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(kaiming_uniform((oh, ow, out_channels, in_channels, *self.kernel_size), fan_in))
        self.bias = Parameter(kaiming_uniform((out_channels, oh, ow), fan_in)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(x, "LocallyConnected2D", 4, f"(N, {self.in_channels}, {self.input_size[0]}, {self.input_size[1]})")
        w = self.weight.data.astype(x.dtype, copy=False)
        b = None if self.bias is None else self.bias.data.astype(x.dtype, copy=False)
        y = locally_connected2d(x, w, b, self.stride, self.padding, who="LocallyConnected2D")
        self._cache = (x, w)  # cache: x, w
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, w = self._cache
        self.check_dy(dy, (x.shape[0], w.shape[2], w.shape[0], w.shape[1]))  # (N, T, OH, OW)
        dx, dw, db = locally_connected2d_backward(dy, x, w, self.stride, self.padding)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def window(self) -> Window:
        return Window(self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape: Shape) -> Shape:
        expect_map(input_shape, self.in_channels, "LocallyConnected2D")
        if tuple(input_shape[1:]) != self.input_size:
            raise ValueError(f"LocallyConnected2D: expected input ({self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}), got {tuple(input_shape)}")
        return (self.out_channels,) + tuple(self.weight.shape[:2])  # weight (OH, OW, T, C, KH, KW)

    def cost(self, input_shape: Shape) -> Cost:
        """MACs = weights = OH OW T C KH KW: one kernel per output position."""
        self.output_shape(input_shape)
        return Cost(self.weight.size, self.weight.size, "Locally connected")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
