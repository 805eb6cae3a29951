"""Exercise space_to_depth: feature slicing and its exact inverse.

Cut each map into r x r blocks and move the r*r values of every block onto
channels; nothing is dropped (the review's slicing downsampling, PyTorch's
pixel_unshuffle order):

    y[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]     0 <= i, j < r

    x (N, C, H, W)  ->  y (N, C*r*r, H/r, W/r)      (H, W multiples of r)

depth_to_space is the inverse permutation: depth_to_space(space_to_depth(x))
gives x back exactly. A reshape to 6 axes, a transpose and a reshape do it.

Check your file with:  minicnn exercise check space_to_depth
"""

import numpy as np  # noqa: F401  (the docstring examples use np)


def space_to_depth(x, r):
    """(N, C, H, W) -> (N, C*r*r, H/r, W/r).

    >>> space_to_depth(np.arange(4.0).reshape(1, 1, 2, 2), 2).ravel()
    array([0., 1., 2., 3.])
    >>> space_to_depth(np.arange(8.0).reshape(1, 1, 2, 4), 2)[0, :, 0, 1]
    array([2., 3., 6., 7.])
    """
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    x6 = x.reshape(n, c, h // r, r, w // r, r)  # (N, C, H/r, i, W/r, j)
    y = x6.transpose(0, 1, 3, 5, 2, 4)  # (N, C, i, j, H/r, W/r)
    return y.reshape(n, c * r * r, h // r, w // r)
    # END SOLUTION


def depth_to_space(y, r):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r), the inverse of space_to_depth.

    >>> depth_to_space(np.arange(4.0).reshape(1, 4, 1, 1), 2)
    array([[[[0., 1.],
             [2., 3.]]]])
    """
    # BEGIN SOLUTION
    n, crr, h, w = y.shape
    y6 = y.reshape(n, crr // (r * r), r, r, h, w)  # (N, C, i, j, H, W)
    x = y6.transpose(0, 1, 4, 2, 5, 3)  # (N, C, H, i, W, j)
    return x.reshape(n, crr // (r * r), h * r, w * r)
    # END SOLUTION
