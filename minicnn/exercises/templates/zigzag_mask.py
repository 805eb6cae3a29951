"""Exercise zigzag_mask: the k lowest frequencies of a tensor, zigzag order.

Number the entries of a tensor of any shape from low to high frequency:
order them by the SUM of their indices (the "diagonal" i0 + i1 + ...); within
one diagonal, lexicographically with the FIRST axis most significant. The
mask is True on the first k entries of that order (k between 0 and size).

A 4x4 example, the rank of every entry (row = axis 0):

     0  1  3  6
     2  4  7 10
     5  8 11 13
     9 12 14 15

(unlike JPEG, every diagonal is walked the same way, first axis increasing,
which works for any number of axes.)

Check your file with:  minicnn exercise check zigzag_mask
"""

import numpy as np


def zigzag_mask(shape, k):
    """A bool array of `shape` (a tuple), True on the k lowest frequencies.

    >>> zigzag_mask((3, 3), 5).astype(int)
    array([[1, 1, 1],
           [1, 1, 0],
           [0, 0, 0]])
    """
    # BEGIN SOLUTION
    idx = np.indices(shape).reshape(len(shape), -1)  # (D, size)
    # lexsort sorts by its LAST key first: the diagonal, then axis 0, 1, ...
    order = np.lexsort(tuple(idx[::-1]) + (idx.sum(axis=0),))
    rank = np.empty(idx.shape[1], dtype=np.int64)
    rank[order] = np.arange(idx.shape[1])
    return rank.reshape(shape) < k
    # END SOLUTION
