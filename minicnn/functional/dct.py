"""The orthonormal discrete cosine transform and the zigzag order (the Frequency Regularization proposal).

DCT-II along one axis of length n, orthonormal scaling (the matrix D is orthogonal, D^T D = I):

    X[u] = a(u) * sum_{i=0}^{n-1} x[i] cos(pi (2 i + 1) u / (2 n)),   a(0) = sqrt(1/n), a(u>0) = sqrt(2/n)

`dct(x, axes)` applies it along every axis in `axes` (all axes by default); `idct` is its inverse
(the DCT-III with the same scaling), which, because D is orthogonal, is also its transpose (adjoint):

    idct(dct(x)) = x          <x, idct(c)> = <dct(x), c>   for all x, c

That second identity is what the frequency-domain layers use in backward: if W = idct(c) then
dL/dc = dct(dL/dW).

`zigzag_order(shape)` numbers the entries of a tensor from low to high frequency, so that "keep the
first k" means "keep the k lowest frequencies"; `zigzag_mask(shape, k)` marks those k entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft


def _axes(x: np.ndarray, axes: int | Sequence[int] | None, who: str) -> tuple[int, ...]:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{who}: expected a floating-point NumPy array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if axes is None:
        return tuple(range(x.ndim))
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"{who}: expected axes in [{-x.ndim}, {x.ndim}) for an input of shape "
                             f"{x.shape}, got {axes}")
    if len({a % x.ndim for a in axes}) != len(axes):
        raise ValueError(f"{who}: expected distinct axes, got {axes}")
    return axes


def dct(x: np.ndarray, axes: int | Sequence[int] | None = None) -> np.ndarray:
    """Orthonormal DCT-II of `x` along `axes` (default: every axis). Same shape and dtype as `x`."""
    return scipy.fft.dctn(x, type=2, norm="ortho", axes=_axes(x, axes, "dct"))


def idct(c: np.ndarray, axes: int | Sequence[int] | None = None) -> np.ndarray:
    """Inverse of `dct` along `axes` (default: every axis): x = idct(dct(x)). Equal to the adjoint of `dct`."""
    return scipy.fft.idctn(c, type=2, norm="ortho", axes=_axes(c, axes, "idct"))


def _check_shape(shape, who: str) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                            for s in shape):
        raise ValueError(f"{who}: expected a shape of positive ints, got {shape!r}")
    return tuple(int(s) for s in shape)


def zigzag_order(shape: int | Sequence[int]) -> np.ndarray:
    """Rank of every index of a tensor of `shape` in the N-dimensional zigzag (low frequencies first).

    Index (i_0, ..., i_{d-1}) is ranked by the sum of its indices i_0 + ... + i_{d-1} (its
    "diagonal"); entries of one diagonal are ranked lexicographically, the FIRST axis most
    significant (so along a 2-D diagonal, from the top-right end to the bottom-left end). Returns an
    int64 array of `shape` holding 0 .. size-1. `np.argsort(order, axis=None)` lists the flat
    indices in zigzag order.

    8x8 example (rank of each entry; row = axis 0). Each anti-diagonal has the same *set* of ranks as
    the JPEG zigzag; JPEG alternates the direction along successive diagonals, this order always
    walks them the same way (first axis increasing), which generalises to any number of axes:

         0  1  3  6 10 15 21 28
         2  4  7 11 16 22 29 36
         5  8 12 17 23 30 37 43
         9 13 18 24 31 38 44 49
        14 19 25 32 39 45 50 54
        20 26 33 40 46 51 55 58
        27 34 41 47 52 56 59 61
        35 42 48 53 57 60 62 63
    """
    shape = _check_shape(shape, "zigzag_order")
    idx = np.indices(shape).reshape(len(shape), -1)  # (D, size): the index of every entry
    # np.lexsort sorts by its LAST key first: the diagonal, then axis 0, axis 1, ...
    flat_order = np.lexsort(tuple(idx[::-1]) + (idx.sum(axis=0),))
    rank = np.empty(idx.shape[1], dtype=np.int64)
    rank[flat_order] = np.arange(idx.shape[1])
    return rank.reshape(shape)


def zigzag_mask(shape: int | Sequence[int], k: int) -> np.ndarray:
    """Boolean array of `shape`, True on the first `k` entries of `zigzag_order(shape)` (0 <= k <= size)."""
    shape = _check_shape(shape, "zigzag_mask")
    size = int(np.prod(shape))
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k <= size:
        raise ValueError(f"zigzag_mask: expected an int k with 0 <= k <= {size} for shape {shape}, got {k!r}")
    return zigzag_order(shape) < k
