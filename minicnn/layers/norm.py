"""Batch normalisation layers. Math in `minicnn.functional.norm` (F); the same math, fast, in
`minicnn.kernels.norm` (K), taken when `minicnn.runtime.kernels_enabled()`.

Running statistics as PyTorch keeps them: running_mean starts at 0, running_var at 1, and in
training each batch updates them with momentum 0.1 using the *unbiased* batch variance:
    running = (1 - momentum) * running + momentum * batch_stat
A batch holding NaN or infinity leaves them unchanged (with a RuntimeWarning): its output is NaN,
which the training loop reports, but the statistics stay usable.
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn import functional as F
from minicnn import runtime
from minicnn.core import DEFAULT_DTYPE, Layer, Parameter
from minicnn.kernels import norm as K

from .shapes import Shape


class _BatchNorm(Layer):
    _ndim = 0
    _layout = ""  # a batch, "(N, {C}, H, W)"
    _example = ""  # one example, "({C}, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=DEFAULT_DTYPE))  # gamma
        self.bias = Parameter(np.zeros(num_features, dtype=DEFAULT_DTYPE))  # beta
        self.register_buffer("running_mean", np.zeros(num_features, dtype=DEFAULT_DTYPE))
        self.register_buffer("running_var", np.ones(num_features, dtype=DEFAULT_DTYPE))

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = type(self).__name__
        layout = self._layout.format(C=self.num_features)
        F.check_array(x, who, self._ndim, layout)
        F.check_size(x, 1, self.num_features, who, layout)
        gamma = self.weight.data.astype(x.dtype, copy=False)
        beta = self.bias.data.astype(x.dtype, copy=False)
        if not self.training:
            self._cache = None
            mean, var = self.running_mean.astype(x.dtype), self.running_var.astype(x.dtype)
            if runtime.kernels_enabled():
                return K.batch_norm_eval(x, gamma, beta, mean, var, self.eps)
            return F.batch_norm_eval(x, gamma, beta, mean, var, self.eps)
        m = x.size // x.shape[1]
        if m < 2:
            raise ValueError(f"{who}: expected more than 1 value per channel in training, got shape {x.shape}")
        if runtime.kernels_enabled():  # the same math, fast: no x_hat, backward reads x
            y, _, inv_std, mu, var = K.batch_norm_train(x, gamma, beta, self.eps, keep_x_hat=False)
            self._cache = (True, x, mu, inv_std, gamma)  # cache: x (a reference, not a copy), mean, 1/sigma, gamma
        else:  # the course's math, as written
            y, x_hat, inv_std, mu, var = F.batch_norm_train(x, gamma, beta, self.eps)
            self._cache = (False, x_hat, None, inv_std, gamma)  # cache: x_hat, 1/sigma, gamma
        self.update_running(mu, var, m, who)
        return y

    def update_running(self, mu: np.ndarray, var: np.ndarray, m: int, who: str) -> None:
        """running = (1 - momentum) running + momentum * batch statistic (unbiased variance)."""
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(var))):  # one NaN would stay in them forever
            warnings.warn(f"{who}: the batch holds NaN or infinity; running statistics not updated", RuntimeWarning,
                          stacklevel=3)
            return
        unbiased = var * m / (m - 1)
        mom = self.momentum
        self.running_mean = ((1 - mom) * self.running_mean + mom * mu).astype(self.running_mean.dtype)
        self.running_var = ((1 - mom) * self.running_var + mom * unbiased).astype(self.running_var.dtype)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """The backward of whichever path made the cache (the kernel switch may have flipped since)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward in eval mode is not supported")
        by_kernel, saved, mu, inv_std, gamma = self._cache
        self.check_dy(dy, saved.shape)
        if by_kernel:  # saved is x
            dx, dgamma, dbeta = K.batch_norm_backward(dy, None, inv_std, gamma, x=saved, mean=mu)
        else:  # saved is x_hat
            dx, dgamma, dbeta = F.batch_norm_backward(dy, saved, inv_std, gamma)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        return dx

    def window(self) -> None:
        return None  # position by position

    def output_shape(self, input_shape: Shape) -> Shape:
        """The input shape, which must be (C,) or (C, H, W) with C = num_features."""
        shape = tuple(input_shape)
        if len(shape) != self._ndim - 1 or shape[0] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected input {self._example.format(C=self.num_features)}, "
                             f"got {shape}")
        return shape

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1D(_BatchNorm):
    """Batch norm over features of x (N, C): statistics over the batch axis."""

    _ndim = 2
    _layout = "(N, {C})"
    _example = "({C},)"


class BatchNorm2D(_BatchNorm):
    """Batch norm over channels of x (N, C, H, W): statistics over N, H and W."""

    _ndim = 4
    _layout = "(N, {C}, H, W)"
    _example = "({C}, H, W)"
