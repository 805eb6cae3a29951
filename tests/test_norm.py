"""Batch norm's plain functions (minicnn.functional.norm) against independent NumPy lines, and the layers'
float32 behaviour. (The kernels against these functions: test_kernels_norm.py.)"""

import numpy as np

from minicnn import layers as L
from minicnn.functional import norm as F
from minicnn.gradcheck import gradcheck


def test_batch_norm_normalises_each_channel():
    x = np.random.default_rng(1).standard_normal((6, 3, 4, 5)) * np.array([1.0, 5.0, 0.1])[None, :, None, None]
    y, x_hat, inv_std, mu, var = F.batch_norm_train(x, np.ones(3), np.zeros(3), 1e-12)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-8)
    np.testing.assert_array_equal(y, x_hat)
    np.testing.assert_allclose(mu, [x[:, c].mean() for c in range(3)], rtol=1e-12)
    np.testing.assert_allclose(var, [x[:, c].var() for c in range(3)], rtol=1e-12)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(var + 1e-12), rtol=1e-12)


def test_batch_norm_backward_is_the_sum_of_the_three_paths():
    """dx against the chain rule written out per channel (dx through x_hat, through var and through mu)."""
    g = np.random.default_rng(3)
    x, dy, gamma = g.standard_normal((4, 2, 3, 3)), g.standard_normal((4, 2, 3, 3)), np.array([1.5, -0.5])
    _, x_hat, inv_std, mu, var = F.batch_norm_train(x, gamma, np.zeros(2), 1e-5)
    dx, dgamma, dbeta = F.batch_norm_backward(dy, x_hat, inv_std, gamma)
    for c in range(2):
        xc, dyc, m = x[:, c], dy[:, c], x[:, c].size
        dxhat = dyc * gamma[c]
        dvar = np.sum(dxhat * (xc - mu[c])) * -0.5 * (var[c] + 1e-5) ** -1.5
        dmu = -np.sum(dxhat) * inv_std[c] + dvar * np.mean(-2 * (xc - mu[c]))
        want = dxhat * inv_std[c] + dvar * 2 * (xc - mu[c]) / m + dmu / m
        np.testing.assert_allclose(dx[:, c], want, atol=1e-12)
        np.testing.assert_allclose(dgamma[c], np.sum(dyc * x_hat[:, c]), atol=1e-12)
        np.testing.assert_allclose(dbeta[c], np.sum(dyc), atol=1e-12)


def test_eval_mode_uses_the_running_statistics():
    g = np.random.default_rng(4)
    x = g.standard_normal((3, 2, 4, 4))
    gamma, beta, mean, var = np.array([2.0, -1.0]), np.array([0.5, 0.0]), np.array([1.0, -2.0]), np.array([4.0, 0.25])
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5) * gamma[None, :, None, None]
    want += beta[None, :, None, None]
    np.testing.assert_allclose(F.batch_norm_eval(x, gamma, beta, mean, var, 1e-5), want, atol=1e-12)
    layer = L.BatchNorm2D(2).to(np.float64)
    layer.weight.data[:], layer.bias.data[:] = gamma, beta
    layer.running_mean, layer.running_var = mean.copy(), var.copy()
    np.testing.assert_allclose(layer.eval()(x), want, atol=1e-6)  # running stats kept in float32


def test_batch_norm_2d_layer_gradcheck_and_float32():
    layer = L.BatchNorm2D(3).to(np.float64)
    layer.weight.data[:] = [0.5, 1.5, -2.0]
    gradcheck(layer, np.random.default_rng(2).standard_normal((3, 3, 4, 5)))
    x32 = np.random.default_rng(3).standard_normal((4, 3, 5, 5)).astype(np.float32)
    layer32 = L.BatchNorm2D(3)
    y = layer32(x32)
    assert y.dtype == np.float32 and layer32.backward(np.ones_like(y)).dtype == np.float32


def test_update_running_moves_the_statistics_by_momentum_with_the_unbiased_variance():
    bn = L.BatchNorm2D(2, momentum=0.1)
    bn.update_running(np.array([1.0, 2.0]), np.array([3.0, 4.0]), 4, "BatchNorm2D")
    np.testing.assert_allclose(bn.running_mean, [0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * np.array([3.0, 4.0]) * 4 / 3, rtol=1e-6)
