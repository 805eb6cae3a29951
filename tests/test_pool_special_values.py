"""Max pooling's plain functions against the direct loops on hard values: ties, +-0, +-inf and NaN in x
and in dy, windows of padding and -inf. (The kernels against these plain functions: test_kernels_pool.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pool_loops import max_pool2d_backward_loop, pool2d_loop, special

from minicnn import functional as F


def _check_against_loops(x, k, s, p, dy):
    y, argmax = F.max_pool2d(x, k, s, p)
    y_ref, argmax_ref = pool2d_loop(x, k, s, p, "max")
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(argmax, argmax_ref)
    dx_ref = max_pool2d_backward_loop(dy, argmax_ref, x.shape, k, s, p)
    # overlapping windows add in another order: allclose, NaN == NaN
    np.testing.assert_allclose(F.max_pool2d_backward(dy, argmax, x.shape, k, s, p), dx_ref, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), oh=st.integers(1, 4), ow=st.integers(1, 4),
       extra=st.sampled_from([(0, 0), (1, 0), (0, 1)]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_max_pool_2x2_special_values_match_the_direct_loops(n, c, oh, ow, extra, seed, dtype):
    """2x2 stride 2 (an odd H or W drops the last row/column) on ties, +-0, +-inf and NaN, with +-inf and
    NaN in dy too: y, argmax and dx exactly as the direct loops."""
    rng = np.random.default_rng(seed)
    x = special(rng, (n, c, 2 * oh + extra[0], 2 * ow + extra[1]), dtype)
    _check_against_loops(x, 2, None, 0, special(rng, (n, c, oh, ow), dtype))


# Expected: the upstream gradient holds +inf and -inf on purpose, and overlapping windows add them in one
# dx element (inf + -inf = NaN), in the engine and in the direct loops alike: NumPy warns of that NaN.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       seed=st.integers(0, 2**16), padded=st.booleans())
def test_max_pool_general_special_values_match_the_direct_loops(kh, kw, sh, sw, seed, padded):
    rng = np.random.default_rng(seed)
    p = (kh // 2, kw // 2) if padded else (0, 0)
    x = special(rng, (2, 2, 7, 6))
    y, _ = F.max_pool2d(x, (kh, kw), (sh, sw), p)
    _check_against_loops(x, (kh, kw), (sh, sw), p, special(rng, y.shape))


def test_nan_is_the_largest_value_and_its_first_position_wins():
    """y is NaN when the window holds a NaN, and argmax is the first NaN (np.argmax's rule), so the
    gradient goes to the value that made y."""
    x = np.array([[[[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, 5.0, np.nan]]]])
    y, argmax = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y, [[[[np.nan, np.nan]]]])
    np.testing.assert_array_equal(argmax, [[[[1, 3]]]])
    np.testing.assert_array_equal(argmax[0, 0, 0], [np.argmax(x[0, 0, :, :2].ravel()),
                                                    np.argmax(x[0, 0, :, 2:].ravel())])
    np.testing.assert_array_equal(argmax, pool2d_loop(x, 2, mode="max")[1])


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((1, 2), 1, 0)])
def test_nan_and_inf_in_dy_reach_only_the_winner(k, s, p):
    """dy * 0 would be NaN for dy = NaN or inf: backward must send dy to the winner only, as the loop does."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 8))
    y, argmax = F.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    dy[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    want = max_pool2d_backward_loop(dy, argmax, x.shape, k, s, p)
    assert 1 <= np.count_nonzero(~np.isfinite(want)) <= 3  # at the winners only (inf - inf may meet)
    np.testing.assert_allclose(F.max_pool2d_backward(dy, argmax, x.shape, k, s, p), want, rtol=0, atol=1e-12)


def test_a_window_of_padding_and_minus_infinity_picks_its_first_entry():
    """Padding is -inf: in a window of padding and -inf only, the first entry wins even when it is
    padding, and its gradient is dropped, by the direct loop too."""
    x = np.full((1, 1, 3, 3), -np.inf)
    y, argmax = F.max_pool2d(x, 3, stride=1, padding=1)
    assert np.all(y == -np.inf) and np.all(argmax == 0)
    np.testing.assert_array_equal(argmax, pool2d_loop(x, 3, 1, 1, "max")[1])
    dy = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    want = max_pool2d_backward_loop(dy, argmax, x.shape, 3, 1, 1)
    # window (oh, ow) starts at input (oh - 1, ow - 1): padding for oh = 0 or ow = 0, so those dy are dropped
    np.testing.assert_array_equal(want[0, 0], [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, argmax, x.shape, 3, 1, 1), want)


def test_stochastic_pool_backward_keeps_nan_in_dy_at_the_sample():
    x = np.random.default_rng(2).uniform(0.1, 1.0, (1, 1, 4, 4))
    _, index = F.stochastic_pool2d(x, 2, generator=np.random.default_rng(0))
    dy = np.array([[[[np.nan, 1.0], [2.0, np.inf]]]])
    dx = F.stochastic_pool2d_backward(dy, index, x.shape, 2)
    np.testing.assert_array_equal(dx, max_pool2d_backward_loop(dy, index, x.shape, 2))
    assert np.isnan(dx).sum() == 1
