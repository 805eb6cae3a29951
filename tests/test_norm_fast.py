"""The fast BatchNorm2D math (row sums, fewer passes, backward from x) against the readable reference lines."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import layers as L
from minicnn.functional import norm as F
from minicnn.gradcheck import gradcheck

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


def _bn_case(shape, seed, offset, transposed):
    """x (N, C, H, W) with a large mean (the centred sums must not cancel), gamma, beta, dy."""
    if shape[0] * shape[2] * shape[3] < 2:
        shape = (2, *shape[1:])
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape) * 3 + offset
    if transposed:  # a non-contiguous (N, C, H, W) view, as a channel-major producer would hand over
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    return x, g.standard_normal(shape[1]), g.standard_normal(shape[1]), g.standard_normal(shape)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), offset=st.floats(-50, 50), transposed=st.booleans())
def test_fast_batch_norm_equals_the_reference(shape, seed, offset, transposed):
    x, gamma, beta, dy = _bn_case(shape, seed, offset, transposed)
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


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), offset=st.floats(-50, 50), transposed=st.booleans())
def test_batch_norm_from_x_equals_the_reference(shape, seed, offset, transposed):
    """The layer's path: forward returns no x_hat; backward reads x, its mean and inv_std."""
    x, gamma, beta, dy = _bn_case(shape, seed, offset, transposed)
    y, mu, inv_std, var = F.batch_norm_train_x(x, gamma, beta, 1e-5)
    ref = F.batch_norm_train_reference(x, gamma, beta, 1e-5)
    for a, b in zip((y, inv_std, mu, var), (ref[0], *ref[2:]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    x_before, dy_before = x.copy(), dy.copy()
    got = F.batch_norm_backward_x(dy, x, mu, inv_std, gamma)
    want = F.batch_norm_backward_reference(dy, ref[1], ref[2], gamma)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dy, dy_before)  # backward mutates neither dy nor the cached x
    np.testing.assert_array_equal(x, x_before)


def _max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_float32_batch_norm_keeps_its_precision_on_badly_centred_data():
    """Mean 1e3, std 1 in float32: E[x^2] - mu^2 would lose everything; the two-pass sums must not.

    Truth: the reference lines in float64 on the same float32 values. The float32 fast path must be
    within a few float32 rounding errors of it (and no worse than the reference run in float32)."""
    g = np.random.default_rng(5)
    x = (g.standard_normal((16, 4, 16, 16)) + 1e3).astype(np.float32)
    dy = g.standard_normal(x.shape).astype(np.float32)
    gamma, beta = np.array([0.5, 1.0, -2.0, 3.0], np.float32), np.array([0.1, -0.2, 0.0, 1.0], np.float32)
    y, mu, inv_std, var = F.batch_norm_train_x(x, gamma, beta, 1e-5)
    dx, dgamma, dbeta = F.batch_norm_backward_x(dy, x, mu, inv_std, gamma)
    assert y.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == np.float32
    true_y, true_x_hat, true_inv_std, _, true_var = F.batch_norm_train_reference(
        x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64), 1e-5)
    true_dx, true_dgamma, true_dbeta = F.batch_norm_backward_reference(
        dy.astype(np.float64), true_x_hat, true_inv_std, gamma.astype(np.float64))
    naive_var = (x * x).mean(axis=(0, 2, 3)) - x.mean(axis=(0, 2, 3)) ** 2  # one-pass: cancels
    assert _max_rel(naive_var, true_var) > 0.1  # the data really is hard for a one-pass variance
    assert _max_rel(var, true_var) < 1e-6
    assert _max_rel(y, true_y) < 1e-5
    assert _max_rel(dx, true_dx) < 1e-5
    assert _max_rel(dgamma, true_dgamma) < 3e-5
    assert _max_rel(dbeta, true_dbeta) < 1e-6
    ref32_y = F.batch_norm_train_reference(x, gamma, beta, 1e-5)[0]  # the reference lines in float32
    assert _max_rel(y, true_y) <= _max_rel(ref32_y, true_y)


def test_batch_norm_2d_caches_its_input_by_reference_and_release_drops_it():
    layer = L.BatchNorm2D(3)
    x = np.random.default_rng(6).standard_normal((4, 3, 5, 5)).astype(np.float32)
    layer(x)
    big = [v for v in layer._cache if isinstance(v, np.ndarray) and v.size == x.size]
    assert len(big) == 1 and big[0] is x  # x itself, no copy and no x_hat
    layer.release()
    assert "_cache" not in vars(layer)


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


@pytest.mark.parametrize("param_dtype", [np.float32, np.float64])
def test_eval_fast_path_gives_the_plain_broadcast_bit_for_bit(param_dtype):
    """Eval mode for (N, C, H, W) uses (1, C, H, W) constants: same values and dtype as the plain lines."""
    g = np.random.default_rng(7)
    x = g.standard_normal((5, 3, 4, 6)).astype(np.float32)
    gamma, beta, mean = (g.standard_normal(3).astype(param_dtype) for _ in range(3))
    var = np.abs(g.standard_normal(3)).astype(param_dtype)
    scale = gamma / np.sqrt(var + 1e-5)
    want = x * scale[None, :, None, None] + (beta - mean * scale)[None, :, None, None]
    got = F.batch_norm_eval(x, gamma, beta, mean, var, 1e-5)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("workers", ["2", "3"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_split_over_workers_gives_the_one_thread_numbers_bit_for_bit(monkeypatch, workers, dtype):
    """With MINICNN_WORKERS parts (threads.split_large) every pass runs on a slice of the batch; each map
    is still summed alone and the map sums are added in image order, so nothing changes, not even a bit."""
    from minicnn import threads

    x, gamma, beta, dy = _bn_case((5, 3, 4, 6), 3, 7.0, False)
    x, dy = x.astype(dtype), dy.astype(dtype)
    one = F.batch_norm_train_x(x, gamma, beta, 1e-5)
    one_back = F.batch_norm_backward_x(dy, x, one[1], one[2], gamma)
    parts = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, k: parts.append(k) or real(fn, n, k))
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setenv("MINICNN_WORKERS", workers)
    split = F.batch_norm_train_x(x, gamma, beta, 1e-5)
    split_back = F.batch_norm_backward_x(dy, x, split[1], split[2], gamma)
    assert parts and set(parts) == {int(workers)}
    for a, b in zip((*split, *split_back), (*one, *one_back), strict=True):
        np.testing.assert_array_equal(a, b)
