"""The multiplicative (fully-connected) layer and the pointwise nonlinearities, as pure functions.

Lecture notation for the multiplicative layer, y = W x + b (per example), mapped to code with a
batch of row vectors: x (N, IN), w (OUT, IN), b (OUT,), y (N, OUT) and y = x @ w.T + b.

    dz/dx = W^T dz/dy   ->  dx = dy @ w            (N, IN)
    dz/dW = dz/dy x^T   ->  dw = dy.T @ x          (OUT, IN)   summed over the batch
    dz/db = sum dz/dy   ->  db = dy.sum(axis=0)    (OUT,)

The same math, fast (ReLU's mask, workers): `minicnn.kernels.activations`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from .checks import check_grad

# ---- multiplicative layer ---------------------------------------------------------------------


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """y = x W^T + b.  x (N, IN), w (OUT, IN), b (OUT,) -> y (N, OUT)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray):
    """Returns (dx, dw, db) for y = x W^T + b.  dy (N, OUT)."""
    check_grad(dy, (x.shape[0], w.shape[0]), "linear_backward")
    dx = dy @ w  # dz/dx = W^T dz/dy, for each row
    dw = dy.T @ x  # dz/dW = dz/dy x^T, summed over the batch
    db = dy.sum(axis=0)  # dz/db = sum dz/dy
    return dx, dw, db


# ---- nonlinearities ---------------------------------------------------------------------------
# Each pair: f(x) and its backward dx = f'(x) * dy (elementwise).


def relu(x: np.ndarray) -> np.ndarray:
    """f(x) = max(x, 0)."""
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """f'(x) = 1 if x > 0 else 0 (the subgradient at 0 is taken as 0). dx = dy * f'(x) as written, so an
    inf in dy where x <= 0 gives inf * 0 = NaN (IEEE's rule, said rather than warned about)."""
    check_grad(dy, x.shape, "relu_backward")
    with np.errstate(invalid="ignore"):
        return dy * (x > 0)


def leaky_relu(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """f(x; a) = max(x, a x), for 0 <= a < 1."""
    return np.where(x > 0, x, alpha * x)


def leaky_relu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """f'(x) = 1 if x > 0 else a."""
    check_grad(dy, x.shape, "leaky_relu_backward")
    return dy * np.where(x > 0, 1.0, alpha).astype(dy.dtype)


def relu6(x: np.ndarray) -> np.ndarray:
    """f(x) = min(max(x, 0), 6)  (MobileNet)."""
    return np.clip(x, 0, 6)


def relu6_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """f'(x) = 1 if 0 < x < 6 else 0."""
    check_grad(dy, x.shape, "relu6_backward")
    return dy * ((x > 0) & (x < 6))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """f(x) = 1 / (1 + e^-x), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """f'(x) = f(x) (1 - f(x)), written with the output y = f(x)."""
    check_grad(dy, y.shape, "sigmoid_backward")
    return dy * y * (1 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    """f(x) = (e^x - e^-x) / (e^x + e^-x)."""
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """f'(x) = 1 - tanh(x)^2, written with the output y."""
    check_grad(dy, y.shape, "tanh_backward")
    return dy * (1 - y * y)


def gelu(x: np.ndarray) -> np.ndarray:
    """f(x) = x Phi(x), Phi the standard normal CDF (the exact form, as PyTorch's default)."""
    return x * 0.5 * (1 + erf(x / math.sqrt(2)))


def gelu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """f'(x) = Phi(x) + x phi(x)."""
    check_grad(dy, x.shape, "gelu_backward")
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return dy * (cdf + x * pdf)


def maxout(x: np.ndarray, pieces: int):
    """f(x) = max_k (a_k x + b_k): the max over groups of `pieces` consecutive channels/features.

    x (N, C, ...) with C divisible by `pieces` -> y (N, C // pieces, ...). The affine maps a_k x + b_k
    are the preceding Linear/Conv layer's outputs; maxout itself only takes the max.
    Returns (y, argmax) where argmax (N, C // pieces, ...) is the winning piece, for backward.
    """
    n, c = x.shape[:2]
    grouped = x.reshape(n, c // pieces, pieces, *x.shape[2:])  # (N, C/k, k, ...)
    idx = grouped.argmax(axis=2)
    y = np.take_along_axis(grouped, idx[:, :, None], axis=2)[:, :, 0]
    return y, idx


def maxout_backward(dy: np.ndarray, idx: np.ndarray, pieces: int) -> np.ndarray:
    """Route each dy to the winning piece of its group (like max pooling over channels)."""
    check_grad(dy, idx.shape, "maxout_backward")
    n, g = dy.shape[:2]
    dgrouped = np.zeros((n, g, pieces, *dy.shape[2:]), dtype=dy.dtype)
    np.put_along_axis(dgrouped, idx[:, :, None], dy[:, :, None], axis=2)
    return dgrouped.reshape(n, g * pieces, *dy.shape[2:])
