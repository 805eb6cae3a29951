"""Exercise conv_matrix: a convolution is still a multiplicative layer.

For one image x (C, H, W) and a kernel w (T, C, KH, KW), stride 1, no
padding, y = conv2d(x, w) is linear in x, so y.ravel() = M @ x.ravel() for a
matrix M (T*OH*OW, C*H*W). Row (t, oh, ow) of M is zero except where the
window of output (oh, ow) lies:

    M[(t, oh, ow), (s, oh + i, ow + j)] = w[t, s, i, j]

(rows and columns flattened in C order, so row index t*OH*OW + oh*OW + ow).
The matrix is banded: the same few weights repeat along its diagonals.
Do not flip w: the layer is a cross-correlation.

Check your file with:  minicnn exercise check conv_matrix
"""

import numpy as np


def conv_matrix(w, input_shape):
    """M (T*OH*OW, C*H*W) with conv2d(x[None], w)[0].ravel() == M @ x.ravel().

    input_shape is (C, H, W); OH = H - KH + 1, OW = W - KW + 1.

    >>> conv_matrix(np.array([[[[1.0, 2.0]]]]), (1, 1, 3))
    array([[1., 2., 0.],
           [0., 1., 2.]])
    """
    # BEGIN SOLUTION
    c, h, wd = input_shape
    t, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    m = np.zeros((t, oh, ow, c, h, wd), dtype=w.dtype)  # (T, OH, OW, C, H, W)
    for a in range(oh):
        for q in range(ow):
            m[:, a, q, :, a:a + kh, q:q + kw] = w
    return m.reshape(t * oh * ow, c * h * wd)
    # END SOLUTION
