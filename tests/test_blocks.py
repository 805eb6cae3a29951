"""Blocks of the lecture's architectures: gradient checks, forward against plain NumPy, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import layers as L
from minicnn.gradcheck_cases import run_case

BLOCK_CASES = ["Residual", "Residual_projection", "Concat", "ChannelShuffle", "ChannelSplit",
               "DepthwiseSeparable", "InvertedResidual", "InvertedResidual_stride2",
               "ShuffleV2Unit", "ShuffleV2Unit_stride2"]


@pytest.mark.parametrize("name", BLOCK_CASES)
def test_gradcheck(name):
    report = run_case(name)
    assert report.ok, report.table()


def test_residual_is_body_plus_input(rng):
    body = L.Sequential(L.Conv2D(3, 3, 3, padding=1), L.Tanh()).to(np.float64)
    x = rng.standard_normal((2, 3, 5, 5))
    expected = body(x) + x
    np.testing.assert_allclose(L.Residual(body)(x), expected, rtol=1e-12)


def test_residual_projection_shortcut(rng):
    body = L.Conv2D(2, 4, 3, stride=2, padding=1).to(np.float64)
    short = L.Conv2D(2, 4, 1, stride=2).to(np.float64)
    x = rng.standard_normal((2, 2, 6, 6))
    np.testing.assert_allclose(L.Residual(body, short)(x), body(x) + short(x), rtol=1e-12)


def test_residual_shape_mismatch_is_an_error(rng):
    block = L.Residual(L.Conv2D(2, 3, 3, padding=1))
    with pytest.raises(ValueError, match=r"Residual: expected body output \(2, 2, 4, 4\).*got \(2, 3, 4, 4\)"):
        block(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))


def test_concat_stacks_branches_on_channels(rng):
    a, b = L.PointwiseConv2D(2, 3).to(np.float64), L.Conv2D(2, 1, 3, padding=1).to(np.float64)
    x = rng.standard_normal((2, 2, 4, 4))
    y = L.Concat(a, b)(x)
    assert y.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(y[:, :3], a(x))
    np.testing.assert_array_equal(y[:, 3:], b(x))


def test_concat_backward_adds_branch_gradients(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    block = L.Concat(L.Flatten(), L.Flatten())  # two identical branches: dx = dy_1 + dy_2
    y = block(x)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(block.backward(dy), (dy[:, :12] + dy[:, 12:]).reshape(x.shape))


def test_concat_spatial_mismatch_is_an_error(rng):
    block = L.Concat(L.Conv2D(2, 2, 3), L.Conv2D(2, 2, 1))
    with pytest.raises(ValueError, match="Concat: expected branch outputs that differ only in channels"):
        block(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(groups=st.integers(1, 4), per=st.integers(1, 4), n=st.integers(1, 2), h=st.integers(1, 3))
def test_channel_shuffle_matches_index_formula(groups, per, n, h):
    x = np.random.default_rng(groups * 10 + per).standard_normal((n, groups * per, h, 2))
    layer = L.ChannelShuffle(groups)
    y = layer(x)
    for k in range(groups):  # output channel i * groups + k holds input channel k * per + i
        for i in range(per):
            np.testing.assert_array_equal(y[:, i * groups + k], x[:, k * per + i])
    np.testing.assert_array_equal(layer.backward(y), x)  # adjoint = inverse


def test_channel_split_halves(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    np.testing.assert_array_equal(L.ChannelSplit(0)(x), x[:, :3])
    np.testing.assert_array_equal(L.ChannelSplit(2, parts=3)(x), x[:, 4:])


@pytest.mark.parametrize("layer", [L.ChannelShuffle(2), L.ChannelSplit(0)])
def test_channels_not_divisible_is_an_error(layer, rng):
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\) with C divisible by 2, got shape \(1, 3, 2, 2\)"):
        layer(rng.standard_normal((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="expected a 4-D input"):
        layer(rng.standard_normal((4, 4)))


def test_inverted_residual_uses_shortcut_only_when_shapes_match(rng):
    assert L.InvertedResidual(8, 8, 1).use_residual
    assert not L.InvertedResidual(8, 8, 2).use_residual
    assert not L.InvertedResidual(8, 16, 1).use_residual
    block = L.InvertedResidual(4, 4, 1, expand_ratio=3).to(np.float64)
    x = rng.standard_normal((2, 4, 4, 4))
    residual = block[0]
    np.testing.assert_allclose(block(x), residual.body(x) + x, rtol=1e-12)
    types = [type(m).__name__ for m in residual.body]
    assert types == ["PointwiseConv2D", "BatchNorm2D", "ReLU6", "DepthwiseConv2D", "BatchNorm2D", "ReLU6",
                     "PointwiseConv2D", "BatchNorm2D"]  # linear bottleneck: no activation after the projection


def test_depthwise_separable_weight_count():
    block = L.DepthwiseSeparable(16, 32, stride=2)
    convs = [m for m in block if "Conv" in type(m).__name__]
    assert sum(m.weight.size for m in convs) == 3 * 3 * 16 + 16 * 32


def test_shufflenet_unit_passes_half_the_channels_untouched(rng):
    unit = L.ShuffleV2Unit(6, 6, 1).to(np.float64)
    x = rng.standard_normal((2, 6, 4, 4))
    y = unit(x)
    np.testing.assert_array_equal(y[:, 0::2], x[:, :3])  # after the shuffle the kept half sits at even channels


def test_shufflenet_unit_stride2_doubles_channels_halves_size(rng):
    y = L.ShuffleV2Unit(4, 10, 2)(rng.standard_normal((2, 4, 6, 6)).astype(np.float32))
    assert y.shape == (2, 10, 3, 3) and y.dtype == np.float32


def test_shufflenet_unit_bad_arguments():
    with pytest.raises(ValueError, match="expected an even out_channels"):
        L.ShuffleV2Unit(4, 5, 2)
    with pytest.raises(ValueError, match="stride 1 expected in_channels == out_channels"):
        L.ShuffleV2Unit(4, 8, 1)
    with pytest.raises(ValueError, match="stride 2 expected out_channels > in_channels"):
        L.ShuffleV2Unit(8, 8, 2)
