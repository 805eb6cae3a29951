"""Exercise conv2d_direct: the convolution layer by direct loops.

The lecture's tied-weight layer, in NCHW code (x = U, w = K, y = V). It is a
cross-correlation, as in every deep-learning library: the kernel is NOT flipped.

    y[n, t, oh, ow] = b[t] + sum_{s, i, j} w[t, s, i, j]
                                 * x_pad[n, s, oh*stride + i, ow*stride + j]

    x (N, C, H, W), w (T, C, KH, KW), b (T,)  ->  y (N, T, OH, OW)
    x_pad: x with `padding` zeros on every side (np.pad)
    OH = (H + 2*padding - KH) // stride + 1        (OW alike)

Loop over t, oh, ow; one window sum per step is enough (vectorise over n).

Check your file with:  minicnn exercise check conv2d_direct
"""

import numpy as np


def conv2d(x, w, b, stride=1, padding=0):
    """y (N, T, OH, OW) = conv2d(x, w, b) with an int stride and padding.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1]
    >>> conv2d(x, w, np.array([0.5]))
    array([[[[-3.5, -3.5],
             [-3.5, -3.5]]]])
    """
    # BEGIN SOLUTION
    n, c, h, wd = x.shape
    t, _, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n, t, oh, ow), dtype=x.dtype)
    for to in range(t):
        for i in range(oh):
            for j in range(ow):
                r, q = i * stride, j * stride
                window = xp[:, :, r:r + kh, q:q + kw]  # (N, C, KH, KW)
                y[:, to, i, j] = (window * w[to]).sum(axis=(1, 2, 3)) + b[to]
    return y
    # END SOLUTION
