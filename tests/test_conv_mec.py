"""The one-axis lowering (MEC, `minicnn.kernels.conv_mec`) against the plain im2col math: forward, dx, dw and
db on random shapes (kernels 1x1 to 5x4, padding up to the full correlation's, dilation 1 and 2, one to
several blocks of images, one or two parts), float64 to 1e-12 and float32 to float32 rounding; it refuses
what it does not compute; the planner offers it where it applies and what it offers computes the plain
numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import conv_mec as M

ONE = (1, 1)


def _scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0)) / max(1.0, float(np.max(np.abs(b), initial=0.0)))


@st.composite
def cases(draw):
    n, c, t = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    extent = [d * (k - 1) for d, k in zip(dilation, kernel)]  # E - 1 per axis: the largest padding dx allows
    padding = (draw(st.integers(0, extent[0])), draw(st.integers(0, extent[1])))
    h = draw(st.integers(max(1, extent[0] + 1 - 2 * padding[0]), 10))
    w = draw(st.integers(max(1, extent[1] + 1 - 2 * padding[1]), 10))
    block_values = draw(st.sampled_from([1, 500, M.BLOCK_VALUES]))  # one image per block ... all at once
    return (n, c, h, w), (t, c, *kernel), padding, dilation, block_values, draw(st.integers(1, 2))


@settings(max_examples=80, deadline=None)
@given(cases(), st.integers(0, 2**31 - 1), st.booleans(), st.booleans())
def test_forward_and_backward_are_the_plain_math_in_float64(case, seed, bias, input_grad):
    x_shape, w_shape, padding, dilation, block_values, parts = case
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    args = (ONE, padding, dilation, 1)
    y = plain.conv2d_im2col(x, wt, b, *args)
    got = M.conv2d_mec(x, wt, b, *args, block_values=block_values, parts=parts)
    assert got.shape == y.shape and _scaled_error(got, y) < 1e-12
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx, dw, db = plain.conv2d_im2col_backward(dy, x, wt, *args)
    got_dx, got_dw, got_db = M.conv2d_mec_backward(dy, x, wt, *args, input_grad=input_grad,
                                                   block_values=block_values, parts=parts)
    assert (got_dx is None) != input_grad
    if input_grad:
        assert got_dx.shape == x.shape and _scaled_error(got_dx, dx) < 1e-12
    assert got_dw.shape == wt.shape and _scaled_error(got_dw, dw) < 1e-12
    assert _scaled_error(got_db, db) < 1e-12
    assert np.array_equal(dy, dy_before)


def test_a_padding_wider_than_the_kernel_runs_forward_and_dw_but_dx_is_refused():
    rng = np.random.default_rng(2)
    x, wt = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    args = (ONE, (3, 2), ONE, 1)  # padding 3 > E - 1 = 2 on the rows
    assert M.mec_backward_applies(wt.shape, *args, False) and not M.mec_backward_applies(wt.shape, *args, True)
    y = plain.conv2d_im2col(x, wt, None, *args)
    assert _scaled_error(M.conv2d_mec(x, wt, None, *args), y) < 1e-12
    dy = rng.standard_normal(y.shape)
    _, dw, db = plain.conv2d_im2col_backward(dy, x, wt, *args)
    got_dx, got_dw, got_db = M.conv2d_mec_backward(dy, x, wt, *args, input_grad=False)
    assert got_dx is None and _scaled_error(got_dw, dw) < 1e-12 and _scaled_error(got_db, db) < 1e-12
    with pytest.raises(ValueError, match="padding <= dilation \\* \\(kernel - 1\\), got .*padding \\(3, 2\\)"):
        M.conv2d_mec_backward(dy, x, wt, *args)


def test_float32_differs_from_the_plain_math_by_rounding_only():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    wt = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    x64, w64 = x.astype(np.float64), wt.astype(np.float64)
    y = plain.conv2d_im2col(x64, w64, None, ONE, ONE, ONE, 1)
    got = M.conv2d_mec(x, wt, None, ONE, ONE, ONE, 1)
    assert got.dtype == np.float32 and _scaled_error(got, y) < 1e-5
    dy = rng.standard_normal(y.shape).astype(np.float32)
    expected = plain.conv2d_im2col_backward(dy.astype(np.float64), x64, w64, ONE, ONE, ONE, 1)
    for g, e in zip(M.conv2d_mec_backward(dy, x, wt, ONE, ONE, ONE, 1), expected, strict=True):
        assert g.dtype == np.float32 and _scaled_error(g, e) < 1e-5


@pytest.mark.parametrize("stride, groups", [((2, 2), 1), ((1, 2), 1), (ONE, 2)])
def test_it_refuses_what_it_does_not_compute(stride, groups):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((4, 2 // groups, 3, 3))
    assert not M.mec_applies(w.shape, stride, groups) and M.mec_applies(w.shape, ONE, 1)
    with pytest.raises(ValueError, match="expected stride \\(1, 1\\) and groups 1, got stride"):
        M.conv2d_mec(x, w, None, stride, ONE, ONE, groups)
    with pytest.raises(ValueError, match="expected stride \\(1, 1\\), groups 1"):
        M.conv2d_mec_backward(np.zeros((1, 4, 5, 5)), x, w, stride, ONE, ONE, groups)


def test_the_planner_offers_it_at_stride_one_and_it_computes_the_plain_math():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    args = (ONE, ONE, ONE, 1)
    forward, backward = K.forward_candidates(x, w, b, *args), K.backward_candidates(x[:, :1].repeat(5, 1), x, w,
                                                                                    *args, True)
    names = [name for name in forward if name.startswith("mec ")]
    assert names and [name for name in backward if name.startswith("mec ")]
    y = plain.conv2d_im2col(x, w, b, *args)
    assert all(_scaled_error(forward[name](), y) < 1e-12 for name in names)
    dy = x[:, :1].repeat(5, 1)
    expected = plain.conv2d_im2col_backward(dy, x, w, *args)
    for name in backward:
        if name.startswith("mec "):
            assert all(_scaled_error(g, e) < 1e-12 for g, e in zip(backward[name](), expected, strict=True))
    assert not any(name.startswith("mec ") for name in K.forward_candidates(x, w, b, (2, 2), ONE, ONE, 1))
    depthwise = rng.standard_normal((3, 1, 3, 3))
    assert not any(name.startswith("mec ") for name in K.forward_candidates(x, depthwise, None, ONE, ONE, ONE, 3))
