"""Exercise linear: the fully connected layer, forward and backward.

Lecture: y = W x + b per example. With a batch of row vectors, x (N, IN),
w (OUT, IN), b (OUT,):

    y = x W^T + b                               y  (N, OUT)

Backward, given dy = dL/dy (N, OUT):

    dx = W^T dL/dy per row   ->  dx = dy @ w          (N, IN)
    dW = dL/dy x^T, summed   ->  dw = dy.T @ x        (OUT, IN)
    db = sum of dL/dy        ->  db = dy.sum(axis=0)  (OUT,)

Check your file with:  minicnn exercise check linear
"""

import numpy as np  # noqa: F401  (the docstring examples use np)


def linear_forward(x, w, b):
    """y = x W^T + b.  x (N, IN), w (OUT, IN), b (OUT,) -> y (N, OUT).

    >>> x = np.array([[1.0, 2.0]])
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> linear_forward(x, w, np.array([0.0, 0.0, 10.0]))
    array([[ 1.,  2., 13.]])
    """
    # BEGIN SOLUTION
    return x @ w.T + b
    # END SOLUTION


def linear_backward(dy, x, w):
    """Return (dx, dw, db) for y = x W^T + b, given dy (N, OUT).

    dx (N, IN), dw (OUT, IN) and db (OUT,): sums over the batch, not means.

    >>> x = np.array([[1.0, 2.0]])
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> dx, dw, db = linear_backward(np.array([[1.0, 0.0, 2.0]]), x, w)
    >>> dx
    array([[3., 2.]])
    >>> dw
    array([[1., 2.],
           [0., 0.],
           [2., 4.]])
    >>> db
    array([1., 0., 2.])
    """
    # BEGIN SOLUTION
    dx = dy @ w  # W^T dy for every row
    dw = dy.T @ x  # dy x^T, summed over the batch
    db = dy.sum(axis=0)
    return dx, dw, db
    # END SOLUTION
