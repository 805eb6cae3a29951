"""Max pooling's fast paths against the direct loops on hard values (ties, +-inf, NaN in x and in dy),
and the batch split over MINICNN_WORKERS parts (the same bits as one part)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L
from minicnn import threads
from minicnn.functional import pool as P

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.inf, -np.inf, np.nan])


def _special(rng, shape, dtype=np.float64):
    """Values drawn from a few numbers (many ties) with +-inf and NaN among them."""
    return rng.choice(SPECIAL, shape).astype(dtype)


def _check_against_reference(x, k, s, p, dy):
    y, argmax = F.max_pool2d(x, k, s, p)
    y_ref, argmax_ref = F.pool2d_reference(x, k, s, p, "max")
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(argmax, argmax_ref)
    assert argmax.min(initial=0) >= 0 and argmax.max(initial=0) < np.prod(P.pair(k, "t", "k"))
    dx_ref = F.max_pool2d_backward_reference(dy, argmax_ref, x.shape, k, s, p)
    for path in ("auto", "general"):
        np.testing.assert_array_equal(F.max_pool2d_backward(dy, argmax, x.shape, k, s, p, path=path), dx_ref)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), oh=st.integers(1, 4), ow=st.integers(1, 4),
       extra=st.sampled_from([(0, 0), (1, 0), (0, 1)]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_max_pool_2x2_special_values_match_the_direct_loops(n, c, oh, ow, extra, seed, dtype):
    """2x2 stride 2 (the fast paths; an odd H or W drops the last row/column) on ties, +-0, +-inf and NaN,
    with +-inf and NaN in dy too: y, argmax and dx exactly as the direct loops."""
    rng = np.random.default_rng(seed)
    x = _special(rng, (n, c, 2 * oh + extra[0], 2 * ow + extra[1]), dtype)
    dy = _special(rng, (n, c, oh, ow), dtype)
    _check_against_reference(x, 2, None, 0, dy)


@settings(max_examples=40, deadline=None)
@given(kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       seed=st.integers(0, 2**16), padded=st.booleans())
def test_max_pool_general_special_values_match_the_direct_loops(kh, kw, sh, sw, seed, padded):
    rng = np.random.default_rng(seed)
    p = (kh // 2, kw // 2) if padded else (0, 0)
    x = _special(rng, (2, 2, 7, 6))
    y, _ = F.max_pool2d(x, (kh, kw), (sh, sw), p)
    _check_against_reference(x, (kh, kw), (sh, sw), p, _special(rng, y.shape))


def test_nan_is_the_largest_value_and_its_first_position_wins():
    """y is NaN when the window holds a NaN, and argmax is the first NaN (np.argmax's rule), so the
    gradient goes to the value that made y."""
    x = np.array([[[[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, 5.0, np.nan]]]])
    y, argmax = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y, [[[[np.nan, np.nan]]]])
    np.testing.assert_array_equal(argmax, [[[[1, 3]]]])
    np.testing.assert_array_equal(argmax[0, 0, 0], [np.argmax(x[0, 0, :, :2].ravel()),
                                                    np.argmax(x[0, 0, :, 2:].ravel())])
    _, argmax_ref = F.pool2d_reference(x, 2, mode="max")
    np.testing.assert_array_equal(argmax, argmax_ref)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((1, 2), 1, 0)])
def test_nan_and_inf_in_dy_reach_only_the_winner(k, s, p):
    """dy * 0 would be NaN for dy = NaN or inf: the fast (2x2), tiling and overlapping paths must
    send dy to the winner only, as the direct loop does."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 8))
    y, argmax = F.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    dy[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    want = F.max_pool2d_backward_reference(dy, argmax, x.shape, k, s, p)
    assert 1 <= np.count_nonzero(~np.isfinite(want)) <= 3  # at the winners only (inf - inf may meet)
    for path in ("auto", "general"):  # overlapping windows add in another order: allclose (NaN == NaN)
        np.testing.assert_allclose(F.max_pool2d_backward(dy, argmax, x.shape, k, s, p, path=path), want,
                                   rtol=0, atol=1e-12)


def test_a_window_of_padding_and_minus_infinity_picks_its_first_entry():
    """Padding is -inf: in a window of padding and -inf only, the first entry wins even when it is
    padding, and its gradient is dropped by every path, the direct loop included."""
    x = np.full((1, 1, 3, 3), -np.inf)
    y, argmax = F.max_pool2d(x, 3, stride=1, padding=1)
    assert np.all(y == -np.inf) and np.all(argmax == 0)
    np.testing.assert_array_equal(argmax, F.pool2d_reference(x, 3, 1, 1, "max")[1])
    dy = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    want = F.max_pool2d_backward_reference(dy, argmax, x.shape, 3, 1, 1)
    # window (oh, ow) starts at input (oh - 1, ow - 1): padding for oh = 0 or ow = 0, so those dy are dropped
    np.testing.assert_array_equal(want[0, 0], [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, argmax, x.shape, 3, 1, 1), want)


def test_stochastic_pool_backward_keeps_nan_in_dy_at_the_sample():
    x = np.random.default_rng(2).uniform(0.1, 1.0, (1, 1, 4, 4))
    _, index = F.stochastic_pool2d(x, 2, generator=np.random.default_rng(0))
    dy = np.array([[[[np.nan, 1.0], [2.0, np.inf]]]])
    dx = F.stochastic_pool2d_backward(dy, index, x.shape, 2)
    np.testing.assert_array_equal(dx, F.max_pool2d_backward_reference(dy, index, x.shape, 2))
    assert np.isnan(dx).sum() == 1


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,shape", [(2, None, 0, (5, 3, 8, 6)), (2, None, 0, (7, 2, 5, 7)),
                                         (3, 2, 1, (5, 2, 7, 7)), (2, 1, 0, (4, 3, 5, 6))])
def test_workers_and_blocks_give_the_one_part_bits(monkeypatch, workers, dtype, k, s, p, shape):
    """Forward split over `workers` parts, each cut into blocks of one image: bit-identical to one part
    (and so is the backward from its argmax, on both paths)."""
    rng = np.random.default_rng(11)
    x = _special(rng, shape, dtype)
    y1, a1 = F.max_pool2d(x, k, s, p)
    dy = _special(rng, y1.shape, dtype)
    dx1 = {path: F.max_pool2d_backward(dy, a1, shape, k, s, p, path=path) for path in ("auto", "general")}
    monkeypatch.setenv("MINICNN_WORKERS", str(workers))
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setattr(P, "BLOCK_VALUES", 1)
    calls = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    y, a = F.max_pool2d(x, k, s, p)
    assert calls == [workers]
    assert y.dtype == x.dtype and y.tobytes() == y1.tobytes() and a.tobytes() == a1.tobytes()
    for path, want in dx1.items():
        got = F.max_pool2d_backward(dy, a, shape, k, s, p, path=path)
        assert got.dtype == dtype and got.shape == shape and got.tobytes() == want.tobytes()
    assert calls == [workers]  # backward runs whole (splitting it measured no faster)


def test_small_pools_are_not_split(monkeypatch):
    """Below threads.SPLIT_MIN_VALUES input values the hand-offs would cost more than a second thread saves."""
    monkeypatch.setenv("MINICNN_WORKERS", "2")
    calls = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    x = np.zeros((2, 3, 8, 8))
    assert x.size < threads.SPLIT_MIN_VALUES
    y, a = F.max_pool2d(x, 2)
    F.max_pool2d_backward(y, a, x.shape, 2)
    assert calls == [1]
    big = np.zeros((4, 2, 2, threads.SPLIT_MIN_VALUES // 16))
    F.max_pool2d(big, 2)
    assert calls == [1, 2]


def test_layer_split_over_workers_matches_one_part(monkeypatch):
    x = np.random.default_rng(4).standard_normal((6, 4, 10, 10)).astype(np.float32)
    layer = L.MaxPool2D(2)
    y1 = layer(x)
    dx1 = layer.backward(np.ones_like(y1))
    monkeypatch.setenv("MINICNN_WORKERS", "2")
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    assert layer(x).tobytes() == y1.tobytes()
    assert layer.backward(np.ones_like(y1)).tobytes() == dx1.tobytes()
