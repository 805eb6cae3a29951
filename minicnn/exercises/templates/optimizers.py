"""Exercise optimizers: one step of SGD with momentum, and one step of Adam.

Both as PyTorch computes them (and minicnn.optim).

SGD with momentum (no dampening); g = grad + weight_decay * p (L2 decay):
    v = g                       on the first step (velocity is None)
    v = momentum * v + g        later
    p = p - lr * v

Adam, step t = 1, 2, ... (m and v start at zeros), g = grad:
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    m_hat = m / (1 - b1**t);   v_hat = v / (1 - b2**t)      (bias correction)
    p = p - lr * m_hat / (sqrt(v_hat) + eps)

Return new arrays; do not change the arguments in place.

Check your file with:  minicnn exercise check optimizers
"""

import numpy as np


def sgd_momentum_step(p, grad, velocity, lr, momentum, weight_decay=0.0):
    """Return (p_new, velocity_new). velocity is None before the first step.

    >>> p, v = sgd_momentum_step(np.array([1.0]), np.array([2.0]), None,
    ...                          0.1, 0.9)
    >>> p, v
    (array([0.8]), array([2.]))
    >>> sgd_momentum_step(p, np.array([2.0]), v, 0.1, 0.9)
    (array([0.42]), array([3.8]))
    """
    # BEGIN SOLUTION
    g = grad + weight_decay * p
    v = g.copy() if velocity is None else momentum * velocity + g
    return p - lr * v, v
    # END SOLUTION


def adam_step(p, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """Return (p_new, m_new, v_new) after step t (t = 1 on the first step).

    >>> p, m, v = adam_step(np.array([1.0]), np.array([0.5]), np.zeros(1),
    ...                     np.zeros(1), 1, lr=0.1)
    >>> p  # the first step moves by about lr, whatever the gradient's size
    array([0.9])
    """
    # BEGIN SOLUTION
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad * grad
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    # END SOLUTION
