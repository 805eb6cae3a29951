"""Exercise conv2d_dx: dx as a correlation of dy with the flipped kernel.

Forward (stride 1): y = conv2d(x, w, padding=p), a cross-correlation,
x (N, C, H, W), w (T, C, KH, KW), y (N, T, OH, OW), OH = H + 2p - KH + 1.

The lecture's backward rule: dL/dx = W^T dL/dy is a FULL correlation of dy with
the flipped, channel-swapped kernel

    w_back[s, t, i, j] = w[t, s, KH-1-i, KW-1-j]          (C, T, KH, KW)
    dx[n, s, h, v] = sum_{t, i, j} w_back[s, t, i, j]
                                   * dy_pad[n, t, h + i, v + j]

where dy_pad is dy with KH-1-p zero rows above and below and KW-1-p zero
columns left and right ("full": every window that touched x[h, v]).

You may use minicnn.functional.conv2d(a, k, padding=...) for the correlation
itself, or write the loops.

Check your file with:  minicnn exercise check conv2d_dx
"""

import numpy as np

from minicnn.functional import conv2d


def conv2d_input_grad(dy, w, padding=0):
    """dx (N, C, H, W) for y = conv2d(x, w, padding=padding) (stride 1).

    dy (N, T, OH, OW), w (T, C, KH, KW); H = OH - 2*padding + KH - 1.

    >>> dy = np.array([[[[1.0, 0.0], [0.0, 0.0]]]])  # only y[0, 0] matters
    >>> w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> conv2d_input_grad(dy, w)  # y[0, 0] read x[0:2, 0:2] with weights w
    array([[[[1., 2., 0.],
             [3., 4., 0.],
             [0., 0., 0.]]]])
    """
    # BEGIN SOLUTION
    kh, kw = w.shape[2:]
    w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, T, KH, KW)
    ph, pw = kh - 1 - padding, kw - 1 - padding
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return conv2d(dy_pad, np.ascontiguousarray(w_back))
    # END SOLUTION
