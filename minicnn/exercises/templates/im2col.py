"""Exercise im2col: unfold the receptive fields, then ONE matrix multiply.

Every output position (n, oh, ow) reads a window of C*KH*KW input values. Lay
each window out as one column:

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*stride + i, ow*stride + j]

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW)
    row index c*KH*KW + i*KW + j (channel slowest),
    column index n*OH*OW + oh*OW + ow (image slowest)

Then the whole convolution is one product:

    y_mat = w.reshape(T, C*KH*KW) @ cols        (T, N*OH*OW)
    y     = y_mat viewed as (T, N, OH, OW), transposed to (N, T, OH, OW), + b

Loop only over the KH*KW kernel offsets: for a fixed (i, j), the values of all
windows are one strided slice of x_pad.

Check your file with:  minicnn exercise check im2col
"""

import numpy as np


def im2col(x, kh, kw, stride=1, padding=0):
    """cols (C*KH*KW, N*OH*OW) of x (N, C, H, W); int stride and padding.

    >>> im2col(np.arange(6.0).reshape(1, 1, 2, 3), 2, 2)
    array([[0., 1.],
           [1., 2.],
           [3., 4.],
           [4., 5.]])
    """
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i:i + stride * (oh - 1) + 1:stride,
                     j:j + stride * (ow - 1) + 1:stride]  # (N, C, OH, OW)
            cols[:, i, j] = win.transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)
    # END SOLUTION


def conv2d_im2col(x, w, b, stride=1, padding=0):
    """y (N, T, OH, OW) = conv2d(x, w, b) as im2col + one matrix multiply.

    >>> x = np.arange(6.0).reshape(1, 1, 2, 3)
    >>> conv2d_im2col(x, np.ones((1, 1, 2, 2)), np.array([1.0]))
    array([[[[ 9., 13.]]]])
    """
    # BEGIN SOLUTION
    n, _, h, wd = x.shape
    t, c, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    cols = im2col(x, kh, kw, stride, padding)  # (C*KH*KW, N*OH*OW)
    y = w.reshape(t, c * kh * kw) @ cols  # (T, N*OH*OW)
    y = y.reshape(t, n, oh, ow).transpose(1, 0, 2, 3)  # (N, T, OH, OW)
    return y + b.reshape(1, t, 1, 1)
    # END SOLUTION
