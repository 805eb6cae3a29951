"""Exercise conv2d_dw: dK as the correlation of x with dy.

Forward: y[n, t, oh, ow] = sum_{s,i,j} w[t, s, i, j]
                                 * x_pad[n, s, oh*stride + i, ow*stride + j]

so every weight w[t, s, i, j] met the input values it multiplied, once per
output position and per image. The lecture's rule
dL/dK(m, n, s, t) = sum_{k,l} dL/dy(k, l, t) x(k - m, l - n, s) reads, in code:

    dw[t, s, i, j] = sum_{n, oh, ow} dy[n, t, oh, ow]
                                     * x_pad[n, s, oh*stride + i, ow*stride + j]

    dy (N, T, OH, OW), x (N, C, H, W)  ->  dw (T, C, KH, KW)

A correlation of x_pad with dy, summed over the batch (not averaged). Looping
over the KH*KW kernel offsets (i, j) is enough: each offset is one strided
slice of x_pad and one sum.

Check your file with:  minicnn exercise check conv2d_dw
"""

import numpy as np


def conv2d_weight_grad(dy, x, kernel_size, stride=1, padding=0):
    """dw (T, C, KH, KW) for y = conv2d(x, w, stride=stride, padding=padding).

    kernel_size is the pair (KH, KW); stride and padding are ints.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> dy = np.array([[[[1.0, 0.0], [0.0, 0.0]]]])  # only y[0, 0] matters
    >>> conv2d_weight_grad(dy, x, (2, 2))  # y[0, 0] read x[0:2, 0:2]
    array([[[[0., 1.],
             [3., 4.]]]])
    """
    # BEGIN SOLUTION
    kh, kw = kernel_size
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dw = np.zeros((dy.shape[1], x.shape[1], kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (oh - 1) + 1, stride)
            cols = slice(j, j + stride * (ow - 1) + 1, stride)
            # (N, T, OH, OW) with (N, C, OH, OW), summed over n, oh, ow
            window = xp[:, :, rows, cols]  # (N, C, OH, OW)
            dw[:, :, i, j] = np.einsum("ntpq,nspq->ts", dy, window)
    return dw
    # END SOLUTION
