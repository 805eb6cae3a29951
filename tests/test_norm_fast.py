"""The fast BatchNorm2D math (BLAS sums, fewer passes) against the readable reference lines."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import layers as L
from minicnn.functional import norm as F
from minicnn.gradcheck import gradcheck

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), offset=st.floats(-50, 50), transposed=st.booleans())
def test_fast_batch_norm_equals_the_reference(shape, seed, offset, transposed):
    if shape[0] * shape[2] * shape[3] < 2:
        shape = (2, *shape[1:])
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape) * 3 + offset  # a large mean: the centred sums must not cancel
    if transposed:  # a non-contiguous (N, C, H, W) view, as a channel-major producer would hand over
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gamma, beta = g.standard_normal(shape[1]), g.standard_normal(shape[1])
    dy = g.standard_normal(shape)
    fast = F.batch_norm_train(x, gamma, beta, 1e-5)
    ref = F.batch_norm_train_reference(x, gamma, beta, 1e-5)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    dy_before = dy.copy()
    fast_b = F.batch_norm_backward(dy, ref[1], ref[2], gamma)
    ref_b = F.batch_norm_backward_reference(dy, ref[1], ref[2], gamma)
    for a, b in zip(fast_b, ref_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dy, dy_before)  # backward never mutates dy


def test_reference_batch_norm_normalises_each_channel():
    x = np.random.default_rng(1).standard_normal((6, 3, 4, 5)) * np.array([1.0, 5.0, 0.1])[None, :, None, None]
    y, *_ = F.batch_norm_train_reference(x, np.ones(3), np.zeros(3), 1e-12)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-8)


def test_batch_norm_2d_layer_gradcheck_and_float32():
    layer = L.BatchNorm2D(3).to(np.float64)
    layer.weight.data[:] = [0.5, 1.5, -2.0]
    gradcheck(layer, np.random.default_rng(2).standard_normal((3, 3, 4, 5)))
    x32 = np.random.default_rng(3).standard_normal((4, 3, 5, 5)).astype(np.float32)
    layer32 = L.BatchNorm2D(3)
    y = layer32(x32)
    assert y.dtype == np.float32 and layer32.backward(np.ones_like(y)).dtype == np.float32


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
