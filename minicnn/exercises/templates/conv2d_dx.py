"""Exercise conv2d_dx: dx as a correlation of dy with the flipped kernel.

Forward (stride 1): y = conv2d(x, w, padding=p), a cross-correlation,
x (N, C, H, W), w (T, C, KH, KW), y (N, T, OH, OW), OH = H + 2p - KH + 1.

The lecture's backward rule: dL/dx = W^T dL/dy is a FULL correlation of dy with
the flipped, channel-swapped kernel

    w_back[s, t, i, j] = w[t, s, KH-1-i, KW-1-j]          (C, T, KH, KW)
    dx[n, s, h, v] = sum_{t, i, j} w_back[s, t, i, j]
                                   * dy_pad[n, t, h + i, v + j]

where dy_pad is dy with KH-1-p zero rows above and below and KW-1-p zero
columns left and right ("full": every window that touched x[h, v]). When
p > KH-1 that amount is negative: padding by a negative amount means cutting
p-(KH-1) rows off each side of dy instead (those outputs only saw padding).

correlate_valid() below does the 'valid' correlation for you; the exercise
is the kernel and the padding. (The engine is off limits: import minicnn is
refused while your file is checked.)

Check your file with:  minicnn exercise check conv2d_dx
"""

import numpy as np


def correlate_valid(a, k):
    """'valid' correlation of a (N, T, H, W) with k (C, T, KH, KW).

    Returns (N, C, H-KH+1, W-KW+1).
    """
    kh, kw = k.shape[2:]
    oh, ow = a.shape[2] - kh + 1, a.shape[3] - kw + 1
    out = np.zeros((a.shape[0], k.shape[0], oh, ow), dtype=np.result_type(a, k))
    for i in range(kh):
        for j in range(kw):
            window = a[:, :, i:i + oh, j:j + ow]  # (N, T, OH, OW)
            out += np.einsum("nthw,ct->nchw", window, k[:, :, i, j])
    return out


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
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (max(ph, 0),) * 2, (max(pw, 0),) * 2))
    ch, cw = max(-ph, 0), max(-pw, 0)  # negative padding: cut that much off
    dy_pad = dy_pad[:, :, ch:dy_pad.shape[2] - ch, cw:dy_pad.shape[3] - cw]
    return correlate_valid(dy_pad, w_back)
    # END SOLUTION
