"""Exercise max_pool: max pooling forward, and its routing backward.

    y[n, c, oh, ow] = max_{0 <= i < K, 0 <= j < K} x[n, c, oh*S + i, ow*S + j]
    OH = (H - K) // S + 1      (OW alike; trailing rows that no window
                                covers are simply not read)

Backward: only the winner of a window influenced y, so each dy[n, c, oh, ow]
is ROUTED to the input position that held the max of its window (the FIRST
maximum in row-major window order on a tie, as np.argmax picks); every other
position gets nothing. When windows overlap (S < K) one input can win several
windows: its gradient is the SUM of their dy.

Check your file with:  minicnn exercise check max_pool
"""

import numpy as np


def max_pool2d(x, k, stride):
    """y (N, C, OH, OW): the max of every k x k window, moved by stride.

    >>> x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> max_pool2d(x, 2, 2)
    array([[[[4.]]]])
    """
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    y = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            tap = x[:, :, i:i + stride * (oh - 1) + 1:stride,
                    j:j + stride * (ow - 1) + 1:stride]  # (N, C, OH, OW)
            np.maximum(y, tap, out=y)
    return y
    # END SOLUTION


def max_pool2d_backward(dy, x, k, stride):
    """dx (N, C, H, W) for y = max_pool2d(x, k, stride); dy (N, C, OH, OW).

    >>> x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> max_pool2d_backward(np.array([[[[5.0]]]]), x, 2, 2)
    array([[[[0., 0.],
             [5., 0.]]]])
    """
    # BEGIN SOLUTION
    n, c, oh, ow = dy.shape
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for p in range(oh):
        for q in range(ow):
            r, s = p * stride, q * stride
            window = x[:, :, r:r + k, s:s + k].reshape(n, c, k * k)
            win = window.argmax(axis=2)  # (N, C): first maximum
            i, j = np.divmod(win, k)
            nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            np.add.at(dx, (nn, cc, r + i, s + j), dy[:, :, p, q])
    return dx
    # END SOLUTION
