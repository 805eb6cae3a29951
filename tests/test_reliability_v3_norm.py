"""Issue 26 survivor: BatchNorm's fast backward must correct for the mean rounded to float32.

`minicnn.kernels.norm._backward` centres x on s = mu rounded to x's dtype and corrects with the float64
remainder d = mu - s. Without that correction, a mean far from 0 with a tiny spread gives a wrong dgamma.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import norm as fast

N_IMAGES = 4097  # odd, so the mean of the two values below is not a float32 number
OFFSET, STEP = 1000.0, 1 / 16  # x = 1000 + {0, 1/16}: mean far from 0, spread 1/32
EPS = 1e-5


def test_fast_backward_corrects_the_float32_mean_on_1x1_maps():
    x = np.full((N_IMAGES, 1, 1, 1), OFFSET, np.float32)  # (N, C, 1, 1)
    x[::2] += np.float32(STEP)
    gamma, beta = np.ones(1, np.float32), np.zeros(1, np.float32)
    _, _, inv_std, mu, _ = fast.batch_norm_train(x, gamma, beta, EPS, keep_x_hat=False)
    dy = np.ones_like(x)
    dx, dgamma, dbeta = fast.batch_norm_backward(dy, None, inv_std, gamma, x=x, mean=mu)
    x64 = x.astype(np.float64)
    x_hat = (x64 - x64.mean()) / np.sqrt(x64.var() + EPS)
    # exact: dgamma = sum dy * x_hat = 0 (x_hat has mean 0), dbeta = N, dx = 0 for a constant dy
    assert abs(dgamma[0] - x_hat.sum()) < 1e-6, dgamma
    assert dbeta[0] == N_IMAGES
    assert np.abs(dx).max() < 1e-6
