"""Exercise locally_connected: the layer before the weights are tied.

Every output position (oh, ow) owns its kernel (UNTIED weights):

    y[n, t, oh, ow] = b[t, oh, ow]
        + sum_{s, i, j} w[oh, ow, t, s, i, j] * x_pad[n, s, oh*stride + i,
                                                        ow*stride + j]

x (N, C, H, W), w (OH, OW, T, C, KH, KW), b (T, OH, OW) -> y (N, T, OH, OW);
x_pad is x with `padding` zeros on every side, OH = (H + 2p - KH)//stride + 1.
A convolution is the special case w[oh, ow] == w[0, 0] for every position.

Check your file with:  minicnn exercise check locally_connected
"""

import numpy as np


def locally_connected2d(x, w, b, stride=1, padding=0):
    """y (N, T, OH, OW) of the untied-weight layer; int stride and padding.

    >>> x = np.arange(3.0).reshape(1, 1, 1, 3)
    >>> w = np.array([1.0, 10.0, 100.0]).reshape(1, 3, 1, 1, 1, 1)
    >>> locally_connected2d(x, w, np.zeros((1, 1, 3)), stride=1)
    array([[[[  0.,  10., 200.]]]])
    """
    # BEGIN SOLUTION
    oh, ow, t, c, kh, kw = w.shape
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y = np.zeros((x.shape[0], t, oh, ow), dtype=x.dtype)
    for a in range(oh):
        for q in range(ow):
            r, s = a * stride, q * stride
            window = xp[:, :, r:r + kh, s:s + kw]  # (N, C, KH, KW)
            y[:, :, a, q] = np.einsum("nsij,tsij->nt", window, w[a, q])
    return y + b
    # END SOLUTION
