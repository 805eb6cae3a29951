"""Slicing (space-to-depth / depth-to-space), Haar DWT and the SliceSamp / SliceUpsamp blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L
from minicnn.gradcheck import gradcheck
from minicnn.gradcheck_cases import run_case


@pytest.mark.parametrize("name", ["SliceDownsample", "SliceUpsample", "HaarDownsample", "HaarUpsample",
                                  "SliceSamp", "SliceUpsamp"])
def test_gradcheck_registered_cases(name):
    assert run_case(name, raise_on_fail=True).max_rel_error < 1e-6


def test_space_to_depth_pixel_unshuffle_order_hand_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = F.space_to_depth(x, 2)
    assert y.shape == (1, 4, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[0, 2], [8, 10]])  # block offset (0, 0): every other value
    np.testing.assert_array_equal(y[0, 1], [[1, 3], [9, 11]])  # offset (0, 1)
    np.testing.assert_array_equal(y[0, 2], [[4, 6], [12, 14]])  # offset (1, 0)
    np.testing.assert_array_equal(y[0, 3], [[5, 7], [13, 15]])  # offset (1, 1)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), r=st.integers(1, 3), oh=st.integers(1, 4), ow=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_slicing_matches_index_formula_and_round_trips_exactly(n, c, r, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((n, c, oh * r, ow * r))
    y = F.space_to_depth(x, r)
    ref = np.empty((n, c * r * r, oh, ow))
    for ci in range(c):  # direct loop over the documented formula
        for i in range(r):
            for j in range(r):
                ref[:, ci * r * r + i * r + j] = x[:, ci, i::r, j::r]
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(F.depth_to_space(y, r), x)  # exact, bit for bit
    layer_down, layer_up = L.SliceDownsample(r), L.SliceUpsample(r)
    np.testing.assert_array_equal(layer_up(layer_down(x)), x)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    np.testing.assert_array_equal(layer_down.backward(dy), F.depth_to_space(dy, r))  # backward = the inverse


def test_haar_hand_example():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # a, b, c, d
    y = F.haar_downsample(x)
    np.testing.assert_array_equal(y[0, :, 0, 0], [(1 + 2 + 3 + 4) / 2, (1 - 2 + 3 - 4) / 2,
                                                  (1 + 2 - 3 - 4) / 2, (1 - 2 - 3 + 4) / 2])
    np.testing.assert_array_equal(F.haar_upsample(y), x)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), oh=st.integers(1, 4), ow=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_haar_matches_per_block_loop(n, c, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((n, c, 2 * oh, 2 * ow))
    y = F.haar_downsample(x)
    for i in range(oh):  # direct loop over 2x2 blocks [[a, b], [c, d]]
        for j in range(ow):
            a, b = x[:, :, 2 * i, 2 * j], x[:, :, 2 * i, 2 * j + 1]
            cc, d = x[:, :, 2 * i + 1, 2 * j], x[:, :, 2 * i + 1, 2 * j + 1]
            for band, value in enumerate([a + b + cc + d, a - b + cc - d, a + b - cc - d, a - b - cc + d]):
                np.testing.assert_allclose(y[:, band * c:(band + 1) * c, i, j], value / 2, atol=1e-14)
    np.testing.assert_allclose(F.haar_upsample(y), x, atol=1e-14)


def test_haar_is_orthonormal_and_exact_on_images():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 8))
    y = F.haar_downsample(x)
    assert y.shape == (2, 12, 3, 4)
    np.testing.assert_allclose(np.sum(y**2), np.sum(x**2))  # energy preserved
    np.testing.assert_allclose(F.haar_upsample(y), x, atol=1e-15)
    np.testing.assert_allclose(y[:, :3], 2 * F.avg_pool2d(x, 2), atol=1e-15)  # LL = 2 x (2x2 average)
    images = (rng.integers(0, 256, (4, 3, 32, 32)) / 255).astype(np.float32).astype(np.float64)
    assert np.max(np.abs(F.haar_upsample(F.haar_downsample(images)) - images)) == 0.0
    layer = L.HaarDownsample()
    layer(x)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(dy), F.haar_upsample(dy), atol=1e-15)  # orthogonal: adjoint = inverse


def test_slicesamp_shapes_modes_and_attributes():
    block = L.SliceSamp(3, 16)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = block(x)
    assert y.shape == (2, 16, 4, 4)
    assert block.backward(np.ones_like(y)).shape == x.shape
    assert (block.in_channels, block.out_channels, block.factor) == (3, 16, 2)
    assert [type(m).__name__ for m in block] == ["SliceDownsample", "DepthwiseConv2D", "BatchNorm2D", "GELU",
                                                 "PointwiseConv2D", "BatchNorm2D", "GELU"]
    block.eval()
    assert block(x).shape == (2, 16, 4, 4)
    up = L.SliceUpsamp(16, 5, kernel_size=5)
    assert up(y.astype(np.float32)).shape == (2, 5, 8, 8)


def test_patch_merging_is_slicing_then_pointwise_conv():
    """Swin-style patch merging (concatenate each 2x2 patch, then a linear map) equals a 2x2 stride-2 conv."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 4))
    merge = L.Sequential(L.SliceDownsample(2), L.PointwiseConv2D(12, 5)).to(np.float64)
    w = merge[1].weight.data  # (5, 12, 1, 1), input channel c*4 + i*2 + j
    conv = L.Conv2D(3, 5, 2, stride=2).to(np.float64)
    conv.weight.data[...] = w.reshape(5, 3, 2, 2)
    conv.bias.data[...] = merge[1].bias.data
    np.testing.assert_allclose(merge(x), conv(x), atol=1e-12)


@pytest.mark.parametrize("make,x,match", [
    (lambda: L.SliceDownsample(2), np.zeros((1, 1, 5, 4)), r"SliceDownsample: .*divisible by factor 2, got shape \(1, 1, 5, 4\)"),
    (lambda: L.SliceUpsample(2), np.zeros((1, 3, 2, 2)), r"SliceUpsample: .*channels divisible by 4, got shape \(1, 3, 2, 2\)"),
    (lambda: L.HaarDownsample(), np.zeros((1, 1, 4, 3)), r"HaarDownsample: .*got shape \(1, 1, 4, 3\)"),
    (lambda: L.HaarUpsample(), np.zeros((1, 2, 4, 4)), r"HaarUpsample: .*got shape \(1, 2, 4, 4\)"),
    (lambda: L.SliceDownsample(2), np.zeros((4, 4)), r"SliceDownsample: expected a 4-D input"),
    (lambda: L.SliceSamp(3, 4), np.zeros((1, 3, 5, 6)), r"SliceDownsample: .*got shape \(1, 3, 5, 6\)"),
])
def test_bad_input(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="SliceDownsample: expected factor"):
        L.SliceDownsample(0)
    with pytest.raises(ValueError, match="SliceUpsamp: expected in_channels divisible"):
        L.SliceUpsamp(6, 2)
    with pytest.raises(ValueError, match="odd kernel_size"):
        L.SliceSamp(2, 2, kernel_size=2)


def test_haar_layers_gradcheck_larger_input():
    gradcheck(L.HaarDownsample(), np.random.default_rng(2).standard_normal((1, 3, 4, 6)))
