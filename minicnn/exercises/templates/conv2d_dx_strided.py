"""Exercise conv2d_dx_strided: dx when the forward had a stride > 1.

Forward: y = conv2d(x, w, stride=S, padding=P), x (N, C, H, W),
w (T, C, KH, KW), y (N, T, OH, OW), OH = (H + 2P - KH)//S + 1.

With a stride, output (oh, ow) read the window at x_pad[oh*S, ow*S]. Put dy
back on that grid and the stride-1 rule applies:

 1. dilate dy: d (N, T, S*(OH-1) + 1, S*(OW-1) + 1), zeros everywhere but
    d[:, :, oh*S, ow*S] = dy[:, :, oh, ow];
 2. leftover rows: when (H + 2P - KH) % S != 0 the last rows of x_pad were
    never read; pad d at the bottom / right with zeros so that it has
    H + 2P - KH + 1 rows and W + 2P - KW + 1 columns;
 3. full correlation with the flipped, channel-swapped kernel
    (pad by KH-1, KW-1, correlate with w.transpose(1, 0, 2, 3)[:, :, ::-1,
    ::-1]): that is dx_pad (N, C, H + 2P, W + 2P);
 4. cut the padding off: dx = dx_pad[:, :, P:P+H, P:P+W].

Check your file with:  minicnn exercise check conv2d_dx_strided
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


def conv2d_input_grad_strided(dy, w, x_shape, stride, padding=0):
    """dx (x_shape) for y = conv2d(x, w, stride=stride, padding=padding).

    >>> dy = np.ones((1, 1, 2, 2))
    >>> conv2d_input_grad_strided(dy, np.ones((1, 1, 1, 1)), (1, 1, 3, 3), 2)
    array([[[[1., 0., 1.],
             [0., 0., 0.],
             [1., 0., 1.]]]])
    """
    # BEGIN SOLUTION
    n, c, h, wd = x_shape
    t, _, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    rows, cols = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    d = np.zeros((n, t, rows, cols), dtype=dy.dtype)  # dilated, leftover zeros
    d[:, :, :stride * (oh - 1) + 1:stride, :stride * (ow - 1) + 1:stride] = dy
    d = np.pad(d, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, T, KH, KW)
    dx_pad = correlate_valid(d, w_back)  # (N, C, H + 2P, W + 2P)
    return dx_pad[:, :, padding:padding + h, padding:padding + wd]
    # END SOLUTION
