"""Exercise batch_norm: the backward of batch normalisation (training mode).

Per feature (channel) c, over the M values of every other axis (N, or N*H*W):

    mu = mean(x),   var = mean((x - mu)^2)                (biased variance)
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta

Backward, given dy (same shape as x); sums and means over every axis but 1:

    dbeta  = sum dy
    dgamma = sum dy * x_hat
    dx     = gamma / sqrt(var + eps)
             * (dy - mean(dy) - x_hat * mean(dy * x_hat))

The two mean terms are there because mu and var depend on every x too.

Check your file with:  minicnn exercise check batch_norm
"""

import numpy as np


def batch_norm_backward(dy, x, gamma, eps):
    """Return (dx, dgamma, dbeta). x, dy (N, C) or (N, C, H, W); gamma (C,).

    >>> x = np.array([[1.0], [3.0]])  # mu 2, var 1, x_hat (-1, 1)
    >>> dx, dgamma, dbeta = batch_norm_backward(
    ...     np.array([[1.0], [0.0]]), x, np.array([2.0]), 0.0)
    >>> dx
    array([[0.],
           [0.]])
    >>> dgamma, dbeta
    (array([-1.]), array([1.]))
    """
    # BEGIN SOLUTION
    axes = (0,) + tuple(range(2, x.ndim))  # every axis but the feature axis
    shape = (1, -1) + (1,) * (x.ndim - 2)  # (C,) -> broadcasts against x
    mu = x.mean(axis=axes)
    inv_std = 1.0 / np.sqrt(x.var(axis=axes) + eps)
    x_hat = (x - mu.reshape(shape)) * inv_std.reshape(shape)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    m = dy.size // dy.shape[1]
    dx = (gamma * inv_std).reshape(shape) * (
        dy - (dbeta / m).reshape(shape) - x_hat * (dgamma / m).reshape(shape))
    return dx, dgamma, dbeta
    # END SOLUTION
