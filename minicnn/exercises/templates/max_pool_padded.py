"""Exercise max_pool_padded: max-pool routing with stride AND padding.

y[n, c, oh, ow] = max over the K x K window of x_pad that starts at
(oh*stride, ow*stride), where x_pad is x padded with -inf (a padding value
can never win), OH = (H + 2P - K)//stride + 1.

Backward: dy[n, c, oh, ow] goes to the input position that won its window
(the FIRST maximum in C order on a tie), and only there; a position that
wins several overlapping windows gets the sum. The windows live in padded
coordinates: window row r is x row r - P.

Check your file with:  minicnn exercise check max_pool_padded
"""

import numpy as np


def max_pool2d_backward(dy, x, k, stride, padding):
    """dx (N, C, H, W); dy (N, C, OH, OW); int k, stride, padding.

    >>> x = np.array([[[[-1.0, -2.0], [-3.0, -4.0]]]])
    >>> max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2, 1, 1)
    array([[[[4., 0.],
             [0., 0.]]]])
    """
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    dxp = np.zeros(xp.shape, dtype=dy.dtype)
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for a in range(dy.shape[2]):
        for q in range(dy.shape[3]):
            r, s = a * stride, q * stride
            window = xp[:, :, r:r + k, s:s + k].reshape(n, c, k * k)
            i, j = np.divmod(window.argmax(axis=2), k)  # first maximum
            np.add.at(dxp, (nn, cc, r + i, s + j), dy[:, :, a, q])
    return dxp[:, :, p:p + h, p:p + w]
    # END SOLUTION
