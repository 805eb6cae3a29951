"""Exercise slicesamp: SliceSamp's downsampling without losing a value.

SliceSamp (the downsampling review) replaces pooling by slicing, then a
depthwise-separable convolution:

 1. space-to-depth by r: (N, C, H, W) -> (N, C*r*r, H/r, W/r), channel
    c*r*r + i*r + j holds x[n, c, h*r + i, w*r + j];
 2. depthwise K x K conv, stride 1, 'same' padding (K // 2, K odd):
    every channel g has its own kernel w_dw[g, 0] (C*r*r, 1, K, K);
 3. pointwise 1 x 1 conv: y[n, t] = sum_g w_pw[t, g, 0, 0] * z[n, g]
    with w_pw (T, C*r*r, 1, 1).

(The layer also puts BatchNorm and GELU after 2 and 3; they are left out.)

Check your file with:  minicnn exercise check slicesamp
"""

import numpy as np


def slice_samp(x, w_dw, w_pw, r):
    """(N, T, H/r, W/r): slice, depthwise, pointwise; no bias.

    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> slice_samp(x, np.ones((4, 1, 1, 1)), np.ones((1, 4, 1, 1)), 2)
    array([[[[6.]]]])
    """
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    x6 = x.reshape(n, c, h // r, r, w // r, r)  # (N, C, H/r, i, W/r, j)
    s = x6.transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)
    k = w_dw.shape[2]
    p = k // 2
    sp = np.pad(s, ((0, 0), (0, 0), (p, p), (p, p)))
    z = np.zeros(s.shape, dtype=np.result_type(x, w_dw))
    for i in range(k):
        for j in range(k):
            tap = w_dw[:, 0, i, j].reshape(1, -1, 1, 1)  # (1, C*r*r, 1, 1)
            z += sp[:, :, i:i + h // r, j:j + w // r] * tap
    return np.einsum("tg,nghw->nthw", w_pw[:, :, 0, 0], z)
    # END SOLUTION
