"""The one-axis lowering (MEC, `minicnn.kernels.conv_mec`) against the plain im2col math: the forward on random
shapes (kernels 1x1 to 5x4, any padding, dilation 1 and 2, one to several blocks of images, one or two parts),
float64 to 1e-12 and float32 to float32 rounding; it refuses what it does not compute; the planner offers it
at stride 1 (not depthwise) and what it offers computes the plain numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import ONE, float32_case
from kernel_checks import scaled_error as _scaled_error

from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import conv_mec as M


@st.composite
def cases(draw):
    n, c, t = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    extent = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]  # E per axis
    padding = (draw(st.integers(0, extent[0] + 1)), draw(st.integers(0, extent[1] + 1)))
    h = draw(st.integers(max(1, extent[0] - 2 * padding[0]), 10))
    w = draw(st.integers(max(1, extent[1] - 2 * padding[1]), 10))
    block_values = draw(st.sampled_from([1, 500, M.BLOCK_VALUES]))  # one image per block ... all at once
    return (n, c, h, w), (t, c, *kernel), padding, dilation, block_values, draw(st.integers(1, 2))


@settings(max_examples=80, deadline=None)
@given(cases(), st.integers(0, 2**31 - 1), st.booleans())
def test_the_forward_is_the_plain_math_in_float64(case, seed, bias):
    x_shape, w_shape, padding, dilation, block_values, parts = case
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    x_before = x.copy()
    y = plain.conv2d_im2col(x, wt, b, ONE, padding, dilation, 1)
    got = M.conv2d_mec(x, wt, b, ONE, padding, dilation, 1, block_values=block_values, parts=parts)
    assert got.shape == y.shape and _scaled_error(got, y) < 1e-12
    assert np.array_equal(x, x_before)


def test_float32_differs_from_the_plain_math_by_rounding_only():
    x, wt, y, _ = float32_case((8, 16, 16, 16), (32, 16, 3, 3))
    got = M.conv2d_mec(x, wt, None, ONE, ONE, ONE, 1)
    assert got.dtype == np.float32 and _scaled_error(got, y) < 1e-5


@pytest.mark.parametrize("stride, groups", [((2, 2), 1), ((1, 2), 1), (ONE, 2)])
def test_it_refuses_what_it_does_not_compute(stride, groups):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((4, 2 // groups, 3, 3))
    assert not M.mec_applies(w.shape, stride, groups) and M.mec_applies(w.shape, ONE, 1)
    with pytest.raises(ValueError, match="expected stride \\(1, 1\\) and groups 1, got stride"):
        M.conv2d_mec(x, w, None, stride, ONE, ONE, groups)


def test_images_per_block_follows_the_block_size():
    x_shape, w_shape = (64, 32, 32, 32), (32, 32, 3, 3)
    small, large = (M.images_per_block(x_shape, w_shape, ONE, ONE, v) for v in (2**18, 2**21))
    assert 1 <= small < large <= 64
    assert M.images_per_block(x_shape, w_shape, ONE, ONE, 1) == 1


def test_the_planner_offers_it_at_stride_one_and_it_computes_the_plain_math():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    args = (ONE, ONE, ONE, 1)
    forward = K.forward_candidates(x, w, b, *args)
    assert "mec" in forward
    assert _scaled_error(forward["mec"](), plain.conv2d_im2col(x, w, b, *args)) < 1e-12
    assert "mec" not in K.forward_candidates(x, w, b, (2, 2), ONE, ONE, 1)
    assert "mec" not in K.forward_candidates(x, rng.standard_normal((3, 1, 3, 3)), None, ONE, ONE, ONE, 3)
