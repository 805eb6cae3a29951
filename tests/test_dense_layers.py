"""Dense-net layers: forward against independent formulas / loops, float32 and float64, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import core
from minicnn import layers as L


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), fin=st.integers(1, 7), fout=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_linear_forward_matches_loop(n, fin, fout, seed):
    g = np.random.default_rng(seed)
    lin = L.Linear(fin, fout).to(np.float64)
    x = g.standard_normal((n, fin))
    y = lin(x)
    w, b = lin.weight.data, lin.bias.data
    for i in range(n):
        for o in range(fout):
            assert abs(y[i, o] - (sum(w[o, k] * x[i, k] for k in range(fin)) + b[o])) < 1e-12


def test_linear_backward_is_the_lecture_formulas():
    g = np.random.default_rng(0)
    lin = L.Linear(4, 3).to(np.float64)
    x, dy = g.standard_normal((2, 4)), g.standard_normal((2, 3))
    lin(x)
    dx = lin.backward(dy)
    W = lin.weight.data
    for n in range(2):  # per example: dz/dx = W^T dz/dy, dz/dW = dz/dy x^T
        np.testing.assert_allclose(dx[n], W.T @ dy[n], atol=1e-14)
    np.testing.assert_allclose(lin.weight.grad, sum(np.outer(dy[n], x[n]) for n in range(2)), atol=1e-14)
    np.testing.assert_allclose(lin.bias.grad, dy.sum(0), atol=1e-14)


def test_activation_formulas():
    x = np.array([-3.0, -0.5, 0.5, 3.0, 7.0])
    np.testing.assert_array_equal(L.ReLU()(x), [0, 0, 0.5, 3, 7])
    np.testing.assert_array_equal(L.ReLU6()(x), [0, 0, 0.5, 3, 6])
    np.testing.assert_allclose(L.LeakyReLU(0.1)(x), [-0.3, -0.05, 0.5, 3, 7])
    np.testing.assert_allclose(L.Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(L.Tanh()(x), np.tanh(x))
    from scipy.stats import norm

    np.testing.assert_allclose(L.GELU()(x), x * norm.cdf(x), rtol=1e-12)
    big = np.array([-1000.0, 1000.0])
    assert np.all(np.isfinite(L.Sigmoid()(big)))


def test_maxout_is_max_over_channel_groups():
    g = np.random.default_rng(0)
    x = g.standard_normal((2, 6, 3, 3))
    y = L.Maxout(2)(x)
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(y[n, c], np.maximum(x[n, 2 * c], x[n, 2 * c + 1]))
    with pytest.raises(ValueError, match=r"Maxout: expected input \(N, C, ...\) with C divisible by pieces=4, got shape \(2, 6, 3, 3\)"):
        L.Maxout(4)(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input(dtype):
    net = L.Sequential(L.Linear(4, 5), L.BatchNorm1D(5), L.Tanh(), L.Linear(5, 2))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    y = net(x)
    assert y.dtype == dtype
    assert net.backward(np.ones_like(y)).dtype == dtype


def test_dropout_inverted_scaling_and_eval_identity():
    core.manual_seed(0)
    d = L.Dropout(0.25)
    x = np.ones((200, 200))
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(d.backward(x), y)  # same mask routes the gradient
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="Dropout: expected 0 <= p < 1, got 1.0"):
        L.Dropout(1.0)


def test_batchnorm_training_and_running_statistics_as_pytorch():
    g = np.random.default_rng(0)
    x = g.normal(3.0, 2.0, size=(8, 3, 4, 4))
    bn = L.BatchNorm2D(3).to(np.float64)
    y = bn(x)
    mu, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    np.testing.assert_allclose(y, (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5), atol=1e-12)
    m = 8 * 4 * 4
    np.testing.assert_allclose(bn.running_mean, 0.1 * mu)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * m / (m - 1))
    bn.eval()
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(bn(x), expected, atol=1e-12)


@pytest.mark.parametrize(
    "layer, x, message",
    [
        (L.Linear(5, 3), np.zeros((2, 4), np.float32), r"Linear: expected input \(N, 5\) with size 5 on axis 1, got shape \(2, 4\)"),
        (L.Linear(5, 3), np.zeros((2, 5, 1), np.float32), r"Linear: expected a 2-D input \(N, 5\), got shape \(2, 5, 1\)"),
        (L.Linear(5, 3), np.zeros((2, 5), np.int64), r"Linear: expected a floating-point input \(N, 5\), got dtype int64"),
        (L.BatchNorm1D(4), np.zeros((2, 3), np.float32), r"BatchNorm1D: expected input \(N, 4\) with size 4 on axis 1, got shape \(2, 3\)"),
        (L.BatchNorm2D(4), np.zeros((2, 4), np.float32), r"BatchNorm2D: expected a 4-D input \(N, 4, H, W\), got shape \(2, 4\)"),
        (L.BatchNorm1D(4), np.zeros((1, 4), np.float32), r"BatchNorm1D: expected more than 1 value per channel"),
        (L.Flatten(), np.zeros(3, np.float32), r"Flatten: expected an input \(N, ...\) of rank >= 2, got \(3,\)"),
        (L.ReLU(), [1.0, 2.0], r"ReLU: expected a floating-point ndarray, got list"),
    ],
)
def test_bad_input_is_named(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


@pytest.mark.parametrize("layer", [L.ReLU(), L.ReLU6(), L.LeakyReLU(0.2), L.Sigmoid(), L.Tanh(), L.GELU(),
                                   L.Maxout(2), L.Flatten(), L.Dropout(0.5), L.BatchNorm2D(4)])
def test_activations_keep_float32(layer):
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_kaiming_uniform_in_chunks_draws_the_same_numbers_as_one_draw(monkeypatch):
    from minicnn import core
    from minicnn.layers import dense

    monkeypatch.setattr(dense, "INIT_CHUNK", 7)  # many chunks, one of them partial
    core.manual_seed(5)
    chunked = dense.kaiming_uniform((4, 3, 5), 60)
    core.manual_seed(5)
    whole = core.rng().uniform(-1 / np.sqrt(60), 1 / np.sqrt(60), size=(4, 3, 5)).astype(np.float32)
    assert chunked.dtype == np.float32 and chunked.shape == (4, 3, 5)
    np.testing.assert_array_equal(chunked, whole)
