"""Exercise dct_weight: a weight kept in the DCT domain; its masked gradient.

Frequency Regularization keeps the learnable tensor C in the frequency domain.
A 0/1 mask M keeps the low frequencies and truncates the tail; the layer
computes with the spatial weight

    W = idct(M * C)          orthonormal inverse DCT over EVERY axis of C

Backward: W is linear in C, so dL/dC = (dW/dC)^T dL/dW = M * idct^T(dL/dW),
and the adjoint of the orthonormal inverse DCT is the DCT itself:

    dC = M * dct(dW)

Use scipy.fft.dctn and idctn: type 2 (their default), norm="ortho" (the
orthonormal transform, whose inverse is its transpose), over every axis
(their default axes=None).

Check your file with:  minicnn exercise check dct_weight
"""

import numpy as np  # noqa: F401  (the docstring examples use np)
from scipy.fft import dctn, idctn


def dct_weight(coeffs, mask):
    """W = idct(mask * coeffs); coeffs any shape, mask 0/1 (or bool) alike.

    >>> dct_weight(np.array([2.0, 0.0]), np.array([1, 1]))  # constant part
    array([1.41421356, 1.41421356])
    >>> dct_weight(np.array([0.0, 1.0]), np.array([1, 0]))  # truncated
    array([0., 0.])
    """
    # BEGIN SOLUTION
    return idctn(mask * coeffs, norm="ortho")
    # END SOLUTION


def dct_weight_backward(dw, mask):
    """dL/dcoeffs = mask * dct(dw); dw = dL/dW, same shape as the weight.

    >>> dct_weight_backward(np.array([1.0, 1.0]), np.array([1, 0]))
    array([1.41421356, 0.        ])
    """
    # BEGIN SOLUTION
    return mask * dctn(dw, norm="ortho")
    # END SOLUTION
