"""minicnn.kernels.norm against its plain twins in minicnn.functional.norm: hypothesis over shapes (odd
sizes, badly centred data, non-contiguous input), float32 and float64, with and without x_hat, 1 and 2
workers; the float32 precision on badly centred data; BatchNorm2D/1D with the kernel switch on, off and
flipped between forward and backward."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minicnn import layers as L
from minicnn import runtime, threads
from minicnn.functional import norm as F
from minicnn.gradcheck import gradcheck
from minicnn.kernels import norm as K

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
WELL_CONDITIONED_VAR = 0.1  # float32 cases: each channel's variance at least this (10^4 eps)
shapes = st.tuples(st.integers(1, 9), st.integers(1, 5), st.integers(1, 7), st.integers(1, 7))


def _bn_case(shape, seed, offset, transposed, dtype=np.float64):
    """x (N, C, H, W) with a large mean (the centred sums must not cancel), gamma, beta, dy."""
    if shape[0] * shape[2] * shape[3] < 2:
        shape = (2, *shape[1:])
    g = np.random.default_rng(seed)
    x = (g.standard_normal(shape) * 3 + offset).astype(dtype)
    if transposed:  # a non-contiguous (N, C, H, W) view, as a channel-major producer would hand over
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gamma, beta = g.standard_normal(shape[1]).astype(dtype), g.standard_normal(shape[1]).astype(dtype)
    return x, gamma, beta, g.standard_normal(shape).astype(dtype)


@pytest.fixture
def switch():
    """runtime.use_kernels, restored to the environment's choice afterwards."""
    yield runtime.use_kernels
    runtime.use_kernels(None)


def _close(got, want, dtype):
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), offset=st.floats(-50, 50), transposed=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_kernel_batch_norm_equals_the_plain_function(shape, seed, offset, transposed, dtype):
    """Forward with x_hat, then backward from that x_hat and from x itself: all as the plain lines.
    float32 is compared with the plain lines in float64 (the kernel's statistics are float64), on
    channels whose variance is not close to eps (there dx cancels and no float32 pass keeps 1e-5;
    the hard float32 case has its own test below)."""
    x, gamma, beta, dy = _bn_case(shape, seed, offset, transposed, dtype)
    assume(dtype == np.float64 or x.astype(np.float64).var(axis=(0, 2, 3)).min() > WELL_CONDITIONED_VAR)
    x64, g64, b64, dy64 = (a.astype(np.float64) for a in (x, gamma, beta, dy))
    want = F.batch_norm_train(x64, g64, b64, 1e-5)
    got = K.batch_norm_train(x, gamma, beta, 1e-5)
    assert got[0].dtype == got[1].dtype == dtype
    for a, b in zip(got, want, strict=True):
        _close(a, b, dtype)
    want_back = F.batch_norm_backward(dy64, want[1], want[2], g64)
    x_before, dy_before = x.copy(), dy.copy()
    from_x_hat = K.batch_norm_backward(dy, got[1], got[2], gamma)
    y, none, inv_std, mu, _ = K.batch_norm_train(x, gamma, beta, 1e-5, keep_x_hat=False)
    assert none is None
    _close(y, want[0], dtype)
    from_x = K.batch_norm_backward(dy, None, inv_std, gamma, x=x, mean=mu)
    for a, b, c in zip(from_x_hat, from_x, want_back, strict=True):
        assert a.dtype == b.dtype == dtype
        _close(a, c, dtype)
        _close(b, c, dtype)
    np.testing.assert_array_equal(dy, dy_before)  # backward mutates neither dy nor the cached x
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_ranks_run_the_plain_lines(dtype):
    g = np.random.default_rng(9)
    x, gamma, beta, dy = (g.standard_normal(s).astype(dtype) for s in ((7, 3), (3,), (3,), (7, 3)))
    want = F.batch_norm_train(x, gamma, beta, 1e-5)
    got = K.batch_norm_train(x, gamma, beta, 1e-5)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    y, _, inv_std, mu, _ = K.batch_norm_train(x, gamma, beta, 1e-5, keep_x_hat=False)
    for a, b in zip(K.batch_norm_backward(dy, None, inv_std, gamma, x=x, mean=mu),
                    F.batch_norm_backward(dy, want[1], want[2], gamma), strict=True):
        _close(a, b, dtype)


def test_backward_wants_x_hat_or_x_and_mean():
    x = np.ones((2, 2, 2, 2))
    for kwargs in ({"x_hat": None}, {"x_hat": x, "x": x, "mean": np.ones(2)}, {"x_hat": None, "x": x}):
        x_hat = kwargs.pop("x_hat")
        with pytest.raises(ValueError, match="batch_norm_backward: expected x_hat, or x_hat=None with x and mean"):
            K.batch_norm_backward(x, x_hat, np.ones(2), np.ones(2), **kwargs)


def _max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_float32_kernel_keeps_its_precision_on_badly_centred_data():
    """Mean 1e3, std 1 in float32: E[x^2] - mu^2 would lose everything; the two-pass sums must not.

    Truth: the plain lines in float64 on the same float32 values. The float32 kernel must be within a few
    float32 rounding errors of it (and no worse than the plain lines run in float32)."""
    g = np.random.default_rng(5)
    x = (g.standard_normal((16, 4, 16, 16)) + 1e3).astype(np.float32)
    dy = g.standard_normal(x.shape).astype(np.float32)
    gamma, beta = np.array([0.5, 1.0, -2.0, 3.0], np.float32), np.array([0.1, -0.2, 0.0, 1.0], np.float32)
    y, _, inv_std, mu, var = K.batch_norm_train(x, gamma, beta, 1e-5, keep_x_hat=False)
    dx, dgamma, dbeta = K.batch_norm_backward(dy, None, inv_std, gamma, x=x, mean=mu)
    assert y.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == np.float32
    true_y, true_x_hat, true_inv_std, _, true_var = F.batch_norm_train(
        x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64), 1e-5)
    true_dx, true_dgamma, true_dbeta = F.batch_norm_backward(
        dy.astype(np.float64), true_x_hat, true_inv_std, gamma.astype(np.float64))
    naive_var = (x * x).mean(axis=(0, 2, 3)) - x.mean(axis=(0, 2, 3)) ** 2  # one-pass: cancels
    assert _max_rel(naive_var, true_var) > 0.1  # the data really is hard for a one-pass variance
    assert _max_rel(var, true_var) < 1e-6
    assert _max_rel(y, true_y) < 1e-5
    assert _max_rel(dx, true_dx) < 1e-5
    assert _max_rel(dgamma, true_dgamma) < 3e-5
    assert _max_rel(dbeta, true_dbeta) < 1e-6
    plain32_y = F.batch_norm_train(x, gamma, beta, 1e-5)[0]  # the plain lines in float32
    assert _max_rel(y, true_y) <= _max_rel(plain32_y, true_y)


@pytest.mark.parametrize("param_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3, 4, 6), (5, 3)])
def test_eval_kernel_equals_the_plain_function(param_dtype, shape):
    g = np.random.default_rng(7)
    x = g.standard_normal(shape).astype(np.float32)
    gamma, beta, mean = (g.standard_normal(3).astype(param_dtype) for _ in range(3))
    var = np.abs(g.standard_normal(3)).astype(param_dtype)
    want = F.batch_norm_eval(x, gamma, beta, mean, var, 1e-5)
    got = K.batch_norm_eval(x, gamma, beta, mean, var, 1e-5)
    assert got.dtype == want.dtype
    _close(got, want, np.float32 if param_dtype == np.float32 else np.float64)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_over_workers_gives_the_one_part_numbers_bit_for_bit(monkeypatch, workers, dtype):
    """With MINICNN_WORKERS parts (threads.split_large) every pass runs on a slice of the batch; each map
    is still summed alone and the map sums are added in image order, so nothing changes, not even a bit
    (and the numbers are the plain function's, within rounding)."""
    x, gamma, beta, dy = _bn_case((9, 3, 4, 6), 3, 7.0, False, dtype)
    one = K.batch_norm_train(x, gamma, beta, 1e-5, keep_x_hat=False)
    one_back = K.batch_norm_backward(dy, None, one[2], gamma, x=x, mean=one[3])
    parts = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, k: parts.append(k) or real(fn, n, k))
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setenv("MINICNN_WORKERS", workers)
    split = K.batch_norm_train(x, gamma, beta, 1e-5, keep_x_hat=False)
    split_back = K.batch_norm_backward(dy, None, split[2], gamma, x=x, mean=split[3])
    assert parts and set(parts) == {int(workers)}
    for a, b in zip((*split, *split_back), (*one, *one_back), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = F.batch_norm_train(x, gamma, beta, 1e-5)
    _close(split[0], plain[0], dtype)
    _close(split_back[0], F.batch_norm_backward(dy, plain[1], plain[2], gamma)[0], dtype)


def test_batch_norm_2d_caches_its_input_by_reference_and_release_drops_it(switch):
    switch(True)
    layer = L.BatchNorm2D(3)
    x = np.random.default_rng(6).standard_normal((4, 3, 5, 5)).astype(np.float32)
    layer(x)
    big = [v for v in layer._cache if isinstance(v, np.ndarray) and v.size == x.size]
    assert len(big) == 1 and big[0] is x  # x itself, no copy and no x_hat
    layer.release()
    assert "_cache" not in vars(layer)


@pytest.mark.parametrize("make,shape", [(lambda: L.BatchNorm2D(3), (3, 3, 4, 5)), (lambda: L.BatchNorm1D(3), (6, 3))])
@pytest.mark.parametrize("forward_kernels,backward_kernels", [(True, True), (False, False), (True, False),
                                                              (False, True)])
def test_layers_with_the_switch_on_off_and_flipped(switch, make, shape, forward_kernels, backward_kernels):
    """Training-mode output, gradients and running statistics as the plain path gives them, whichever path
    ran forward and backward; eval mode too; float64 gradient check with the kernels off and on."""
    g = np.random.default_rng(2)
    x, dy = g.standard_normal(shape) * 2 + 1, g.standard_normal(shape)
    results = []
    for kernels_forward, kernels_backward in ((False, False), (forward_kernels, backward_kernels)):
        layer = make().to(np.float64)
        layer.weight.data[:] = [0.5, 1.5, -2.0]
        switch(kernels_forward)
        y = layer(x)
        switch(kernels_backward)
        dx = layer.backward(dy)
        layer.eval()
        results.append((y, dx, layer.weight.grad, layer.bias.grad, layer.running_mean, layer.running_var, layer(x)))
    for got, want in zip(*results[::-1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    switch(forward_kernels)
    layer = make().to(np.float64)
    layer.weight.data[:] = [0.5, 1.5, -2.0]
    assert gradcheck(layer, x).max_rel_error < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
def test_channel_sums_kernel_equals_the_plain_function(dtype, transposed):
    """The per-channel sum (dbeta; the convolution kernels' bias gradient), odd sizes, non-contiguous."""
    a, *_ = _bn_case((5, 3, 4, 7), 8, 2.0, transposed, dtype)
    got, want = K.channel_sums(a), F.channel_sums(a)
    assert got.dtype == want.dtype == np.float64
    _close(got, want, dtype)
    np.testing.assert_allclose(want, [a[:, c].astype(np.float64).sum() for c in range(3)], rtol=1e-12)
