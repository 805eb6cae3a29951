"""The convolution kernels (`minicnn.kernels`) against their plain twins (`minicnn.functional`).

Every kernel runs on hypothesis-drawn shapes, strides, paddings (beyond KH - 1 too), dilations and groups
(depthwise and channel multipliers included), in float32 and float64, with blocks made small so that a
batch spans several of them, and with 1 and 2 workers; the plain whole-batch function is the reference.
The plain functions themselves are checked against scipy.signal in tests/test_conv.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.functional import conv as F
from minicnn.functional import conv_fft as plain_fft
from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import conv_fft as KF
from minicnn.kernels import conv_im2col as KI
from minicnn.kernels import conv_rows as KR
from minicnn.kernels import depthwise as KD
from minicnn.kernels.workspace import ConvWorkspace, as_workspace

TINY_BLOCK = 64  # values per block: every batch below spans several blocks


def close(got, want, dtype) -> None:
    """float64 to 1e-10, float32 to 2e-5, relative to the largest entry of want (and at least 1)."""
    assert got.dtype == want.dtype == dtype, (got.dtype, want.dtype, dtype)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


def small_blocks(mp: pytest.MonkeyPatch, workers: int) -> None:
    """Blocks of TINY_BLOCK values in every kernel, `workers` parts, every convolution split."""
    mp.setenv("MINICNN_WORKERS", str(workers))
    for module, name in ((KI, "BLOCK_VALUES"), (KI, "THREADED_BLOCK_VALUES"), (KR, "BLOCK_VALUES"),
                         (KD, "CACHE_VALUES")):
        mp.setattr(module, name, TINY_BLOCK)
    mp.setattr(KI, "SPLIT_MIN_MACS", 0)
    mp.setattr(KD, "PARALLEL_MIN_VALUES", 0)


@st.composite
def conv_case(draw, depthwise: bool = False):
    """(x, w, b, stride, padding, dilation, groups, dtype, workers): groups 1, 2, 3 or C (depthwise, with a
    channel multiplier of 1 or 2), padding up to KH + 1 (beyond E - 1: dy is cropped, not padded)."""
    kind = "depthwise" if depthwise else draw(st.sampled_from(["dense", "grouped", "depthwise", "multiplier"]))
    cg = draw(st.integers(1, 3))
    groups = {"dense": 1, "grouped": draw(st.integers(2, 3))}.get(kind, draw(st.integers(2, 4)))
    c = cg * groups if kind in ("dense", "grouped") else groups
    t = {"depthwise": c, "multiplier": 2 * c}.get(kind, groups * draw(st.integers(1, 3)))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, kh + 1)), draw(st.integers(0, kw + 1)))
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = draw(st.integers(max(1, extent[0] - 2 * padding[0]), 9))
    wd = draw(st.integers(max(1, extent[1] - 2 * padding[1]), 9))
    n = draw(st.integers(1, 7))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((t, c // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(t).astype(dtype) if draw(st.booleans()) else None
    return x, w, b, stride, padding, dilation, groups, dtype, draw(st.sampled_from([1, 2]))


def _dy(x, w, stride, padding, dilation, groups):
    y = plain.conv2d_im2col(x, w, None, stride, padding, dilation, groups)
    return np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)


@settings(max_examples=80, deadline=None)
@given(case=conv_case())
def test_im2col_kernels_match_the_plain_im2col(case):
    x, w, b, s, p, d, g, dtype, workers = case
    dy = _dy(x, w, s, p, d, g)
    dy_before = dy.copy()
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        close(KI.conv2d_im2col(x, w, b, s, p, d, g), plain.conv2d_im2col(x, w, b, s, p, d, g), dtype)
        want = plain.conv2d_im2col_backward(dy, x, w, s, p, d, g)
        for got, ref in zip(KI.conv2d_im2col_backward(dy, x, w, s, p, d, g), want, strict=True):
            close(got, ref, dtype)
        dx, dw, db = KI.conv2d_im2col_backward(dy, x, w, s, p, d, g, input_grad=False)
        assert dx is None
        close(dw, want[1], dtype)
        close(db, want[2], dtype)
        close(KI.conv2d_input_grad_flipped(dy, x.shape, w, s, p, d, g),
              plain.conv2d_input_grad_flipped(dy, x.shape, w, s, p, d, g), dtype)
    np.testing.assert_array_equal(dy, dy_before)  # backward never mutates dy


@settings(max_examples=50, deadline=None)
@given(case=conv_case(depthwise=True))
def test_depthwise_kernels_match_the_plain_im2col(case):
    """All four depthwise kernels: strided and wide forward, tap-by-tap and wide backward (stride 1 with
    padding <= E - 1 takes the wide one, everything else the taps)."""
    x, w, b, s, p, d, g, dtype, workers = case
    dy = _dy(x, w, s, p, d, g)
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        close(KD.conv2d_depthwise(x, w, b, s, p, d, g), plain.conv2d_im2col(x, w, b, s, p, d, g), dtype)
        for got, ref in zip(KD.conv2d_depthwise_backward(dy, x, w, s, p, d, g),
                            plain.conv2d_im2col_backward(dy, x, w, s, p, d, g), strict=True):
            close(got, ref, dtype)


@st.composite
def rows_case(draw):
    """Stride 1, groups 1, padding <= E - 1 (the rows backward pads dy, never crops it)."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, d[0] * (kh - 1))), draw(st.integers(0, d[1] * (kw - 1))))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 9))
    wd = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 9))
    n, c, t = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x, w = rng.standard_normal((n, c, h, wd)).astype(dtype), rng.standard_normal((t, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(t).astype(dtype) if draw(st.booleans()) else None
    return x, w, b, (1, 1), p, d, 1, dtype, draw(st.sampled_from([1, 2]))


@settings(max_examples=50, deadline=None)
@given(case=rows_case())
def test_rows_kernels_match_the_plain_im2col(case):
    x, w, b, s, p, d, g, dtype, workers = case
    dy = _dy(x, w, s, p, d, g)
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        close(KR.conv2d_rows(x, w, b, s, p, d, g), plain.conv2d_im2col(x, w, b, s, p, d, g), dtype)
        want = plain.conv2d_im2col_backward(dy, x, w, s, p, d, g)
        for got, ref in zip(KR.conv2d_rows_backward(dy, x, w, s, p, d, g), want, strict=True):
            close(got, ref, dtype)
        none, dw, _ = KR.conv2d_rows_backward(dy, x, w, s, p, d, g, input_grad=False)
        assert none is None
        close(dw, want[1], dtype)


@settings(max_examples=40, deadline=None)
@given(case=conv_case())
def test_fft_kernels_match_the_plain_fft_with_and_without_a_workspace(case):
    x, w, b, s, p, d, g, dtype, workers = case
    dy = _dy(x, w, s, p, d, g)
    want_y = plain_fft.conv2d_fft(x, w, b, s, p, d, g)
    want = plain_fft.conv2d_fft_backward(dy, x, w, s, p, d, g)
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        for workspace in (None, ConvWorkspace()):
            close(KF.conv2d_fft(x, w, b, s, p, d, g, workspace=workspace), want_y, dtype)
            for got, ref in zip(KF.conv2d_fft_backward(dy, x, w, s, p, d, g, workspace=workspace), want, strict=True):
                close(got, ref, dtype)


@settings(max_examples=40, deadline=None)
@given(case=conv_case(), method=st.sampled_from(["direct", "im2col", "fft"]))
def test_the_entry_points_match_the_plain_conv_module(case, method):
    x, w, b, s, p, d, g, dtype, workers = case
    dy = _dy(x, w, s, p, d, g)
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        close(K.conv2d(x, w, b, s, p, d, g, method), F.conv2d(x, w, b, s, p, d, g, method), dtype)
        want = F.conv2d_backward(dy, x, w, s, p, d, g, method)
        for got, ref in zip(K.conv2d_backward(dy, x, w, s, p, d, g, method), want, strict=True):
            close(got, ref, dtype)
        assert K.conv2d_backward(dy, x, w, s, p, d, g, method, input_grad=False)[0] is None
        close(K.conv2d_input_grad(dy, x.shape, w, s, p, d, g, method),
              F.conv2d_input_grad(dy, x.shape, w, s, p, d, g, method), dtype)


@settings(max_examples=30, deadline=None)
@given(case=conv_case(), method=st.sampled_from(["im2col", "fft"]))
def test_transposed_convolution_kernels_match_the_plain_ones(case, method):
    """The transposed convolution of z (shaped like a conv output) with w is the conv's data gradient."""
    x, w, b, s, p, d, g, dtype, workers = case
    z = _dy(x, w, s, p, d, g)
    op = tuple((x.shape[2 + a] + 2 * p[a] - (d[a] * (w.shape[2 + a] - 1) + 1)) % s[a] for a in range(2))
    bias = None if b is None else np.resize(b, w.shape[1] * g)
    with pytest.MonkeyPatch.context() as mp:
        small_blocks(mp, workers)
        y = K.conv_transpose2d(z, w, bias, s, p, op, d, g, method)
        close(y, F.conv_transpose2d(z, w, bias, s, p, op, d, g, method), dtype)
        dy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
        for got, ref in zip(K.conv_transpose2d_backward(dy, z, w, s, p, op, d, g, method),
                            F.conv_transpose2d_backward(dy, z, w, s, p, op, d, g, method), strict=True):
            close(got, ref, dtype)


# ---- the choices inside the kernels, and their machinery ------------------------------------------------


@pytest.mark.parametrize("t", [6, 10])  # stride 1: T <= 2C takes dy's columns, T > 2C the channel-major col2im
@pytest.mark.parametrize("images_per_block", [1, 2])
@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (1, 2, 1), (2, 1, 2), (2, 2, 1)])
def test_image_blocks_give_the_whole_batch_result(monkeypatch, t, images_per_block, groups, stride, dilation):
    """The blocked kernel on blocks of one image, or two (5 images: 2 + 2 + 1); the plain whole-batch
    im2col is the reference."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((5, 4, 8, 8)), rng.standard_normal((t, 4 // groups, 3, 3))
    args = ((stride,) * 2, (1, 1), (dilation,) * 2, groups)
    dy = _dy(x, w, *args)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the one-thread block budget, BLOCK_VALUES
    plan = KI._plan(x.shape, w.shape, *args)
    monkeypatch.setattr(KI, "BLOCK_VALUES", images_per_block * 4 * 9 * plan.length)
    assert KI._plan(x.shape, w.shape, *args).block == images_per_block
    close(KI.conv2d_im2col(x, w, None, *args), plain.conv2d_im2col(x, w, None, *args), np.float64)
    for a, b in zip(KI.conv2d_im2col_backward(dy, x, w, *args), plain.conv2d_im2col_backward(dy, x, w, *args),
                    strict=True):
        close(a, b, np.float64)


def test_the_block_budget_follows_the_blas_threads_at_call_time(monkeypatch):
    shape, w_shape = (64, 4, 16, 16), (8, 4, 3, 3)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    one = KI._plan(shape, w_shape, (1, 1), (1, 1), (1, 1), 1).block
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert KI._plan(shape, w_shape, (1, 1), (1, 1), (1, 1), 1).block > one  # THREADED_BLOCK_VALUES


@pytest.mark.parametrize("groups,kernel,padding,dilation", [(1, (3, 3), (1, 1), (1, 1)), (2, (3, 2), (1, 0), (2, 1)),
                                                             (3, (1, 3), (0, 2), (1, 2))])
def test_stride_one_backward_from_the_columns_of_dy_alone(groups, kernel, padding, dilation):
    """`_flipped_backward`: dx by the flipped kernel and dw as x correlated with dy's columns."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((3, 6, 7, 8)), rng.standard_normal((6, 6 // groups, *kernel))
    dy = _dy(x, w, (1, 1), padding, dilation, groups)
    want = plain.conv2d_im2col_backward(dy, x, w, (1, 1), padding, dilation, groups)
    dx = np.full(x.shape, np.nan)  # every entry must be written
    dw = KI._flipped_backward(dy, x, w, padding, dilation, groups, dx)
    close(dx, want[0], np.float64)
    close(dw, want[1], np.float64)


def test_which_convolutions_take_the_rows():
    pays = KR.rows_layout_pays
    assert pays((64, 32, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # CIFAR 32->64 on 16x16
    assert pays((64, 64, 8, 8), (128, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # 64->128 on 8x8
    assert not pays((64, 32, 32, 32), (32, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # 32x32: wide rows waste 6%
    assert not pays((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1)  # LeNet C3: too few channels
    assert not pays((64, 64, 16, 16), (64, 64, 3, 3), (2, 2), (1, 1), (1, 1), 1)  # stride 2
    assert not pays((64, 64, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 2)  # grouped


@pytest.mark.parametrize("block_values", [1, 40, 10**6])  # bands of rows of one image; whole images
def test_rows_blocks_give_the_whole_batch_result(monkeypatch, block_values):
    g = np.random.default_rng(3)
    x, w, b = g.standard_normal((5, 3, 7, 6)), g.standard_normal((4, 3, 3, 2)), g.standard_normal(4)
    args = ((1, 1), (1, 1), (1, 1), 1)
    dy = _dy(x, w, *args)
    monkeypatch.setattr(KR, "BLOCK_VALUES", block_values)
    assert len(KR._blocks(5, 7, 6 * 6 * 3)) == {1: 35, 40: 35, 10**6: 1}[block_values]
    close(KR.conv2d_rows(x, w, b, *args), plain.conv2d_im2col(x, w, b, *args), np.float64)
    for got, want in zip(KR.conv2d_rows_backward(dy, x, w, *args), plain.conv2d_im2col_backward(dy, x, w, *args),
                         strict=True):
        close(got, want, np.float64)


def test_rows_refuse_a_padding_that_would_crop_dy_and_other_cases():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        KR.conv2d_rows_backward(np.zeros((1, 2, 7, 7)), x, w, (1, 1), (3, 3), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d_rows: expected stride"):
        KR.conv2d_rows(x, w, None, (2, 2), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d_depthwise: expected groups"):
        KD.conv2d_depthwise(x, w, None, (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("t", [32, 80])  # T <= 2C: backward by rows; T > 2C: the column path
def test_the_im2col_kernel_through_rows_in_float32(t):
    g = np.random.default_rng(5)
    x = g.standard_normal((4, 32, 6, 6)).astype(np.float32)
    w, b = (g.standard_normal((t, 32, 3, 3)) * 0.1).astype(np.float32), g.standard_normal(t).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    assert KR.rows_layout_pays(x.shape, w.shape, *args)
    close(KI.conv2d_im2col(x, w, b, *args), plain.conv2d_im2col(x, w, b, *args), np.float32)
    dy = _dy(x, w, *args)
    want = plain.conv2d_im2col_backward(dy, x, w, *args)
    for input_grad in (True, False):
        dx, dw, db = KI.conv2d_im2col_backward(dy, x, w, *args, input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        for got, ref in zip((dx, dw, db), want, strict=True):
            if got is not None:
                close(got, ref, np.float32)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (0, 4, 5, 6), (2, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_is_dy_summed_over_images_and_pixels(shape, dtype):
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    got = KD._bias_grad(dy[:, :, ::-1])  # a non-contiguous dy too
    assert got.dtype == dtype and got.shape == (shape[1],)
    np.testing.assert_allclose(got, dy.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("workers", [2, 3, 7])
@pytest.mark.parametrize("case", [(3, 6, 9, 9, 8, 3, (1, 1), (1, 1), 1), (4, 32, 6, 6, 32, 3, (1, 1), (1, 1), 1),
                                  (5, 4, 8, 7, 6, 3, (2, 1), (1, 0), 2), (2, 6, 7, 7, 16, 5, (1, 1), (0, 0), 1)])
def test_workers_split_the_batch_and_give_the_one_thread_numbers(monkeypatch, workers, case):
    """MINICNN_WORKERS parts of the batch (read at call time), each a whole convolution on the pool: the
    numbers of one part for every path (columns, rows, col2im, flipped, dw alone)."""
    n, c, h, wd, t, k, s, p, g = case
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((t, c // g, k, k)), rng.standard_normal(t)
    monkeypatch.setenv("MINICNN_WORKERS", "1")
    y1 = KI.conv2d_im2col(x, w, b, s, p, (1, 1), g)
    dy = rng.standard_normal(y1.shape)
    one = {flag: KI.conv2d_im2col_backward(dy, x, w, s, p, (1, 1), g, input_grad=flag) for flag in (True, False)}
    monkeypatch.setenv("MINICNN_WORKERS", str(workers))
    monkeypatch.setattr(KI, "SPLIT_MIN_MACS", 0)
    calls = []
    real = KI._forward
    monkeypatch.setattr(KI, "_forward", lambda xs, *a: calls.append(len(xs)) or real(xs, *a))
    np.testing.assert_allclose(KI.conv2d_im2col(x, w, b, s, p, (1, 1), g), y1, atol=1e-12)
    parts = min(workers, n)
    assert sorted(calls) == sorted(n * (i + 1) // parts - n * i // parts for i in range(parts))
    for flag, want in one.items():
        for a, e in zip(KI.conv2d_im2col_backward(dy, x, w, s, p, (1, 1), g, input_grad=flag), want, strict=True):
            assert (a is None) == (e is None)
            if a is not None:
                np.testing.assert_allclose(a, e, atol=1e-10)


def test_small_convolutions_are_not_split(monkeypatch):
    """Below SPLIT_MIN_MACS the hand-offs cost more than a second thread saves: one part."""
    monkeypatch.setenv("MINICNN_WORKERS", "2")
    assert KI._parts(KI.SPLIT_MIN_MACS - 1) == 1
    assert KI._parts(KI.SPLIT_MIN_MACS) == 2
    calls = []
    real = KI._forward
    monkeypatch.setattr(KI, "_forward", lambda xs, *a: calls.append(len(xs)) or real(xs, *a))
    KI.conv2d_im2col(np.ones((4, 2, 5, 5)), np.ones((3, 2, 3, 3)), None, (1, 1), (1, 1), (1, 1), 1)
    assert calls == [4]


@pytest.mark.parametrize("stride", [1, 2])
def test_threaded_depthwise_blocks_give_the_plain_numbers(monkeypatch, stride):
    """Depthwise on cache blocks of ONE image over three threads: the per-block weight gradients (stride 1)
    add up to the plain whole-batch numbers."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((5, 4, 7, 6)), rng.standard_normal((4, 1, 3, 3))
    args = ((stride,) * 2, (1, 1), (1, 1), 4)
    dy = _dy(x, w, *args)
    monkeypatch.setenv("MINICNN_WORKERS", "3")
    monkeypatch.setattr(KD, "PARALLEL_MIN_VALUES", 0)
    monkeypatch.setattr(KD, "CACHE_VALUES", 1)  # every block is one image
    close(KD.conv2d_depthwise(x, w, None, *args), plain.conv2d_im2col(x, w, None, *args), np.float64)
    for a, b in zip(KD.conv2d_depthwise_backward(dy, x, w, *args), plain.conv2d_im2col_backward(dy, x, w, *args),
                    strict=True):
        close(a, b, np.float64)


def test_the_fft_workspace_keeps_the_spectrum_for_this_x_only():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    ws = ConvWorkspace()
    KF.conv2d_fft(x, w, None, *args, workspace=ws)
    assert as_workspace(ws) is ws and ws.spectrum_of(x) is not None and ws.nbytes > 0
    other = x.copy()  # the same values, another array: the spectrum is recomputed, not reused
    assert ws.spectrum_of(other) is None
    for a, b in zip(KF.conv2d_fft_backward(np.ones((2, 4, 8, 8)), other, w, *args, workspace=ws),
                    plain_fft.conv2d_fft_backward(np.ones((2, 4, 8, 8)), other, w, *args), strict=True):
        close(a, b, np.float64)
    ws.release()
    assert ws.nbytes == 0 and ws.spectrum_of(x) is None
    with pytest.raises(ValueError, match="ConvWorkspace"):
        K.conv2d(x, w, None, 1, 1, method="fft", workspace={})


@pytest.mark.parametrize("c,h", [(32, 8), (3, 12)])  # the rows path, the column path
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(c, h):
    x, w = np.zeros((0, c, h, h)), np.ones((16, c, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    assert KR.rows_layout_pays(x.shape, w.shape, *args) == (c == 32)
    y = KI.conv2d_im2col(x, w, None, *args)
    assert y.shape == (0, 16, h, h)
    dx, dw, db = KI.conv2d_im2col_backward(y, x, w, *args)
    assert dx.shape == x.shape and not dw.any() and not db.any()
