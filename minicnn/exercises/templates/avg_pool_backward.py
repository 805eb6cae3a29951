"""Exercise avg_pool_backward: the backward of average pooling.

    y[n, c, oh, ow] = 1/(K*K) sum_{i, j < K} x_pad[n, c, oh*S + i, ow*S + j]

x_pad has `padding` zeros on every side, and they count in the mean (divisor
always K*K, PyTorch's count_include_pad=True). OH = (H + 2P - K) // S + 1.

Backward: every position of a window gets dy / (K*K) from that window. Where
windows overlap (S < K) a position receives the SUM over its windows; a
position that no window covers gets 0; the padding's share is dropped.

Check your file with:  minicnn exercise check avg_pool_backward
"""

import numpy as np


def avg_pool2d_backward(dy, x_shape, k, stride, padding=0):
    """dx of shape x_shape (N, C, H, W); dy (N, C, OH, OW).

    >>> avg_pool2d_backward(np.array([[[[4.0]]]]), (1, 1, 2, 2), 2, 2)
    array([[[[1., 1.],
             [1., 1.]]]])
    """
    # BEGIN SOLUTION
    n, c, h, w = x_shape
    oh, ow = dy.shape[2:]
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dy.dtype)
    share = dy / (k * k)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * (oh - 1) + 1:stride,
                j:j + stride * (ow - 1) + 1:stride] += share
    return dxp[:, :, padding:padding + h, padding:padding + w]
    # END SOLUTION
