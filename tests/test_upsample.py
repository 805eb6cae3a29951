"""Upsampling: nearest / bilinear / bicubic against per-pixel direct loops, adjointness, gradient checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L
from minicnn.gradcheck_cases import run_case


def _direct_upsample(x: np.ndarray, sh: int, sw: int, mode: str) -> np.ndarray:
    """Reference: one output pixel at a time, PyTorch's align_corners=False formulas written out."""
    N, C, H, W = x.shape

    def taps(o: int, size: int, s: int):  # [(input index, weight)] for output index o
        src = (o + 0.5) / s - 0.5
        if mode == "nearest":
            return [(min(o // s, size - 1), 1.0)]
        if mode == "bilinear":
            src = max(src, 0.0)
            i0 = int(math.floor(src))
            t = src - i0
            return [(i0, 1 - t), (min(i0 + 1, size - 1), t)]
        a = -0.75
        i0 = int(math.floor(src))
        t = src - i0
        out = []
        for m in range(-1, 3):
            d = abs(t - m)
            w = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
            out.append((min(max(i0 + m, 0), size - 1), w))
        return out

    y = np.zeros((N, C, H * sh, W * sw))
    for oh in range(H * sh):
        for ow in range(W * sw):
            for ih, wh in taps(oh, H, sh):
                for iw, ww in taps(ow, W, sw):
                    y[:, :, oh, ow] += wh * ww * x[:, :, ih, iw]
    return y


@pytest.mark.parametrize("name", ["Upsample_nearest", "Upsample_bilinear", "Upsample_bicubic"])
def test_gradcheck_registered_cases(name):
    assert run_case(name, raise_on_fail=True).max_rel_error < 1e-6


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(["nearest", "bilinear", "bicubic"]), h=st.integers(1, 5), w=st.integers(1, 5),
       sh=st.integers(1, 4), sw=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_upsample_matches_direct_loop_and_backward_is_adjoint(mode, h, w, sh, sw, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, h, w))
    y = F.upsample2d(x, (sh, sw), mode)
    np.testing.assert_allclose(y, _direct_upsample(x, sh, sw, mode), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = F.upsample2d_backward(dy, x.shape, (sh, sw), mode)
    assert np.isclose(np.sum(y * dy), np.sum(x * dx))  # <A x, dy> = <x, A^T dy>


def test_hand_examples():
    x = np.array([[[[0.0, 1.0]]]])
    np.testing.assert_allclose(F.upsample2d(x, (1, 2), "bilinear")[0, 0, 0], [0, 0.25, 0.75, 1])
    np.testing.assert_array_equal(F.upsample2d(x, 2, "nearest")[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_array_equal(F.upsample2d(x, 2, "nearest"), np.repeat(np.repeat(x, 2, 2), 2, 3))
    # bicubic, 1-D [0, 1] upsampled by 2 (A = -0.75, border replicate). Output 0: src = -0.25, i0 = -1,
    # t = 0.75; only tap i0 + 2 = 1 reads x = 1, with weight W(1.25) = -0.10546875. Same values as PyTorch.
    np.testing.assert_allclose(F.upsample2d(x, (1, 2), "bicubic")[0, 0, 0],
                               [-0.10546875, 0.2265625, 0.7734375, 1.10546875])


def test_interpolation_rows_sum_to_one():
    for mode in ("nearest", "bilinear", "bicubic"):
        np.testing.assert_allclose(F.interpolation_matrix(7, 3, mode).sum(axis=1), 1.0)


def test_layer_dtype_and_errors():
    layer = L.Upsample(2, mode="bilinear")
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32 and y.shape == (1, 2, 6, 6)
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.scale_factor == (2, 2)
    with pytest.raises(ValueError, match="Upsample: expected mode"):
        L.Upsample(2, mode="area")
    with pytest.raises(ValueError, match=r"Upsample: expected a 4-D input.*got shape \(3, 3\)"):
        layer(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Upsample: expected scale_factor >= 1"):
        L.Upsample(0)
