"""minicnn.kernels.activations against its plain twins in minicnn.functional.dense, bit for bit (signed
zeros, NaN of both signs, infinities), any rank, float32 and float64, 1 and 2 workers; the ReLU layer with
the kernel switch on, off and flipped between forward and backward."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L
from minicnn import runtime, threads
from minicnn.gradcheck import gradcheck
from minicnn.kernels import activations as K

SPECIAL = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, -1.5, 2.5])


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.itemsize}")


def _case(shape, seed, dtype):
    g = np.random.default_rng(seed)
    x, dy = g.standard_normal(shape).astype(dtype), g.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL[: flat.size]  # signed zeros, NaN of both signs, infinities
    dy.reshape(-1)[-2:] = [np.nan, -np.inf][: dy.size]
    return x, dy


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_kernels_equal_the_plain_functions_bit_for_bit(shape, seed, dtype):
    x, dy = _case(shape, seed, dtype)
    x_before, dy_before = x.copy(), dy.copy()
    want = F.relu(x)
    y, positive = K.relu(x, with_mask=True)
    for got in (K.relu(x), y):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(_bits(got), _bits(want))
    np.testing.assert_array_equal(positive, x > 0)
    want_dx = F.relu_backward(dy, x)
    for got in (K.relu_backward(dy, x), K.relu_backward(dy, None, positive=positive)):
        assert got.dtype == want_dx.dtype and got.shape == want_dx.shape
        np.testing.assert_array_equal(_bits(got), _bits(want_dx))
    np.testing.assert_array_equal(_bits(x), _bits(x_before))  # inputs left alone
    np.testing.assert_array_equal(_bits(dy), _bits(dy_before))
    assert not np.shares_memory(y, x)


def test_relu_backward_wants_x_or_the_mask():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="relu_backward: expected x or positive"):
        K.relu_backward(x, None)
    with pytest.raises(ValueError, match="relu_backward: expected x or positive"):
        K.relu_backward(x, x, positive=x > 0)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_split_over_workers_give_the_plain_bits(monkeypatch, workers, dtype):
    """A batch larger than one part: forward (value and mask) and backward in MINICNN_WORKERS parts."""
    x, dy = _case((7, 3, 4, 4), 4, dtype)
    parts = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, k: parts.append(k) or real(fn, n, k))
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setenv("MINICNN_WORKERS", workers)
    y, positive = K.relu(x, with_mask=True)
    np.testing.assert_array_equal(_bits(y), _bits(F.relu(x)))
    np.testing.assert_array_equal(_bits(K.relu_backward(dy, None, positive=positive)), _bits(F.relu_backward(dy, x)))
    np.testing.assert_array_equal(_bits(K.relu_backward(dy, x)), _bits(F.relu_backward(dy, x)))
    assert parts == [int(workers)] * 3


@pytest.fixture
def switch():
    """runtime.use_kernels, restored to the environment's choice afterwards."""
    yield runtime.use_kernels
    runtime.use_kernels(None)


@pytest.mark.parametrize("forward_kernels,backward_kernels", [(True, True), (False, False), (True, False),
                                                              (False, True)])
def test_relu_layer_with_the_switch_on_off_and_flipped(switch, forward_kernels, backward_kernels):
    x, dy = _case((2, 3, 4, 4), 5, np.float32)
    layer = L.ReLU()
    switch(forward_kernels)
    y = layer(x)
    switch(backward_kernels)
    np.testing.assert_array_equal(_bits(y), _bits(F.relu(x)))
    np.testing.assert_array_equal(_bits(layer.backward(dy)), _bits(F.relu_backward(dy, x)))
    switch(forward_kernels)
    xs = np.array([[-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]])  # away from the kink at 0
    assert gradcheck(L.ReLU(), xs).max_rel_error < 1e-6


def test_relu_layer_with_kernels_keeps_a_boolean_mask_not_its_input(switch):
    switch(True)
    layer = L.ReLU()
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer(x)
    cached = [v for v in vars(layer).values() if isinstance(v, np.ndarray)]
    assert [c.dtype for c in cached] == [np.bool_]
    assert not any(np.shares_memory(c, x) for c in cached)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 4)])
def test_relu_backward_of_inf_where_x_is_negative_is_nan_without_a_warning(dtype, shape):
    x = np.full(shape, -1.0, dtype)
    x.flat[0] = 2.0
    dy = np.full(shape, np.inf, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        dx = K.relu_backward(dy, x)
        dx_mask = K.relu_backward(dy, None, positive=x > 0)
    expected = np.full(shape, np.nan, dtype)
    expected.flat[0] = np.inf  # dy * [x > 0]: inf * 1 at the positive entry, inf * 0 = NaN elsewhere
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(dx_mask, expected)
