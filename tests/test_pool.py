"""Pooling: gradient checks, fast/general paths against the direct loops, hand examples, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pool_loops import max_pool2d_backward_loop, pool2d_loop, spread_loop

from minicnn import core
from minicnn import functional as F
from minicnn import layers as L
from minicnn.functional import pool as P
from minicnn.gradcheck import gradcheck
from minicnn.gradcheck_cases import CASES, run_case

POOL_CASES = [n for n in CASES if n.startswith(("MaxPool", "AvgPool", "SumPool", "GlobalAvgPool", "SoftPool",
                                                  "MixedPool", "StochasticPool", "Subsample"))]


@pytest.mark.parametrize("name", POOL_CASES)
def test_gradcheck_registered_cases(name):
    report = run_case(name, raise_on_fail=True)
    assert report.max_rel_error < 1e-6


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape).astype(np.float64) / n + rng.uniform(0, 1e-4, shape)


@st.composite
def pool_config(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw)


@settings(max_examples=40, deadline=None)
@given(cfg=pool_config(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_max_pool_matches_direct_loop(cfg, seed, ties):
    shape, k, s, p = cfg
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    y, argmax = F.max_pool2d(x, k, s, p)
    y_ref, argmax_ref = pool2d_loop(x, k, s, p, "max")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)  # same first-maximum rule, ties included
    dy = rng.standard_normal(y.shape)
    dx_ref = max_pool2d_backward_loop(dy, argmax_ref, shape, k, s, p)
    np.testing.assert_allclose(F.max_pool2d_backward(dy, argmax, shape, k, s, p), dx_ref, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(cfg=pool_config(), seed=st.integers(0, 2**16))
def test_avg_sum_soft_match_direct_loop(cfg, seed):
    shape, k, s, p = cfg
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p), pool2d_loop(x, k, s, p, "avg")[0], atol=1e-12)
    np.testing.assert_allclose(F.sum_pool2d(x, k, s, p), pool2d_loop(x, k, s, p, "sum")[0], atol=1e-12)
    dy = np.random.default_rng(seed + 1).standard_normal(F.sum_pool2d(x, k, s, p).shape)
    np.testing.assert_allclose(F.sum_pool2d_backward(dy, shape, k, s, p), spread_loop(dy, shape, k, s, p), atol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d_backward(dy, shape, k, s, p),
                               spread_loop(dy, shape, k, s, p) / (k[0] * k[1]), atol=1e-12)
    if shape[2] >= k[0] and shape[3] >= k[1]:  # SoftPool has no padding
        y_soft, _ = F.soft_pool2d(x, k, s)
        np.testing.assert_allclose(y_soft, pool2d_loop(x, k, s, 0, "soft")[0], atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(cfg=pool_config(), seed=st.integers(0, 2**16), alpha=st.floats(0, 1))
def test_mixed_stochastic_eval_subsample_match_direct_loops(cfg, seed, alpha):
    shape, k, s, p = cfg
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, shape) * (rng.random(shape) < 0.7)  # non-negative, with zeros
    y_mixed = F.mixed_pool2d(x, alpha, k, s, p)[0]
    ref = alpha * pool2d_loop(x, k, s, p, "max")[0] + (1 - alpha) * pool2d_loop(x, k, s, p, "avg")[0]
    np.testing.assert_allclose(y_mixed, ref, atol=1e-12)
    sub = F.subsample2d(x, s)
    for oh in range(sub.shape[2]):  # direct loop: keep x[oh*SH, ow*SW]
        for ow in range(sub.shape[3]):
            np.testing.assert_array_equal(sub[:, :, oh, ow], x[:, :, oh * s[0], ow * s[1]])
    if shape[2] < k[0] or shape[3] < k[1]:  # stochastic pooling has no padding
        return
    y_eval, _ = F.stochastic_pool2d_eval(x, k, s)
    g = P.PoolGeometry(shape, k, s)
    for oh in range(g.OH):  # direct loop: sum_k p_k x_k with p_k = x_k / sum(x)
        for ow in range(g.OW):
            win = x[:, :, oh * s[0]:oh * s[0] + k[0], ow * s[1]:ow * s[1] + k[1]].reshape(shape[0], shape[1], -1)
            total = win.sum(-1)
            want = np.where(total > 0, (win**2).sum(-1) / np.where(total > 0, total, 1), 0)
            np.testing.assert_allclose(y_eval[:, :, oh, ow], want, atol=1e-12)
    y_train, index = F.stochastic_pool2d(x, k, s, np.random.default_rng(seed))
    assert np.all(y_train <= F.max_pool2d(x, k, s)[0]) and np.all((y_train > 0) | (y_eval == 0))


def test_max_pool_hand_example():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y, argmax = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(argmax[0, 0], [[3, 3], [3, 3]])  # bottom-right of each window
    dx = F.max_pool2d_backward(np.ones((1, 1, 2, 2)), argmax, x.shape, 2)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]])


def test_max_pool_ties_go_to_first_maximum():
    x = np.array([[[[2.0, 2.0], [2.0, 2.0]]]])
    layer = L.MaxPool2D(2)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.array([[[[1.0]]]]))[0, 0], [[1, 0], [0, 0]])
    x = np.array([[[[0.0, 3.0], [1.0, 3.0]]]])  # tie between (0, 1) and (1, 1): the first in row-major order wins
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.array([[[[1.0]]]]))[0, 0], [[0, 1], [0, 0]])


def test_max_pool_overlapping_windows_accumulate():
    x = np.array([[[[0.0, 5.0, 1.0, 4.0]]]])  # windows (1, 2) with stride 1: [0,5] [5,1] [1,4]
    layer = L.MaxPool2D((1, 2), stride=1)
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[5, 5, 4]])
    dx = layer.backward(np.array([[[[1.0, 10.0, 100.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[0, 11, 0, 100]])


def test_max_pool_pads_with_minus_infinity():
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: zero padding would win
    y, _ = F.max_pool2d(x, 3, stride=1, padding=1)
    assert y.max() < 0
    np.testing.assert_array_equal(y[0, 0], [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])


def test_avg_pool_counts_padding_like_pytorch():
    x = np.ones((1, 1, 2, 2))
    y = F.avg_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_allclose(y[0, 0], np.full((2, 2), 4 / 9))
    np.testing.assert_allclose(F.sum_pool2d(x, 3, stride=1, padding=1)[0, 0], np.full((2, 2), 4.0))


def test_global_avg_pool():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(L.GlobalAvgPool2D()(x), x.mean(axis=(2, 3)))
    assert L.GlobalAvgPool2D(keepdims=True)(x).shape == (2, 3, 1, 1)
    gradcheck(L.GlobalAvgPool2D(keepdims=True), x)


def test_softpool_is_stable_and_between_avg_and_max():
    x = np.array([[[[1000.0, 0.0], [0.0, 0.0]]]])
    y, _ = F.soft_pool2d(x, 2)
    assert np.isfinite(y).all() and y[0, 0, 0, 0] == pytest.approx(1000.0)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6))
    y, _ = F.soft_pool2d(x, 2)
    assert np.all(y <= F.max_pool2d(x, 2)[0] + 1e-12) and np.all(y >= F.avg_pool2d(x, 2) - 1e-12)
    np.testing.assert_allclose(F.soft_pool2d(np.full((1, 1, 2, 2), 0.7), 2)[0], [[[[0.7]]]])


def test_mixed_pool_limits_and_learnable_alpha():
    x = _distinct(np.random.default_rng(2), (2, 2, 6, 6))
    np.testing.assert_allclose(L.MixedPool2D(2, alpha=1.0)(x), F.max_pool2d(x, 2)[0])
    np.testing.assert_allclose(L.MixedPool2D(2, alpha=0.0)(x), F.avg_pool2d(x, 2))
    layer = L.MixedPool2D(3, stride=2, padding=1, alpha=0.7, learnable=True).to(np.float64)
    assert [n for n, _ in layer.named_parameters()] == ["alpha"]
    gradcheck(layer, x)
    assert L.MixedPool2D(2).parameters() == []


def test_stochastic_pool_is_seeded_and_samples_by_activation():
    x = np.tile(np.array([[1.0, 3.0], [0.0, 0.0]]), (1, 1, 200, 200))  # every 2x2 window: [1, 3, 0, 0]
    layer = L.StochasticPool2D(2)
    core.manual_seed(5)
    a = layer(x)
    core.manual_seed(5)
    np.testing.assert_array_equal(layer(x), a)
    assert set(np.unique(a)) <= {1.0, 3.0}
    assert abs(np.mean(a == 3.0) - 0.75) < 0.01  # 40,000 draws, p = 3 / (1 + 3)
    layer.eval()
    np.testing.assert_allclose(layer(x), np.full((1, 1, 200, 200), (1 + 9) / 4))  # sum x^2 / sum x
    np.testing.assert_array_equal(L.StochasticPool2D(2).eval()(np.zeros((1, 1, 2, 2))), [[[[0.0]]]])
    with pytest.raises(ValueError, match="StochasticPool2D.*non-negative"):
        L.StochasticPool2D(2)(-np.ones((1, 1, 2, 2)))


def test_stochastic_pool_backward_routes_to_sample():
    x = np.random.default_rng(4).uniform(0.1, 1, (2, 3, 6, 6))
    layer = L.StochasticPool2D(2)
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(x[dx == 1].sum(), y.sum())  # the routed positions hold the outputs
    assert np.count_nonzero(dx) == y.size


def test_subsample():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
    layer = L.Subsample2D(3)
    np.testing.assert_array_equal(layer(x), x[:, :, ::3, ::3])
    assert layer(x).shape == (2, 3, 3, 3)
    dx = layer.backward(np.ones((2, 3, 3, 3)))
    assert dx.sum() == 2 * 3 * 9 and np.all(dx[:, :, ::3, ::3] == 1)


def test_jitter_invariance_hand_example_and_random_images():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 1.0  # moves to (0, 1): still inside the same 2x2 window, but no longer sampled
    result = F.jitter_invariance(x, 2, shift=(0, 1))
    assert result["max_pool"] == 1.0 and result["subsample"] == 0.0
    rng = np.random.default_rng(0)
    imgs = np.where(rng.random((8, 1, 16, 16)) < 0.2, rng.random((8, 1, 16, 16)), 0.0)
    r = F.jitter_invariance(imgs, 2)
    assert r["max_pool"] > r["subsample"]
    two = F.jitter_invariance(imgs, 2, levels=2)
    assert two["max_pool"] >= r["max_pool"] - 0.05  # stacking keeps (or adds) invariance


@pytest.mark.parametrize("layer", [L.MaxPool2D(2), L.AvgPool2D(3, 2, 1), L.SumPool2D(2), L.SoftPool2D(2),
                                   L.MixedPool2D(2), L.StochasticPool2D(2), L.Subsample2D(2), L.GlobalAvgPool2D()])
def test_float32_in_float32_out(layer):
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 6, 6)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_public_attributes_are_pairs():
    m = L.MaxPool2D(3, stride=2, padding=1)
    assert (m.kernel_size, m.stride, m.padding) == ((3, 3), (2, 2), (1, 1))
    assert L.AvgPool2D((2, 3)).stride == (2, 3)
    assert L.Subsample2D(2).kernel_size == (1, 1)


@pytest.mark.parametrize("make,x,match", [
    (lambda: L.MaxPool2D(5), np.zeros((1, 1, 4, 4)), r"MaxPool2D: expected input \(N, C, H, W\).*got shape \(1, 1, 4, 4\)"),
    (lambda: L.AvgPool2D(4, padding=1), np.zeros((1, 1, 1, 5)), r"AvgPool2D:.*got shape \(1, 1, 1, 5\)"),
    (lambda: L.MaxPool2D(2), np.zeros((4, 4)), r"MaxPool2D: expected a 4-D input.*got shape \(4, 4\)"),
    (lambda: L.SoftPool2D(2), np.zeros((1, 2, 4)), r"SoftPool2D: expected a 4-D input"),
    (lambda: L.Subsample2D(2), np.zeros((2, 3)), r"Subsample2D: expected a 4-D input"),
    (lambda: L.GlobalAvgPool2D(), np.zeros((2, 3)), r"GlobalAvgPool2D: expected a 4-D input"),
])
def test_bad_input(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="MaxPool2D: expected 0 <= padding"):
        L.MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2D: expected stride >= 1"):
        L.AvgPool2D(2, stride=0)
    with pytest.raises(ValueError, match="MaxPool2D: expected kernel_size"):
        L.MaxPool2D("2")
