"""ReLU's fast forward (F.relu: maximum with a zero array of one example's shape) against the plain
np.maximum(x, 0), bit for bit; the layer against F.relu / F.relu_backward."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L

SPECIAL = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, -1.5, 2.5])


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_layer_equals_f_relu_bit_for_bit(shape, seed, dtype):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL[: flat.size]  # signed zeros, NaN of both signs, infinities
    layer = L.ReLU()
    y = layer(x)
    want = np.maximum(x, 0)  # the plain form
    fast = F.relu(x)
    np.testing.assert_array_equal(fast.view(f"u{fast.itemsize}"), want.view(f"u{want.itemsize}"))
    assert y.dtype == want.dtype and y.shape == want.shape
    np.testing.assert_array_equal(y.view(f"u{y.itemsize}"), want.view(f"u{want.itemsize}"))
    dy = g.standard_normal(shape).astype(dtype)
    dy_before = dy.copy()
    np.testing.assert_array_equal(layer.backward(dy), F.relu_backward(dy, x))
    np.testing.assert_array_equal(dy, dy_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_layer_leaves_its_input_alone(dtype):
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4)).astype(dtype)
    before = x.copy()
    y = L.ReLU()(x)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize("workers", ["2", "3"])
def test_relu_layer_split_over_workers_gives_the_same_bits(monkeypatch, workers):
    """The ReLU layer's forward (value and mask) and backward in MINICNN_WORKERS parts of the batch."""
    from minicnn import threads

    g = np.random.default_rng(4)
    x = g.standard_normal((5, 3, 4, 4)).astype(np.float32)
    x[0, 0, 0, :2] = [-0.0, np.nan]
    dy = g.standard_normal(x.shape).astype(np.float32)
    parts = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, k: parts.append(k) or real(fn, n, k))
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setenv("MINICNN_WORKERS", workers)
    layer = L.ReLU()
    np.testing.assert_array_equal(layer.forward(x), np.maximum(x, 0))
    np.testing.assert_array_equal(layer.backward(dy), F.relu_backward(dy, x))
    assert parts == [int(workers)] * 2
