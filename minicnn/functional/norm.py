"""Batch normalisation as pure functions (Ioffe & Szegedy, 2015).

Normalise over every axis except the feature axis 1:
    mu = mean(x),  var = mean((x - mu)^2)          (biased, used to normalise)
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta
Backward, with M the number of values averaged per feature:
    dbeta  = sum dy
    dgamma = sum dy * x_hat
    dx     = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

`batch_norm_train_reference` / `batch_norm_backward_reference` are these lines as written.
`batch_norm_train` / `batch_norm_backward` compute the same numbers for feature maps (N, C, H, W) with
fewer passes over memory, the sums done by BLAS (the reference's NumPy reductions over axes (0, 2, 3)
of an NCHW array run far below memory speed):
- per-(image, channel) sums are one matrix-vector product, x viewed as (N*C, H*W) times a ones vector;
  sums of products (dy * x_hat, (x - mu)^2) are row-wise dot products (`einsum`), with no temporary;
- dx is written as one per-channel affine map of dy and x_hat, dx = k dy + a x_hat + b, evaluated
  into dx and one scratch array.
"""

from __future__ import annotations

import numpy as np


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _per_feature(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) -> broadcastable against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_train_reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """Returns (y, x_hat, inv_std, batch_mean, batch_var_biased). x (N, C) or (N, C, H, W)."""
    axes = _axes(x)
    mu = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_feature(mu, x)) * _per_feature(inv_std, x)
    y = _per_feature(gamma, x) * x_hat + _per_feature(beta, x)
    return y, x_hat, inv_std, mu, var


def batch_norm_backward_reference(dy, x_hat, inv_std, gamma):
    """Returns (dx, dgamma, dbeta) for the training-mode forward."""
    axes = _axes(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    m = dy.size // dy.shape[1]
    dx = _per_feature(gamma * inv_std, dy) * (
        dy - _per_feature(dbeta / m, dy) - x_hat * _per_feature(dgamma / m, dy)
    )
    return dx, dgamma, dbeta


def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    scale = gamma / np.sqrt(running_var + eps)
    y = x * _per_feature(scale, x)
    y += _per_feature(beta - running_mean * scale, x)  # in place: no second temporary the size of x
    return y


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H*W), a view when a is C-contiguous (else a copy)."""
    return a.reshape(a.shape[0] * a.shape[1], -1)


def _channel_sums(rows: np.ndarray, n: int, other: np.ndarray | None = None) -> np.ndarray:
    """Sum over images and pixels per channel of rows (N*C, H*W) (or of rows * other) -> (C,)."""
    if other is None:
        per_map = rows @ np.ones(rows.shape[1], rows.dtype)  # (N*C,)
    else:
        per_map = np.einsum("ij,ij->i", rows, other)  # (N*C,)
    return per_map.reshape(n, -1).sum(axis=0)


def batch_norm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """`batch_norm_train_reference`, fast for (N, C, H, W): (y, x_hat, inv_std, mean, biased var)."""
    if x.ndim != 4:
        return batch_norm_train_reference(x, gamma, beta, eps)
    n, c = x.shape[:2]
    m = x.size // c
    mu = _channel_sums(_rows(x), n) / m
    x_hat = np.subtract(x, mu.reshape(1, c, 1, 1), order="C")  # (N, C, H, W), centred; scaled below
    rows = _rows(x_hat)  # (N*C, H*W)
    var = _channel_sums(rows, n, rows) / m
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat *= inv_std.reshape(1, c, 1, 1)
    y = np.multiply(x_hat, gamma.reshape(1, c, 1, 1))
    y += beta.reshape(1, c, 1, 1)
    return y, x_hat, inv_std, mu, var


def batch_norm_backward(dy, x_hat, inv_std, gamma):
    """`batch_norm_backward_reference`, fast for (N, C, H, W): (dx, dgamma, dbeta).

    dx = k dy + a x_hat + b per channel, with k = gamma / sigma, a = -k dgamma / M, b = -k dbeta / M."""
    if dy.ndim != 4:
        return batch_norm_backward_reference(dy, x_hat, inv_std, gamma)
    n, c = dy.shape[:2]
    m = dy.size // c
    dy_rows = _rows(np.ascontiguousarray(dy))  # (N*C, H*W)
    dbeta = _channel_sums(dy_rows, n)
    dgamma = _channel_sums(dy_rows, n, _rows(x_hat))
    k = gamma * inv_std
    dx = np.multiply(dy, k.reshape(1, c, 1, 1))
    scratch = np.multiply(x_hat, (-k * dgamma / m).reshape(1, c, 1, 1))
    scratch += (-k * dbeta / m).reshape(1, c, 1, 1)
    dx += scratch
    return dx, dgamma, dbeta
