"""minicnn.kernels.pool against its plain twins in minicnn.functional.pool: hypothesis over shapes, kernel
sizes, strides, paddings and odd sizes, float32 and float64, ties, +-inf and NaN, batches larger than a
block, 1 and 2 workers; the MaxPool2D / AvgPool2D layers with the kernel switch on, off, and flipped
between forward and backward."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pool_loops import special

from minicnn import functional as F
from minicnn import layers as L
from minicnn import runtime, threads
from minicnn.gradcheck import gradcheck
from minicnn.kernels import pool as K

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


@st.composite
def pool_config(draw):
    """(shape, kernel, stride, padding): kernels 1-4, strides 1-3, padding up to half the kernel, odd sizes."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 11))
    w = draw(st.integers(max(1, kw - 2 * pw), 11))
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw)


def _same(got, want, dtype, exact):
    """exact: equal values (NaN == NaN, -0.0 == 0.0); else within the dtype's rounding."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)  # NaN == NaN
    else:
        np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@settings(max_examples=80, deadline=None)
@given(cfg=pool_config(), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]),
       hard=st.booleans())
def test_max_pool_kernel_equals_the_plain_function(cfg, seed, dtype, hard):
    """y and argmax bit for bit (ties, +-inf, NaN included); dx bit for bit when windows do not overlap,
    else within rounding (overlapping windows add in another order)."""
    shape, k, s, p = cfg
    rng = np.random.default_rng(seed)
    x = special(rng, shape, dtype) if hard else rng.standard_normal(shape).astype(dtype)
    y, argmax = K.max_pool2d(x, k, s, p)
    y_plain, argmax_plain = F.max_pool2d(x, k, s, p)
    _same(y, y_plain, dtype, exact=True)
    np.testing.assert_array_equal(argmax, argmax_plain)
    dy = special(rng, y.shape, dtype) if hard else rng.standard_normal(y.shape).astype(dtype)
    dy_before = dy.copy()
    dx_plain = F.max_pool2d_backward(dy, argmax_plain, shape, k, s, p)
    overlap = s[0] < k[0] or s[1] < k[1]
    _same(K.max_pool2d_backward(dy, argmax, shape, k, s, p), dx_plain, dtype, exact=not overlap)
    _same(K.max_pool2d_backward(dy, argmax_plain, shape, k, s, p), dx_plain, dtype, exact=not overlap)
    np.testing.assert_array_equal(dy, dy_before)  # backward never mutates dy


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 3), oh=st.integers(1, 6), ow=st.integers(1, 6),
       extra=st.sampled_from([(0, 0), (1, 0), (0, 1), (1, 1)]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_max_pool_2x2_kernel_equals_the_plain_function_on_hard_values(n, c, oh, ow, extra, seed, dtype):
    """2x2 stride 2, the contiguous-taps forward and the upsample-and-mask backward (H, W even) or the
    tiling one (odd H or W), on ties, +-0, +-inf and NaN in x and dy: bit for bit."""
    rng = np.random.default_rng(seed)
    x = special(rng, (n, c, 2 * oh + extra[0], 2 * ow + extra[1]), dtype)
    y, argmax = K.max_pool2d(x, 2)
    y_plain, argmax_plain = F.max_pool2d(x, 2)
    _same(y, y_plain, dtype, exact=True)
    np.testing.assert_array_equal(argmax, argmax_plain)
    dy = special(rng, y.shape, dtype)
    _same(K.max_pool2d_backward(dy, argmax, x.shape, 2), F.max_pool2d_backward(dy, argmax_plain, x.shape, 2),
          dtype, exact=True)


@settings(max_examples=60, deadline=None)
@given(cfg=pool_config(), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_avg_pool_backward_kernel_equals_the_plain_function(cfg, seed, dtype):
    shape, k, s, p = cfg
    rng = np.random.default_rng(seed)
    y = F.avg_pool2d(rng.standard_normal(shape).astype(dtype), k, s, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got, want = K.avg_pool2d_backward(dy, shape, k, s, p), F.avg_pool2d_backward(dy, shape, k, s, p)
    _same(got, want, dtype, exact=K._tiles(K._geometry(shape, k, s, p)))  # tiling: each value assigned once


@pytest.mark.parametrize("shape,k", [((3, 4, 8, 8), 2), ((2, 3, 7, 9), 2), ((2, 2, 9, 10), 3), ((1, 2, 6, 6), (2, 3))])
def test_the_tiling_paths_are_taken_and_agree(shape, k):
    """Windows that tile the input (trailing rows/columns dropped included): the assigning backward."""
    assert K._tiles(K._geometry(shape, k))
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    y, argmax = K.max_pool2d(x, k)
    dy = rng.standard_normal(y.shape)
    want = F.max_pool2d_backward(dy, argmax, shape, k)
    np.testing.assert_array_equal(K.max_pool2d_backward(dy, argmax, shape, k), want)
    np.testing.assert_array_equal(K.avg_pool2d_backward(dy, shape, k), F.avg_pool2d_backward(dy, shape, k))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_upsample2_copies_each_value_to_a_2x2_block(dtype):
    a = (np.random.default_rng(8).standard_normal((2, 3, 4, 5)) * 50).astype(dtype)
    got = K._upsample2(a)
    assert got.dtype == a.dtype
    np.testing.assert_array_equal(got, np.repeat(np.repeat(a, 2, axis=3), 2, axis=2))


def test_geometry_memo_still_checks_every_call():
    for _ in range(2):  # exceptions are not cached: the second call raises too
        with pytest.raises(ValueError, match="max_pool2d: expected input"):
            K.max_pool2d(np.zeros((1, 1, 2, 2)), 3)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    np.testing.assert_array_equal(K.max_pool2d(x, [2, 2])[0], K.max_pool2d(x, (2, 2))[0])  # unhashable list
    assert K._geometry((1, 2, 4, 4), 2) is K._geometry((1, 2, 4, 4), 2)
    with pytest.raises(ValueError, match="max_pool2d: expected a 4-D input"):
        K.max_pool2d(np.zeros((2, 2)), 2)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,shape", [(2, None, 0, (9, 3, 8, 6)), (2, None, 0, (7, 2, 5, 7)),
                                         (3, 2, 1, (9, 2, 7, 7)), (2, 1, 0, (6, 3, 5, 6))])
def test_blocks_and_workers_give_the_plain_bits(monkeypatch, workers, dtype, k, s, p, shape):
    """A batch of many blocks (one image each), split over `workers` parts: y and argmax equal to the plain
    function's (and bit for bit those of the kernel in one block), and so is the backward when windows
    do not overlap. (-0.0 == 0.0 here: where a window holds both, max may pick either, as np.max does.)"""
    rng = np.random.default_rng(11)
    x = special(rng, shape, dtype)
    y_plain, a_plain = F.max_pool2d(x, k, s, p)
    y_one, _ = K.max_pool2d(x, k, s, p)
    dy = special(rng, y_plain.shape, dtype)
    monkeypatch.setenv("MINICNN_WORKERS", str(workers))
    monkeypatch.setattr(runtime, "_tuning", False)  # the default rule's split (the planned ones: below)
    monkeypatch.setattr(threads, "SPLIT_MIN_VALUES", 0)
    monkeypatch.setattr(K, "BLOCK_VALUES", 1)
    calls = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    y, a = K.max_pool2d(x, k, s, p)
    assert calls == [workers]
    assert y.dtype == x.dtype and y.tobytes() == y_one.tobytes()
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(a, a_plain)
    got, want = K.max_pool2d_backward(dy, a, shape, k, s, p), F.max_pool2d_backward(dy, a_plain, shape, k, s, p)
    _same(got, want, dtype, exact=s is None)
    assert calls == [workers]  # backward runs whole (splitting it measured no faster)


def test_small_pools_are_not_split(monkeypatch):
    """Below threads.SPLIT_MIN_VALUES input values the hand-offs would cost more than a second thread saves."""
    monkeypatch.setenv("MINICNN_WORKERS", "2")
    monkeypatch.setattr(runtime, "_tuning", False)  # the default rule (a planned split is measured first)
    calls = []
    real = threads.split_batch
    monkeypatch.setattr(threads, "split_batch", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    x = np.zeros((2, 3, 8, 8))
    assert x.size < threads.SPLIT_MIN_VALUES
    y, a = K.max_pool2d(x, 2)
    K.max_pool2d_backward(y, a, x.shape, 2)
    assert calls == [1]
    big = np.zeros((4, 2, 2, threads.SPLIT_MIN_VALUES // 16))
    K.max_pool2d(big, 2)
    assert calls == [1, 2]


@pytest.fixture
def switch():
    """runtime.use_kernels, restored to the environment's choice afterwards."""
    yield runtime.use_kernels
    runtime.use_kernels(None)


@pytest.mark.parametrize("make", [lambda: L.MaxPool2D(2), lambda: L.MaxPool2D(3, 2, 1), lambda: L.AvgPool2D(2),
                                  lambda: L.AvgPool2D(3, 2, 1)])
@pytest.mark.parametrize("forward_kernels,backward_kernels", [(True, True), (False, False), (True, False),
                                                              (False, True)])
def test_layers_with_the_switch_on_off_and_flipped(switch, make, forward_kernels, backward_kernels):
    """The layer gives the plain numbers whichever path ran forward and backward; float64 gradient check
    with the kernels off and on."""
    rng = np.random.default_rng(6)
    x = rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9) / 100.0  # no ties: gradcheck-safe
    layer = make()
    switch(False)
    y_plain = layer(x)
    dy = rng.standard_normal(y_plain.shape)
    dx_plain = layer.backward(dy)
    switch(forward_kernels)
    y = layer(x)
    switch(backward_kernels)
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_allclose(layer.backward(dy), dx_plain, rtol=1e-12, atol=1e-12)
    switch(forward_kernels)
    assert gradcheck(make(), x).max_rel_error < 1e-6




@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overlapping_windows_adding_inf_and_minus_inf_give_nan_without_a_warning(dtype):
    # 3x3 windows, stride 1, on a 4x4 map whose maximum x[0, 0, 1, 1] lies in all four windows: its
    # gradient is inf + (-inf) + 1 + 2 = NaN, the plain function's number
    x = np.zeros((1, 1, 4, 4), dtype)
    x[0, 0, 1, 1] = 5.0
    dy = np.array([[[[np.inf, -np.inf], [1.0, 2.0]]]], dtype)
    y, argmax = K.max_pool2d(x, 3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        dx = K.max_pool2d_backward(dy, argmax, x.shape, 3, 1)
    with np.errstate(invalid="ignore"):
        expected = F.pool.max_pool2d_backward(dy, F.pool.max_pool2d(x, 3, 1)[1], x.shape, 3, 1)
    np.testing.assert_array_equal(dx, expected)
    assert np.isnan(dx[0, 0, 1, 1]) and np.count_nonzero(dx[~np.isnan(dx)]) == 0



@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), k=st.integers(1, 3),
       s=st.sampled_from([None, 1, 2]), dtype=st.sampled_from([np.float32, np.float64]), workers=st.sampled_from([1, 2]))
def test_every_planned_pool_candidate_gives_the_plain_bits(n, c, h, w, k, s, dtype, workers):
    """Each of max pooling's planner candidates (block sizes, whole / split) against the plain function,
    with blocks of one image so that every candidate really runs many blocks."""
    k = min(k, h, w)
    x = special(np.random.default_rng(n * 7 + h), (n, c, h, w), dtype)
    y_plain, a_plain = F.max_pool2d(x, k, s)
    g = K._geometry(x.shape, k, s, 0)
    specs = dict(K.pool_candidates(x.shape, x.itemsize, workers))
    assert next(iter(specs)) == "default" and (workers == 1 or {"whole", "split"} & set(specs))
    for name, (values, parts) in specs.items():
        for block_values in (values, c * h * w):  # the candidate's own block, and one image per block
            y, a = K._max_pool_blocks(x, g, block_values, parts)
            assert y.dtype == x.dtype, name
            np.testing.assert_array_equal(y, y_plain, err_msg=name)
            np.testing.assert_array_equal(a, a_plain, err_msg=name)


def test_max_pool_is_planned_and_the_tune_table_names_it(tmp_path, monkeypatch):
    from minicnn.commands import tune
    from minicnn.kernels import planner as planner_module

    monkeypatch.setenv(planner_module.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.setattr(runtime, "_tuning", True)
    p = planner_module.Planner()
    monkeypatch.setattr(planner_module, "_PLANNER", p)
    x = np.random.default_rng(0).standard_normal((64, 32, 32, 32)).astype(np.float32)
    y, a = K.max_pool2d(x, 2)
    y_plain, a_plain = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(a, a_plain)
    (key,) = [k for k in p.plans if k.startswith("max_pool2d|")]
    assert len(p.plans[key].seconds) >= 2  # several candidates were measured
    (line,) = [line for line in tune.table([("pool", key)]) if line.startswith("pool")]
    assert line.split()[1] == "pool" and len(line) <= 80
