"""Exercise softmax_ce: stable softmax cross-entropy and its gradient.

For logits z (N, K) and integer labels y (N,):

    p = softmax(z) row by row:  p[n, k] = exp(z[n, k]) / sum_j exp(z[n, j])
    L = -(1/N) sum_n log p[n, y[n]]           (the mean over the batch)
    dL/dz = (p - onehot(y)) / N               (N, K)

Stability: exp(1000) overflows. Softmax does not change when a constant is
subtracted from a row, so subtract each row's max first, and compute
log p = (z - max) - log(sum exp(z - max)) instead of log(p).

Check your file with:  minicnn exercise check softmax_ce
"""

import numpy as np


def softmax_cross_entropy(logits, labels):
    """Return (loss, dlogits): loss a float (batch mean), dlogits (N, K).

    >>> loss, d = softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(loss, 6)
    0.693147
    >>> d
    array([[ 0.5, -0.5]])
    """
    # BEGIN SOLUTION
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # largest entry 0
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(n), labels].mean())
    dlogits = np.exp(logp)  # softmax probabilities
    dlogits[np.arange(n), labels] -= 1
    return loss, dlogits / n
    # END SOLUTION
