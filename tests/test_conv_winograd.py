"""The Winograd F(2x2, 3x3) kernel (`minicnn.kernels.conv_winograd`) against the plain im2col math: forward,
dx, dw and db on random shapes (odd and even maps, padding 0 to 3, one to several blocks of images), float64 to
1e-10 and float32 to float32 rounding; it refuses what it does not compute; the planner offers it where it may
pay and what it offers computes the plain numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import ONE, float32_case
from kernel_checks import scaled_error as _scaled_error

from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import conv_winograd as W


@st.composite
def cases(draw):
    n, c, t = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    pad_h, pad_w = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, 3 - 2 * pad_h), 11))
    w = draw(st.integers(max(1, 3 - 2 * pad_w), 11))
    return n, c, t, h, w, (pad_h, pad_w)


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(0, 2**31 - 1), st.booleans(), st.booleans())
def test_forward_and_backward_are_the_plain_math_in_float64(case, seed, bias, input_grad):
    n, c, t, h, w, padding = case
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((t, c, 3, 3))
    b = rng.standard_normal(t) if bias else None
    y = plain.conv2d_im2col(x, wt, b, ONE, padding, ONE, 1)
    assert _scaled_error(W.conv2d_winograd(x, wt, b, ONE, padding, ONE, 1), y) < 1e-12
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx, dw, db = plain.conv2d_im2col_backward(dy, x, wt, ONE, padding, ONE, 1)
    got_dx, got_dw, got_db = W.conv2d_winograd_backward(dy, x, wt, ONE, padding, ONE, 1, input_grad=input_grad)
    assert (got_dx is None) != input_grad
    if input_grad:
        assert got_dx.shape == x.shape and _scaled_error(got_dx, dx) < 1e-12
    assert got_dw.shape == wt.shape and _scaled_error(got_dw, dw) < 1e-12
    assert _scaled_error(got_db, db) < 1e-12
    assert np.array_equal(dy, dy_before)


@pytest.mark.parametrize("block_values", [16 * 4 * 6, W.BLOCK_VALUES])  # one image per block, or all at once
@pytest.mark.parametrize("parts", [1, 2])
def test_blocks_and_parts_give_the_same_numbers(monkeypatch, block_values, parts):
    rng = np.random.default_rng(3)
    x, wt, b = rng.standard_normal((5, 6, 7, 8)), rng.standard_normal((4, 6, 3, 3)), rng.standard_normal(4)
    monkeypatch.setattr(W, "BLOCK_VALUES", block_values)
    y = plain.conv2d_im2col(x, wt, b, ONE, ONE, ONE, 1)
    assert _scaled_error(W.conv2d_winograd(x, wt, b, ONE, ONE, ONE, 1, parts=parts), y) < 1e-12
    dy = rng.standard_normal(y.shape)
    expected = plain.conv2d_im2col_backward(dy, x, wt, ONE, ONE, ONE, 1)
    got = W.conv2d_winograd_backward(dy, x, wt, ONE, ONE, ONE, 1, parts=parts)
    assert all(_scaled_error(g, e) < 1e-12 for g, e in zip(got, expected, strict=True))


def test_float32_differs_from_the_plain_math_by_rounding_only():
    x, wt, y, rng = float32_case((8, 32, 16, 16), (32, 32, 3, 3))
    got = W.conv2d_winograd(x, wt, None, ONE, ONE, ONE, 1)
    assert got.dtype == np.float32 and _scaled_error(got, y) < 1e-5
    dy = rng.standard_normal(y.shape).astype(np.float32)
    expected = plain.conv2d_im2col_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64),
                                            ONE, ONE, ONE, 1)
    for g, e in zip(W.conv2d_winograd_backward(dy, x, wt, ONE, ONE, ONE, 1), expected, strict=True):
        assert g.dtype == np.float32 and _scaled_error(g, e) < 1e-5


@pytest.mark.parametrize("weight, stride, dilation, groups", [
    ((4, 2, 5, 5), ONE, ONE, 1), ((4, 2, 3, 3), (2, 2), ONE, 1), ((4, 2, 3, 3), ONE, (2, 2), 1),
    ((4, 1, 3, 3), ONE, ONE, 2)])
def test_it_refuses_what_it_does_not_compute(weight, stride, dilation, groups):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros(weight)
    assert not W.winograd_applies(weight, stride, dilation, groups) and W.winograd_applies((4, 2, 3, 3), ONE, ONE, 1)
    with pytest.raises(ValueError, match="expected a 3x3 kernel, stride \\(1, 1\\), dilation \\(1, 1\\) and groups 1"):
        W.conv2d_winograd(x, w, None, stride, ONE, dilation, groups)
    with pytest.raises(ValueError, match="expected a 3x3 kernel"):
        W.conv2d_winograd_backward(np.zeros((1, 4, 7, 7)), x, w, stride, ONE, dilation, groups)


def test_the_planner_offers_it_on_wide_3x3_layers_and_it_computes_the_plain_math():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, K.WINOGRAD_MIN_CHANNELS, 6, 6))
    w = rng.standard_normal((K.WINOGRAD_MIN_CHANNELS, K.WINOGRAD_MIN_CHANNELS, 3, 3))
    b = rng.standard_normal(w.shape[0])
    args = (ONE, ONE, ONE, 1)
    forward, backward_dx = K.forward_candidates(x, w, b, *args), K.backward_candidates(x, x, w, *args, True)
    assert "winograd" in forward and "winograd" in backward_dx
    assert _scaled_error(forward["winograd"](), plain.conv2d_im2col(x, w, b, *args)) < 1e-12
    expected = plain.conv2d_im2col_backward(x, x, w, *args)
    assert all(_scaled_error(g, e) < 1e-12 for g, e in zip(backward_dx["winograd"](), expected, strict=True))
    dx, _, _ = K.backward_candidates(x, x, w, *args, False)["winograd"]()
    assert dx is None
    thin = np.zeros((3, K.WINOGRAD_MIN_CHANNELS - 1, 6, 6))
    assert "winograd" not in K.forward_candidates(thin, np.zeros((32, thin.shape[1], 3, 3)), None, *args)
    assert "winograd" not in K.forward_candidates(x, w, None, (2, 2), ONE, ONE, 1)
