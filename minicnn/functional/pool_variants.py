"""The review's pooling variants, as pure functions: SoftPool, mixed and stochastic pooling.

Windows, stride and output size as in `minicnn.functional.pool` (no padding here, except mixed pooling,
which pads as max and average pooling do); k indexes the KH*KW positions of a window, row-major:

    SoftPool           y = sum_k softmax(x)_k x_k            backward: dx_k += dy * p_k (1 + x_k - y)
    stochastic (train) pick position k with probability p_k = x_k / sum x (x >= 0), y = x_k;
                       backward routes dy to k, as max pooling routes it to the argmax
    stochastic (eval)  y = sum_k p_k x_k = sum x^2 / sum x    backward: dx_k += dy (2 x_k - y) / sum x
    mixed              y = a * max + (1 - a) * avg            da = sum dy * (max - avg)

SoftPool and stochastic pooling copy the windows to (N, C, OH, OW, KH*KW) rows (`_windows`) and add
the rows' gradients back (`_scatter`); overlapping windows add.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checks import check_grad
from .pool import (
    PoolGeometry,
    _geometry,
    _geometry_dy,
    _pad,
    _tap,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)


def _windows(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Every window as a row: (N, C, OH, OW, KH*KW), a fresh array (entry k = window offset (k // KW, k % KW))."""
    N, C = x.shape[:2]
    view = sliding_window_view(_pad(x, g, 0.0), (g.KH, g.KW), axis=(2, 3))  # (N, C, H', W', KH, KW), no copy
    view = view[:, :, ::g.SH, ::g.SW][:, :, :g.OH, :g.OW]  # (N, C, OH, OW, KH, KW)
    return view.reshape(N, C, g.OH, g.OW, g.KH * g.KW)  # copy


def _scatter(cols: np.ndarray, x_shape: tuple[int, ...], g: PoolGeometry) -> np.ndarray:
    """Adjoint of `_windows`: add each window row (N, C, OH, OW, KH*KW) back onto the input grid."""
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + 2 * g.PH, W + 2 * g.PW), dtype=cols.dtype)
    for k, i, j in g.offsets():
        _tap(dxp, g, i, j)[...] += cols[..., k]
    return dxp[:, :, g.PH:g.PH + H, g.PW:g.PW + W]


# ---- SoftPool (Stergiou et al., 2021) ---------------------------------------------------------


def soft_pool2d(x: np.ndarray, kernel_size, stride=None, who: str = "soft_pool2d") -> tuple[np.ndarray, np.ndarray]:
    """SoftPool: y = sum_k e^{x_k} x_k / sum_k e^{x_k} over each window (a softmax-weighted mean).

    Stable form: the weights p = softmax(x - max(window)) are unchanged by the shift. Returns
    (y (N, C, OH, OW), coef (N, C, OH, OW, KH*KW)) where coef = dy/dx_k = p_k (1 + x_k - y) is what
    backward needs.
    """
    g = _geometry(x, kernel_size, stride, 0, who)
    cols = _windows(x, g)  # (N, C, OH, OW, K)
    e = np.exp(cols - cols.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    y = np.einsum("...k,...k->...", p, cols)
    coef = p * (1.0 + cols - y[..., None])
    return y, coef


def soft_pool2d_backward(dy: np.ndarray, coef: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                         stride=None) -> np.ndarray:
    """dx_k = sum over windows containing k of dy * p_k (1 + x_k - y)."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, 0, "soft_pool2d_backward")
    return _scatter(dy[..., None] * coef, x_shape, g)


# ---- mixed pooling (Yu et al., 2014) ----------------------------------------------------------


def mixed_pool2d(x: np.ndarray, alpha: float, kernel_size, stride=None, padding=0, who: str = "mixed_pool2d"):
    """y = alpha * maxpool(x) + (1 - alpha) * avgpool(x). Returns (y, y_max, y_avg, argmax)."""
    y_max, argmax = max_pool2d(x, kernel_size, stride, padding, who)
    y_avg = avg_pool2d(x, kernel_size, stride, padding, who)
    return alpha * y_max + (1.0 - alpha) * y_avg, y_max, y_avg, argmax


def mixed_pool2d_backward(dy: np.ndarray, alpha: float, y_max: np.ndarray, y_avg: np.ndarray,
                          argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None,
                          padding=0) -> tuple[np.ndarray, float]:
    """Returns (dx, dalpha): dx = alpha * maxpool'(dy) + (1 - alpha) * avgpool'(dy);
    dalpha = sum dy * (y_max - y_avg)."""
    check_grad(dy, y_max.shape, "mixed_pool2d_backward")
    dx = max_pool2d_backward(dy * alpha, argmax, x_shape, kernel_size, stride, padding)
    dx += avg_pool2d_backward(dy * (1.0 - alpha), x_shape, kernel_size, stride, padding)
    return dx, float(np.sum(dy * (y_max - y_avg)))


# ---- stochastic pooling (Zeiler & Fergus, 2013) -----------------------------------------------


def _nonnegative_windows(x: np.ndarray, kernel_size, stride, who: str):
    g = _geometry(x, kernel_size, stride, 0, who)
    if x.size and x.min() < 0:
        raise ValueError(f"{who}: expected non-negative activations (e.g. after ReLU), got minimum "
                         f"{x.min()} in input of shape {x.shape}")
    return g, _windows(x, g)


def stochastic_pool2d(x: np.ndarray, kernel_size, stride=None, generator: np.random.Generator | None = None,
                      who: str = "stochastic_pool2d") -> tuple[np.ndarray, np.ndarray]:
    """Training-time stochastic pooling: in each window pick position k with probability
    p_k = x_k / sum(x) (x >= 0) and output x_k. An all-zero window outputs 0 (position 0).

    Sampling: u ~ U[0, 1) per window, k = number of cumulative sums <= u * sum(x) (inverse CDF).
    Returns (y, index (N, C, OH, OW)); backward routes dy to `index` exactly like max pooling.
    """
    g, cols = _nonnegative_windows(x, kernel_size, stride, who)
    generator = np.random.default_rng() if generator is None else generator
    cum = np.cumsum(cols, axis=-1)  # (N, C, OH, OW, K)
    total = cum[..., -1]
    # u < total strictly (rounding of u * total could reach it): the first k with cum_k > u then
    # exists and has x_k > 0, so a zero activation is never drawn
    u = np.minimum(generator.random(total.shape) * total, np.nextafter(total, 0))
    index = (cum <= u[..., None]).sum(axis=-1)
    index[total == 0] = 0
    y = np.take_along_axis(cols, index[..., None], axis=-1)[..., 0]
    return y, index


def stochastic_pool2d_backward(dy: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                               stride=None) -> np.ndarray:
    """dx: dy goes to the sampled position of each window (sum over overlapping windows)."""
    _geometry_dy(dy, x_shape, kernel_size, stride, 0, "stochastic_pool2d_backward")
    return max_pool2d_backward(dy, index, x_shape, kernel_size, stride, 0)  # the same routing


def stochastic_pool2d_eval(x: np.ndarray, kernel_size, stride=None, who: str = "stochastic_pool2d_eval"
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Test-time stochastic pooling: the probability-weighted average
    y = sum_k p_k x_k = sum(x^2) / sum(x)  (0 for an all-zero window).
    Returns (y, coef) with coef = dy/dx_k = (2 x_k - y) / sum(x)."""
    _, cols = _nonnegative_windows(x, kernel_size, stride, who)
    s = cols.sum(axis=-1)
    safe = np.where(s > 0, s, 1.0)
    y = np.where(s > 0, np.einsum("...k,...k->...", cols, cols) / safe, 0.0).astype(x.dtype, copy=False)
    coef = np.where(s[..., None] > 0, (2.0 * cols - y[..., None]) / safe[..., None], 0.0)
    return y, coef.astype(x.dtype, copy=False)


def stochastic_pool2d_eval_backward(dy: np.ndarray, coef: np.ndarray, x_shape: tuple[int, ...],
                                    kernel_size, stride=None) -> np.ndarray:
    """dx_k = sum over windows containing k of dy * (2 x_k - y) / sum(x)."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, 0, "stochastic_pool2d_eval_backward")
    return _scatter(dy[..., None] * coef, x_shape, g)
