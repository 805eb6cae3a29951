"""Exercise activations: the backward of ReLU, leaky ReLU and maxout.

A pointwise nonlinearity y = f(x) passes the gradient on elementwise:

    dx = f'(x) * dy

    ReLU        f(x) = max(x, 0)       f'(x) = 1 if x > 0 else 0  (0 at x = 0)
    leaky ReLU  f(x) = max(x, a x)     f'(x) = 1 if x > 0 else a

Maxout takes the max over groups of `pieces` CONSECUTIVE channels:
x (N, C, ...) -> y (N, C // pieces, ...), group g = channels
g*pieces .. g*pieces + pieces - 1. Like max pooling over channels, its backward
routes each dy[n, g, ...] to the one channel that won (the first maximum on a
tie); the other channels of the group get 0.

Check your file with:  minicnn exercise check activations
"""

import numpy as np


def relu_backward(dy, x):
    """dx = dy where x > 0, else 0.  dy, x: same shape; dx: that shape.

    >>> relu_backward(np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.0, 4.0]))
    array([0., 0., 3.])
    """
    # BEGIN SOLUTION
    return dy * (x > 0)
    # END SOLUTION


def leaky_relu_backward(dy, x, alpha):
    """dx = dy where x > 0, else alpha * dy.

    >>> leaky_relu_backward(np.array([1.0, 2.0]), np.array([-1.0, 4.0]), 0.1)
    array([0.1, 2. ])
    """
    # BEGIN SOLUTION
    return np.where(x > 0, dy, alpha * dy)
    # END SOLUTION


def maxout_backward(dy, x, pieces):
    """dx (N, C, ...) for y = maxout(x, pieces); dy (N, C // pieces, ...).

    >>> x = np.array([[1.0, 5.0, 2.0, 0.0]])  # groups (1, 5) and (2, 0)
    >>> maxout_backward(np.array([[10.0, 20.0]]), x, 2)
    array([[ 0., 10., 20.,  0.]])
    """
    # BEGIN SOLUTION
    n, c = x.shape[:2]
    grouped = x.reshape(n, c // pieces, pieces, *x.shape[2:])  # (N, G, k, ...)
    winner = grouped.argmax(axis=2)  # (N, G, ...): first maximum of each group
    dgrouped = np.zeros(grouped.shape, dtype=dy.dtype)
    np.put_along_axis(dgrouped, winner[:, :, None], dy[:, :, None], axis=2)
    return dgrouped.reshape(x.shape)
    # END SOLUTION
