"""Batch normalisation as pure functions (Ioffe & Szegedy, 2015).

Normalise over every axis except the feature axis 1:
    mu = mean(x),  var = mean((x - mu)^2)          (biased, used to normalise)
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta
Backward, with M the number of values averaged per feature:
    dbeta  = sum dy
    dgamma = sum dy * x_hat
    dx     = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
"""

from __future__ import annotations

import numpy as np


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _per_feature(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) -> broadcastable against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """Returns (y, x_hat, inv_std, batch_mean, batch_var_biased). x (N, C) or (N, C, H, W)."""
    axes = _axes(x)
    mu = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_feature(mu, x)) * _per_feature(inv_std, x)
    y = _per_feature(gamma, x) * x_hat + _per_feature(beta, x)
    return y, x_hat, inv_std, mu, var


def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    scale = gamma / np.sqrt(running_var + eps)
    return x * _per_feature(scale, x) + _per_feature(beta - running_mean * scale, x)


def batch_norm_backward(dy, x_hat, inv_std, gamma):
    """Returns (dx, dgamma, dbeta) for the training-mode forward."""
    axes = _axes(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    m = dy.size // dy.shape[1]
    dx = _per_feature(gamma * inv_std, dy) * (
        dy - _per_feature(dbeta / m, dy) - x_hat * _per_feature(dgamma / m, dy)
    )
    return dx, dgamma, dbeta
