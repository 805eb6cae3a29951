"""Batch normalisation as pure functions (Ioffe & Szegedy, 2015).

Normalise over every axis except the feature axis 1 (x (N, C) or (N, C, H, W)), with M the number of
values averaged per feature (N, or N*H*W):
    mu = mean(x),  var = mean((x - mu)^2)          (biased, used to normalise)
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta
Backward:
    dbeta  = sum dy
    dgamma = sum dy * x_hat
    dx     = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
Eval mode uses the running statistics instead of the batch's.

The same math, fast (no x_hat array, per-map sums, float64 statistics, workers): `minicnn.kernels.norm`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_grad


def _axes(x: np.ndarray) -> tuple[int, ...]:
    """Every axis but the feature axis 1: (0,) for (N, C), (0, 2, 3) for (N, C, H, W)."""
    return (0,) + tuple(range(2, x.ndim))


def _per_feature(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) -> broadcastable against x (N, C, ...): (1, C) or (1, C, 1, 1)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode forward. Returns (y, x_hat, inv_std, mu, var): y and x_hat like x; inv_std =
    1 / sqrt(var + eps), the batch mean mu and the biased batch variance var (C,), in x's dtype.
    x_hat and inv_std are what `batch_norm_backward` needs; mu and var update the running statistics."""
    axes = _axes(x)
    mu = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_feature(mu, x)) * _per_feature(inv_std, x)
    y = _per_feature(gamma, x) * x_hat + _per_feature(beta, x)
    return y, x_hat, inv_std, mu, var


def batch_norm_backward(dy: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx, dgamma, dbeta) for the training-mode forward; dy and x_hat like x, inv_std (C,)."""
    check_grad(dy, x_hat.shape, "batch_norm_backward")
    axes = _axes(dy)
    m = dy.size // dy.shape[1]  # values averaged per feature
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    dx = _per_feature(gamma * inv_std, dy) * (dy - _per_feature(dbeta / m, dy) - x_hat * _per_feature(dgamma / m, dy))
    return dx, dgamma, dbeta


def batch_norm_eval(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                    running_var: np.ndarray, eps: float) -> np.ndarray:
    """Eval-mode forward: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    x_hat = (x - _per_feature(running_mean, x)) / np.sqrt(_per_feature(running_var, x) + eps)
    return _per_feature(gamma, x) * x_hat + _per_feature(beta, x)


def channel_sums(a: np.ndarray) -> np.ndarray:
    """Per-channel sum of a (N, C, H, W) over images and pixels -> float64 (C,): sum_{n, h, w} a[n, c, h, w].
    Batch norm's dbeta, and a convolution's bias gradient db."""
    return a.sum(axis=(0, 2, 3), dtype=np.float64)
