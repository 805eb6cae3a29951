"""Frequency-regularised layers (seed 002): the learnable weight lives in the DCT domain.

A `DCTConv2D` / `DCTConvTranspose2D` / `DCTLinear` stores `coeffs` C (a Parameter with the shape of the
spatial weight) and a 0/1 `mask` M that keeps the first `k` entries of C in zigzag order
(`minicnn.functional.zigzag_order`, low frequencies first) and truncates the tail. The weight the layer computes with is

    W = idct(M * C)          (orthonormal inverse DCT over EVERY axis of the weight tensor)

and the rest is the ordinary Conv2D / ConvTranspose2D / Linear: the DCT layers derive from them and
change only how the weight is made and how its gradient reaches the coefficients.

Backward. The layer first gets dL/dW from the ordinary backward, then maps it to the frequency domain:

    dL/dC = M * dct(dL/dW)

One line of derivation: W = idct(M * C) is linear in C, so dL/dC = (d W/d C)^T dL/dW = M * idct^T(dL/dW),
and the adjoint idct^T of the orthonormal inverse DCT is the DCT (D orthogonal: (D^T)^T = D).

Truncated entries stay exactly zero: `coeffs.mask` is the mask, and the optimizers multiply every
update and every momentum/Adam buffer by it (`minicnn.optim`), so neither momentum nor weight decay
can revive them; their gradient is zero anyway. `set_keep(k)` moves the truncation point: a smaller
k zeroes the newly truncated coefficients, a larger k lets more (zero-valued) coefficients train.

The mask is also a saved buffer (`state_dict()["...mask"]`), so a checkpoint of a truncated model
restores its truncation point.
"""

from __future__ import annotations

import numpy as np

import minicnn.kernels.conv  # noqa: F401  (loads the submodule: `kernels.conv` below)
from minicnn import functional as F
from minicnn import kernels, runtime
from minicnn.core import Layer, Parameter
from minicnn.functional.checks import check_array

from .conv import Conv2D, ConvTranspose2D
from .dense import Linear, kaiming_uniform
from .shapes import Cost, Shape
from .unet import Identity


def keep_count(keep: int | float, size: int, who: str) -> int:
    """`keep` as a number of coefficients: an int in [0, size], or a float fraction in (0, 1] of
    `size` (rounded up, so any positive fraction keeps at least one coefficient)."""
    if isinstance(keep, (bool, np.bool_)):
        raise ValueError(f"{who}: expected keep as an int count or a float fraction, got {keep!r}")
    if isinstance(keep, (int, np.integer)):
        if not 0 <= keep <= size:
            raise ValueError(f"{who}: expected a keep count in [0, {size}] (weight size), got {keep}")
        return int(keep)
    if isinstance(keep, (float, np.floating)):
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"{who}: expected a keep fraction in (0, 1], got {keep}")
        return min(size, int(np.ceil(keep * size - 1e-9)))
    raise ValueError(f"{who}: expected keep as an int count or a float fraction, got {type(keep).__name__}")


class _FrequencyWeight(Layer):
    """Shared part of the DCT layers: `coeffs`, `mask`, `spatial_weight()`, `set_keep()`, `keep`, and
    the three weight hooks of `Conv2D` / `Linear` (`_make_weight`, `_weight`, `_add_weight_grad`),
    which is all a DCT layer changes: forward and backward are the plain layer's."""

    def _init_frequency(self, weight: np.ndarray, keep: int | float) -> None:
        k = keep_count(keep, weight.size, type(self).__name__)
        coeffs = F.dct(weight)
        self.coeffs = Parameter(coeffs)
        self.register_buffer("mask", F.zigzag_mask(weight.shape, k))
        self.coeffs.data *= self.mask

    def _make_weight(self, shape: tuple[int, ...], fan_in: int) -> None:
        # the plain layer's initial weight, stored as its DCT (all kept; the constructor then truncates)
        self._init_frequency(kaiming_uniform(shape, fan_in), 1.0)

    def _weight(self, dtype) -> np.ndarray:
        return self.spatial_weight().astype(dtype, copy=False)

    def _accumulate_coeffs_grad(self, dw: np.ndarray) -> None:
        # dL/dC = M * dct(dL/dW)   (the DCT is the adjoint of the orthonormal IDCT)
        self.coeffs.grad += (self.mask * F.dct(dw)).astype(self.coeffs.grad.dtype, copy=False)

    _add_weight_grad = _accumulate_coeffs_grad  # the hook Conv2D.backward / Linear.backward call with dL/dW

    # The mask lives on the Parameter (where the optimizers read it); the layer attribute is a view
    # of it, so assigning `layer.mask` (as load_state_dict does) keeps the two in step.
    @property
    def mask(self) -> np.ndarray:
        return self.coeffs.mask

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != self.coeffs.shape:
            raise ValueError(f"{type(self).__name__}: expected a mask of shape {self.coeffs.shape}, "
                             f"got {value.shape}")
        if not np.all((value == 0) | (value == 1)):
            raise ValueError(f"{type(self).__name__}: expected a 0/1 mask")
        self.coeffs.mask = value.astype(bool)

    @property
    def keep(self) -> int:
        """Number of kept (not truncated) coefficients."""
        return int(np.count_nonzero(self.mask))

    def set_keep(self, keep: int | float) -> int:
        """Keep the first `keep` coefficients in zigzag order (count, or fraction in (0, 1] when a
        float); truncated coefficients are set to exactly zero. Returns the new count."""
        k = keep_count(keep, self.coeffs.size, type(self).__name__)
        self.mask = F.zigzag_mask(self.coeffs.shape, k)
        self.coeffs.data *= self.mask
        return k

    def spatial_weight(self) -> np.ndarray:
        """W = idct(mask * coeffs), in the dtype of `coeffs`."""
        return F.idct(self.coeffs.data * self.mask)

    def _keep_repr(self) -> str:
        return f"keep={self.keep}/{self.coeffs.size}"


class DCTConv2D(_FrequencyWeight, Conv2D):
    """`Conv2D` (groups 1, dilation 1) whose weight is W = idct(M * C), C = `coeffs`
    (out_channels, in_channels, KH, KW), one DCT over all four axes.

    x (N, C, H, W) -> y (N, out_channels, OH, OW),  OH = floor((H + 2 ph - KH) / sh) + 1 (and OW alike).
    Forward and backward are Conv2D's (its one dispatch: `minicnn.kernels.conv` or the plain
    `minicnn.functional.conv`) with the spatial weight W, then dC += M * dct(dW); everything else
    (`method`, buffers, `input_grad`) is Conv2D's.
    `padding`: int, pair, "valid" or "same". `keep`: coefficients kept (int) or a fraction (float in (0, 1]).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, keep: int | float = 1.0, method: str = "im2col"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias, method=method)
        self.set_keep(keep)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._keep_repr()}"


class DCTConvTranspose2D(_FrequencyWeight, ConvTranspose2D):
    """`ConvTranspose2D` (groups 1, dilation 1) whose weight is W = idct(M * C), C = `coeffs`
    (in_channels, out_channels, KH, KW) as ConvTranspose2D's weight, one DCT over all four axes.

    x (N, C, H, W) -> y (N, out_channels, OH, OW),  OH = (H - 1) sh - 2 ph + KH + output_padding (OW alike).
    Forward and backward are ConvTranspose2D's math (the same dispatch: `minicnn.kernels.conv` or the plain
    `minicnn.functional.conv`) with the spatial weight W, then dC += M * dct(dW). ConvTranspose2D has no
    weight hooks, so its two short methods are restated here with W in place of its `weight` Parameter
    (which this layer does not have: `coeffs` takes its place, before `bias`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, keep: int | float = 1.0, method: str = "im2col"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, bias=bias,
                         method=method)
        weight, bias_param = self.weight.data, self.bias
        self.weight = None  # unregisters the Parameter (Layer.__setattr__), then the attribute goes
        del self.weight
        self.bias = None
        self._init_frequency(weight, keep)
        self.bias = bias_param  # registered after coeffs, as in DCTConv2D

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = type(self).__name__
        check_array(x, who, 4, f"(N, {self.in_channels}, H, W)")
        w = self._weight(x.dtype)
        b = None if self.bias is None else self.bias.data.astype(x.dtype, copy=False)
        self._cache = (x, w)  # cache: x, w
        if runtime.kernels_enabled():
            return kernels.conv.conv_transpose2d(x, w, b, *self._args(), who=who)  # fast
        return F.conv.conv_transpose2d(x, w, b, *self._args(), who=who)  # the course's math

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, w = self._cache
        who = type(self).__name__
        if runtime.kernels_enabled():
            dx, dw, db = kernels.conv.conv_transpose2d_backward(dy, x, w, *self._args(), who=who)
        else:
            dx, dw, db = F.conv.conv_transpose2d_backward(dy, x, w, *self._args(), who=who)
        self._accumulate_coeffs_grad(dw)
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def cost(self, input_shape: Shape) -> Cost:
        """ConvTranspose2D's count: MACs = H W (C T KH KW), the spatial weight having the size of `coeffs`."""
        self.output_shape(input_shape)
        return Cost(input_shape[1] * input_shape[2] * self.coeffs.size, self.coeffs.size, "Conv transpose")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._keep_repr()}"


class DCTLinear(_FrequencyWeight, Linear):
    """`Linear` y = x W^T + b whose weight is W = idct(M * C), C = `coeffs` (out_features, in_features).

    x (N, in_features) -> y (N, out_features). Backward: Linear's (dx = dy W; db += sum_n dy), then
    dC += M * dct(dy^T x). `keep`: coefficients kept (int) or fraction of them (float in (0, 1]); 1.0 keeps
    all, and then the layer computes exactly what `Linear` with weight W does.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, keep: int | float = 1.0):
        super().__init__(in_features, out_features, bias=bias)
        self.set_keep(keep)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._keep_repr()}"


class FrequencyBias(_FrequencyWeight):
    """A bias in the frequency domain: y = x + b, b = idct(M * C) of shape (channels,), added along
    axis 1 (the channel axis of (N, C, H, W) or the feature axis of (N, F)). `coeffs` C, `mask` M,
    `set_keep` and the export are those of every DCT layer (a 1-D DCT, zigzag = natural order), so
    truncating to k keeps the k lowest frequencies of the bias vector (k = 1: one shared value).
    Backward: dx = dy;  dC += M * dct(sum of dy over every axis but 1)."""

    TRANSIENT = _FrequencyWeight.TRANSIENT + ("_shape",)  # forward's input (and output) shape

    def __init__(self, channels: int, keep: int | float = 1.0, bias: np.ndarray | None = None):
        super().__init__()
        self.channels = int(channels)
        init = np.zeros(self.channels, np.float32) if bias is None else np.asarray(bias, np.float32)
        if init.shape != (self.channels,):
            raise ValueError(f"FrequencyBias: expected bias of shape ({self.channels},), got {init.shape}")
        self._init_frequency(init, keep)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) and x.ndim >= 2
                and x.shape[1] == self.channels):
            raise ValueError(f"FrequencyBias: expected a floating array (N, {self.channels}, ...), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        b = self.spatial_weight().astype(x.dtype, copy=False)
        self._shape = x.shape  # cache: the shape backward expects
        return x + b.reshape((1, self.channels) + (1,) * (x.ndim - 2))  # (1, C, 1, 1) or (1, C)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._shape)
        self._accumulate_coeffs_grad(dy.sum(axis=tuple(a for a in range(dy.ndim) if a != 1)))
        return dy

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1 or input_shape[0] != self.channels:
            raise ValueError(f"FrequencyBias: expected input ({self.channels}, ...), got {tuple(input_shape)}")
        return tuple(input_shape)

    def window(self) -> None:
        return None

    def extra_repr(self) -> str:
        return f"{self.channels}, {self._keep_repr()}"


class FoldedBatchNorm(Identity):
    """Where a BatchNorm2D was before `minicnn.app.frequency.fold_batchnorm` moved it into the preceding
    convolution (its scale into the weights, its shift into the bias): y = x, dx = dy, no numbers. A
    named layer, so a model (and the meta `describe` writes for its compressed file) shows the fold."""
