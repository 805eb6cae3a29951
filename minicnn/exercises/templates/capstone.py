"""Capstone: your own pieces train LeNet-5 on MNIST.

Write the six pieces below (you wrote each of them once already, in the exercises
linear, conv2d_dx, conv2d_dw, max_pool, activations, softmax_ce and optimizers). The
grader first checks every piece on its own: values against the engine, backward
passes by the engine's float64 gradient checker. If one fails, it names that piece.
If all pass, it plugs them into LeNet-5 (the grader's wiring, your math):

    x (N, 1, 28, 28) -> conv 5x5 (6), padding 2 -> relu -> pool 2x2
                     -> conv 5x5 (16)           -> relu -> pool 2x2
                     -> flatten (N, 400) -> linear 120 -> relu -> linear 84
                     -> relu -> linear 10 -> softmax cross-entropy

and trains it on MNIST with your sgd_step (the budget: `minicnn exercise hint
capstone` and the check's table). Passing needs >= 97% accuracy on the 10,000 test
images, whose labels never reach your code. A fast conv (a loop over the KH*KW kernel
offsets, each one big slice) trains in about a minute; loops over every pixel take hours.

Shapes: x (N, C, H, W), w (T, C, KH, KW), b (T,), stride 1 everywhere. Keep the input's
dtype (the network trains in float32) and never change an argument in place.

Check your file with:  minicnn exercise check capstone
"""

import numpy as np  # noqa: F401  (the docstring examples use np)


def linear_forward(x, w, b):
    """y = x W^T + b.  x (N, IN), w (OUT, IN), b (OUT,) -> y (N, OUT)."""
    # BEGIN SOLUTION
    return x @ w.T + b
    # END SOLUTION


def linear_backward(dy, x, w):
    """(dx, dw, db) for y = x W^T + b: dx = dy @ w, dw = dy.T @ x, db = dy.sum(axis=0)."""
    # BEGIN SOLUTION
    return dy @ w, dy.T @ x, dy.sum(axis=0)
    # END SOLUTION


def conv_forward(x, w, b, padding):
    """y[n, t, i, j] = sum_{s, a, c} xp[n, s, i + a, j + c] w[t, s, a, c] + b[t], stride 1.

    xp is x zero-padded by `padding` on every side; y (N, T, H + 2p - KH + 1, W + 2p - KW + 1).
    A correlation: the kernel is not flipped.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]), 0)
    array([[[[ 8.5, 12.5],
             [20.5, 24.5]]]])
    """
    # BEGIN SOLUTION
    t, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    y = np.zeros((x.shape[0], t, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("nshw,ts->nthw", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
    return y + b[:, None, None]
    # END SOLUTION


def conv_backward(dy, x, w, padding):
    """(dx, dw, db) for conv_forward(x, w, b, padding), given dy (N, T, OH, OW).

    dx: dy padded by KH-1-padding (KW-1-padding), correlated with the flipped,
        channel-swapped kernel w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].
    dw[t, s, a, c] = sum_{n, i, j} dy[n, t, i, j] xp[n, s, i + a, j + c].
    db[t] = sum_{n, i, j} dy[n, t, i, j].
    """
    # BEGIN SOLUTION
    _, _, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + oh, j:j + ow] += np.einsum("nthw,ts->nshw", dy, w[:, :, i, j])
            dw[:, :, i, j] = np.einsum("nthw,nshw->ts", dy, xp[:, :, i:i + oh, j:j + ow])
    h, wd = x.shape[2:]
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))
    # END SOLUTION


def max_pool_forward(x):
    """2x2 max pooling, stride 2: y[n, c, i, j] = max of x[n, c, 2i:2i+2, 2j:2j+2].

    x (N, C, H, W) with H and W even -> y (N, C, H/2, W/2).
    """
    # BEGIN SOLUTION
    n, c, h, wd = x.shape
    return x.reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    # END SOLUTION


def max_pool_backward(dy, x):
    """dx for max_pool_forward(x): each dy goes to the FIRST maximum of its window (row by
    row), every other position gets 0. dy (N, C, H/2, W/2) -> dx (N, C, H, W)."""
    # BEGIN SOLUTION
    n, c, h, wd = x.shape
    windows = x.reshape(n, c, h // 2, 2, wd // 2, 2).transpose(0, 1, 2, 4, 3, 5)  # (N, C, OH, OW, 2, 2)
    flat = windows.reshape(n, c, h // 2, wd // 2, 4)  # (N, C, OH, OW, 4): the window row by row
    first = flat.argmax(axis=-1)
    routed = (np.arange(4) == first[..., None]) * dy[..., None]  # (N, C, OH, OW, 4)
    routed = routed.reshape(n, c, h // 2, wd // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)  # (N, C, OH, 2, OW, 2)
    return routed.reshape(n, c, h, wd).astype(dy.dtype)
    # END SOLUTION


def relu_forward(x):
    """y = max(x, 0), elementwise."""
    # BEGIN SOLUTION
    return np.maximum(x, 0)
    # END SOLUTION


def relu_backward(dy, x):
    """dx = dy where x > 0, else 0 (also at x == 0)."""
    # BEGIN SOLUTION
    return dy * (x > 0)
    # END SOLUTION


def softmax_cross_entropy(logits, labels):
    """(loss, dlogits): loss = mean over rows of -log softmax(logits)[row, label].

    logits (N, K), labels (N,) ints -> loss a float, dlogits (N, K) = (p - onehot) / N.
    Subtract each row's max first (log-sum-exp), so nothing overflows or underflows.
    """
    # BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_p[np.arange(n), labels].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), labels] -= 1
    return float(loss), dlogits / n
    # END SOLUTION


def sgd_step(p, grad, velocity, lr, momentum):
    """One SGD step with momentum; returns NEW arrays (p, velocity).

    velocity = momentum * velocity + grad;  p = p - lr * velocity.
    The first step gets velocity = zeros, so it is p - lr * grad.
    """
    # BEGIN SOLUTION
    velocity = momentum * velocity + grad
    return p - lr * velocity, velocity
    # END SOLUTION
