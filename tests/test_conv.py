"""Convolution: three algorithms against each other and against scipy.signal, per channel pair;
flipped-kernel backward; the banded matrix; the conv-family layers; bad input; the patches-as-rows path."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve, correlate

from minicnn import layers as L
from minicnn.functional import conv_im2col, conv_rows
from minicnn.functional.conv import (
    conv2d,
    conv2d_backward,
    conv_as_matrix,
    conv_transpose2d,
    flip_kernel,
)
from minicnn.functional.conv_im2col import col2im, im2col
from minicnn.functional.locally_connected import locally_connected2d
from minicnn.gradcheck import gradcheck

METHODS = ["direct", "im2col", "fft"]


# ---- the independent reference: scipy.signal, one (input map, kernel) pair at a time ----------------

def _dilated(w, d):
    t, cg, kh, kw = w.shape
    out = np.zeros((t, cg, d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1))
    out[:, :, ::d[0], ::d[1]] = w
    return out


def scipy_conv(x, w, b, s, p, d, g):
    """y, and a function giving (dx, dw, db) for dy, built from scipy.signal.correlate/convolve."""
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    tg = t // g
    xp = np.pad(x, ((0, 0), (0, 0), (p[0],) * 2, (p[1],) * 2))
    wdl = _dilated(w, d)
    eh, ew = wdl.shape[2:]
    full = np.zeros((n, t, xp.shape[2] - eh + 1, xp.shape[3] - ew + 1))
    for k in range(n):
        for to in range(t):
            for si in range(cg):
                full[k, to] += correlate(xp[k, (to // tg) * cg + si], wdl[to, si], mode="valid")
    y = full[:, :, ::s[0], ::s[1]] + (0 if b is None else b[None, :, None, None])

    def backward(dy):
        dy1 = np.zeros_like(full)
        dy1[:, :, ::s[0], ::s[1]] = dy
        dxp = np.zeros_like(xp)
        dwd = np.zeros_like(wdl)
        for k in range(n):
            for to in range(t):
                for si in range(cg):
                    ci = (to // tg) * cg + si
                    dxp[k, ci] += convolve(dy1[k, to], wdl[to, si], mode="full")
                    dwd[to, si] += correlate(xp[k, ci], dy1[k, to], mode="valid")
        dx = dxp[:, :, p[0]:p[0] + h, p[1]:p[1] + wd]
        return dx, dwd[:, :, ::d[0], ::d[1]], dy.sum(axis=(0, 2, 3))

    return y, backward


@st.composite
def conv_case(draw):
    g = draw(st.integers(1, 3))
    cg, tg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 9))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 9))
    n = draw(st.integers(1, 3))
    return n, g * cg, h, w, g * tg, kh, kw, s, p, d, g, draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(case=conv_case())
def test_three_methods_agree_with_scipy_forward_and_backward(case):
    n, c, h, wd, t, kh, kw, s, p, d, g, seed = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((t, c // g, kh, kw)), rng.standard_normal(t)
    y_ref, backward_ref = scipy_conv(x, w, b, s, p, d, g)
    dy = rng.standard_normal(y_ref.shape)
    grads_ref = backward_ref(dy)
    for method in METHODS:
        y = conv2d(x, w, b, s, p, d, g, method=method)
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10, err_msg=method)
        dy_before = dy.copy()
        for name, got, want in zip("dx dw db".split(), conv2d_backward(dy, x, w, s, p, d, g, method=method),
                                   grads_ref, strict=True):
            assert got.shape == want.shape, (method, name)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, err_msg=f"{method} {name}")
        np.testing.assert_array_equal(dy, dy_before)  # backward never mutates dy
    dx_flipped = conv2d_backward(dy, x, w, s, p, d, g, data_grad="flipped")[0]
    np.testing.assert_allclose(dx_flipped, grads_ref[0], rtol=0, atol=1e-10)


def test_direct_reference_on_a_hand_worked_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # y = x[i, j] - x[i+1, j+1] = -5 everywhere
    y = conv2d(x, w, np.array([0.5]), method="direct")
    np.testing.assert_array_equal(y, np.full((1, 1, 3, 3), -4.5))
    # stride 2, padding 1: y[a, b] = x[2a-1, 2b-1] - x[2a, 2b], reading zeros outside the 4x4 input
    y2 = conv2d(x, w, stride=2, padding=1, method="direct")
    np.testing.assert_array_equal(y2[0, 0], [[0, -2, 0], [-8, 1 + 4 - 10, 7], [0, 13, 15]])


def test_flip_kernel_is_the_lectures_k_back():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 2))  # (T, S, KH, KW)
    wb = flip_kernel(w)
    assert wb.shape == (3, 4, 3, 2)
    for t in range(4):
        for s in range(3):
            for i in range(3):
                for j in range(2):  # K_back(i, j, t, s) = K(2d+1-i, 2d+1-j, s, t), 0-based: K(KH-1-i, KW-1-j)
                    assert wb[s, t, i, j] == w[t, s, 2 - i, 1 - j]
    wg = rng.standard_normal((6, 2, 3, 3))  # groups=3: (T=6, C/G=2) -> (C=6, T/G=2)
    wgb = flip_kernel(wg, groups=3)
    assert wgb.shape == (6, 2, 3, 3)
    assert wgb[3, 1, 0, 0] == wg[1 * 2 + 1, 1, 2, 2]  # group 1: in-channel 1 (c=3), out-channel 1 (t=3)


@pytest.mark.parametrize("s,p,d,g", [(1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 2, 2), ((1, 2), (0, 1), (2, 1), 1)])
def test_conv_as_matrix_is_the_layer_and_its_transpose_is_the_flipped_backward(s, p, d, g):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 7, 6))
    w = rng.standard_normal((6, 4 // g, 3, 2))
    mat = conv_as_matrix(w, (4, 7, 6), s, p, d, g)
    y = conv2d(x, w, None, s, p, d, g)
    np.testing.assert_allclose(mat @ x.ravel(), y.ravel(), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx_flipped = conv2d_backward(dy, x, w, s, p, d, g, data_grad="flipped")[0]
    np.testing.assert_allclose(mat.T @ dy.ravel(), dx_flipped.ravel(), atol=1e-12)
    nonzero_per_row = (mat != 0).sum(axis=1)
    assert nonzero_per_row.max() <= (4 // g) * 3 * 2  # banded: at most one kernel's worth per row


def test_im2col_and_col2im_are_adjoint():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    cols = im2col(x, (3, 2), (2, 1), (1, 1), (1, 2))
    assert cols.shape == (3 * 3 * 2, 2 * 3 * 5)  # OH = (6 + 2 - 3) // 2 + 1, OW = 5 + 2 - 3 + 1
    r = rng.standard_normal(cols.shape)
    back = col2im(r, x.shape, (3, 2), (2, 1), (1, 1), (1, 2))
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * r), np.sum(x * back), rtol=1e-12)  # <Ax, r> = <x, A^T r>


@pytest.mark.parametrize("t", [6, 10])  # stride 1: T <= 2C takes dy's columns, T > 2C the channel-major col2im
@pytest.mark.parametrize("images_per_block", [1, 2])
@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (1, 2, 1), (2, 1, 2), (2, 2, 1)])
def test_image_blocks_give_the_whole_batch_result(monkeypatch, t, images_per_block, groups, stride, dilation):
    """The layer path runs on blocks of images (one image, or two, here); the plain whole-batch
    im2col/col2im and the direct loops are the references."""

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((5, 4, 8, 8)), rng.standard_normal((t, 4 // groups, 3, 3))
    want_y = conv2d(x, w, None, stride, 1, dilation, groups, "direct")
    dy = rng.standard_normal(want_y.shape)
    want = conv2d_backward(dy, x, w, stride, 1, dilation, groups, "direct")
    monkeypatch.setattr(conv_im2col, "BLAS_THREADS", 1)  # one-thread block budget, BLOCK_VALUES
    plan = conv_im2col._plan(x.shape, w.shape, (stride,) * 2, (1, 1), (dilation,) * 2, groups)
    monkeypatch.setattr(conv_im2col, "BLOCK_VALUES", images_per_block * 4 * 9 * plan.length)
    plan = conv_im2col._plan(x.shape, w.shape, (stride,) * 2, (1, 1), (dilation,) * 2, groups)
    assert plan.block == images_per_block  # 5 images: blocks of 1, or 2 + 2 + 1
    np.testing.assert_allclose(conv2d(x, w, None, stride, 1, dilation, groups), want_y, atol=1e-12)
    for a, b in zip(conv2d_backward(dy, x, w, stride, 1, dilation, groups), want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_whole_batch_im2col_gemm_is_the_convolution():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 2, 7, 6)), rng.standard_normal((4, 2, 3, 2))
    cols = im2col(x, (3, 2), (2, 1), (1, 0), (1, 1))
    y = (w.reshape(4, -1) @ cols).reshape(4, 3, 4, 5).transpose(1, 0, 2, 3)  # (N, T, OH, OW)
    np.testing.assert_allclose(y, conv2d(x, w, None, (2, 1), (1, 0), method="direct"), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_float32_follows_input_dtype(method):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 3))
    y = conv2d(x, w, method=method)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, conv2d(x.astype(np.float64), w, method="direct"), atol=1e-4)
    grads = conv2d_backward(np.ones_like(y), x, w, method=method)
    assert all(gr.dtype == np.float32 for gr in grads)


# ---- layers ------------------------------------------------------------------------------------------

LAYER_CASES = {
    "Conv2D": (lambda: L.Conv2D(3, 4, 3, padding=1), (2, 3, 5, 5)),
    "Conv2D_stride2_groups": (lambda: L.Conv2D(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 7, 6)),
    "Conv2D_stride3_dilation2": (lambda: L.Conv2D(3, 4, (3, 2), stride=3, dilation=2), (2, 3, 10, 8)),
    "Conv2D_same_dilation2": (lambda: L.Conv2D(2, 3, 3, padding="same", dilation=2), (2, 2, 6, 5)),
    "Conv2D_direct": (lambda: L.Conv2D(2, 3, 3, stride=2, padding=1, method="direct"), (2, 2, 5, 5)),
    "Conv2D_fft": (lambda: L.Conv2D(4, 4, 3, stride=2, padding="valid", groups=2, method="fft"), (2, 4, 7, 7)),
    "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(4, 3, stride=2, padding=1), (2, 4, 7, 7)),
    "DepthwiseConv2D_same": (lambda: L.DepthwiseConv2D(3, 5, padding="same"), (2, 3, 6, 6)),
    "PointwiseConv2D": (lambda: L.PointwiseConv2D(4, 5), (2, 4, 3, 3)),
    "SeparableConv2D": (lambda: L.SeparableConv2D(3, 5, 3, stride=2, padding=1), (2, 3, 6, 6)),
    "ConvTranspose2D": (lambda: L.ConvTranspose2D(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 4, 3)),
    "ConvTranspose2D_groups": (lambda: L.ConvTranspose2D(4, 6, 2, stride=3, groups=2), (2, 4, 3, 3)),
    "ConvTranspose2D_fft_dilation2": (lambda: L.ConvTranspose2D(2, 3, 3, stride=2, dilation=2, method="fft"),
                                      (2, 2, 3, 4)),
    "LocallyConnected2D": (lambda: L.LocallyConnected2D(3, 4, (6, 5), 3, stride=2, padding=1), (2, 3, 6, 5)),
}


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_gradcheck(name):
    make, shape = LAYER_CASES[name]
    layer = make().to(np.float64)
    report = gradcheck(layer, np.random.default_rng(5).standard_normal(shape))
    assert report.max_rel_error < 1e-6, report.table()


def test_layer_attributes_are_resolved_pairs():
    conv = L.Conv2D(3, 8, 5, stride=2, padding=2)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) == ((5, 5), (2, 2), (2, 2),
                                                                                         (1, 1), 1)
    same = L.Conv2D(3, 8, (3, 5), padding="same")
    assert same.padding == (1, 2) and same.method == "im2col"
    assert L.Conv2D(3, 8, 3, padding="valid").padding == (0, 0)
    dw = L.DepthwiseConv2D(6, 3, padding=1)
    assert dw.groups == 6 and dw.in_channels == dw.out_channels == 6 and dw.weight.shape == (6, 1, 3, 3)
    pw = L.PointwiseConv2D(6, 4)
    assert pw.kernel_size == (1, 1) and pw.weight.shape == (4, 6, 1, 1)
    sep = L.SeparableConv2D(6, 4, 3, padding=1)
    assert sep.num_parameters() == 6 * 9 + 6 * 4 + 4
    assert L.ConvTranspose2D(6, 4, 3).weight.shape == (6, 4, 3, 3)


def test_conv2d_layer_matches_functional_and_fills_grads():
    rng = np.random.default_rng(6)
    conv = L.Conv2D(3, 4, 3, stride=2, padding=1).to(np.float64)
    x = rng.standard_normal((2, 3, 7, 7))
    y = conv(x)
    np.testing.assert_allclose(y, conv2d(x, conv.weight.data, conv.bias.data, 2, 1, method="direct"), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    conv.backward(dy)
    conv.backward(dy)  # gradients accumulate
    _, dw, db = conv2d_backward(dy, x, conv.weight.data, 2, 1, method="direct")
    np.testing.assert_allclose(conv.weight.grad, 2 * dw, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, 2 * db, atol=1e-12)


def test_conv_transpose_is_the_data_gradient_of_conv():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 3, 3, 3))  # conv2d 3 -> 4, so the transpose maps 4 -> 3
    x = rng.standard_normal((2, 3, 9, 9))
    y = conv2d(x, w, None, 2, 1)
    z = rng.standard_normal(y.shape)
    dx = conv2d_backward(z, x, w, 2, 1, method="direct")[0]
    np.testing.assert_allclose(conv_transpose2d(z, w, None, 2, 1, output_padding=0), dx, atol=1e-12)
    assert conv_transpose2d(z, w, None, 2, 1, output_padding=1).shape == (2, 3, 10, 10)
    for method in ("direct", "fft"):
        np.testing.assert_allclose(conv_transpose2d(z, w, None, 2, 1, method=method), dx, atol=1e-12)


def test_locally_connected_matches_loop_and_equals_conv_when_tied():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 5, 6))
    lc = L.LocallyConnected2D(3, 2, (5, 6), 3, stride=(1, 2), padding=1).to(np.float64)
    y = lc(x)
    w, b = lc.weight.data, lc.bias.data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for a in range(y.shape[2]):
        for c in range(y.shape[3]):
            window = xp[:, :, a:a + 3, 2 * c:2 * c + 3]  # K^{x,y,t} for this (x, y) only
            np.testing.assert_allclose(y[:, :, a, c], np.einsum("nsij,tsij->nt", window, w[a, c]) + b[:, a, c])
    tied = np.broadcast_to(rng.standard_normal((2, 3, 3, 3)), w.shape).copy()
    np.testing.assert_allclose(locally_connected2d(x, tied, None, (1, 2), (1, 1)),
                               conv2d(x, tied[0, 0], None, (1, 2), 1), atol=1e-12)


# ---- bad input -----------------------------------------------------------------------------------------

def _raises(fn, *words):
    with pytest.raises(ValueError) as info:
        fn()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_bad_input_names_layer_expected_and_received():
    conv = L.Conv2D(3, 4, 5)
    _raises(lambda: conv(np.zeros((2, 4, 8, 8))), "Conv2D", "(N, 3, H, W)", "(2, 4, 8, 8)")  # channels
    _raises(lambda: conv(np.zeros((2, 3, 3, 8))), "Conv2D", "5x5", "(2, 3, 3, 8)")  # kernel > padded input
    _raises(lambda: conv(np.zeros((3, 8, 8))), "Conv2D", "4-D", "(3, 8, 8)")  # not 4-D
    _raises(lambda: L.Conv2D(3, 4, 3, stride=0), "Conv2D", "stride")
    _raises(lambda: L.Conv2D(3, 4, 3, groups=2), "Conv2D", "groups=2", "in_channels=3")
    _raises(lambda: L.Conv2D(3, 4, 3, stride=2, padding="same"), "Conv2D", "same")
    _raises(lambda: L.Conv2D(3, 4, 3, method="winograd"), "Conv2D", "winograd")
    _raises(lambda: conv2d(np.zeros((1, 4, 5, 5)), np.zeros((6, 2, 3, 3)), groups=3), "conv2d", "groups=3")
    _raises(lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((6, 3, 3, 3)), stride=-1), "conv2d", "stride")
    _raises(lambda: L.DepthwiseConv2D(4, 3)(np.zeros((1, 3, 5, 5))), "DepthwiseConv2D", "(1, 3, 5, 5)")
    _raises(lambda: L.ConvTranspose2D(4, 2, 3)(np.zeros((1, 3, 5, 5))), "ConvTranspose2D", "(1, 3, 5, 5)")
    _raises(lambda: L.LocallyConnected2D(3, 2, (6, 6), 3)(np.zeros((1, 3, 5, 5))), "LocallyConnected2D",
            "(1, 3, 5, 5)")
    y = L.Conv2D(3, 4, 3)(np.zeros((1, 3, 5, 5)))
    _raises(lambda: conv2d_backward(np.zeros((1, 4, 2, 2)), np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3))),
            "dy", str(y.shape))


@pytest.mark.parametrize("stride", [1, 2])
def test_threaded_depthwise_blocks_give_the_direct_numbers(monkeypatch, stride):
    """Depthwise runs on cache blocks of images spread over threads; with a block of ONE image and three
    threads, the per-block weight gradients (stride 1) must add up to the direct method's."""

    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((5, 4, 7, 6)), rng.standard_normal((4, 1, 3, 3))
    dy = rng.standard_normal(conv2d(x, w, None, stride, 1, 1, 4).shape)
    want = conv2d(x, w, None, stride, 1, 1, 4, "direct"), *conv2d_backward(dy, x, w, stride, 1, 1, 4, "direct")
    monkeypatch.setattr(conv_im2col, "COPY_THREADS", 3)
    monkeypatch.setattr(conv_im2col, "PARALLEL_MIN_VALUES", 0)
    monkeypatch.setattr(conv_im2col, "CACHE_VALUES", 1)  # every block is one image
    got = conv2d(x, w, None, stride, 1, 1, 4), *conv2d_backward(dy, x, w, stride, 1, 1, 4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "im2col", "fft"])
def test_first_layer_can_skip_the_input_gradient(method):
    g = np.random.default_rng(7)
    x = g.standard_normal((2, 3, 9, 8))
    dy = g.standard_normal((2, 4, 9, 8))
    full = L.Conv2D(3, 4, 3, padding=1, method=method).to(np.float64)
    skip = L.Conv2D(3, 4, 3, padding=1, method=method).to(np.float64)
    skip.load_state_dict(full.state_dict())
    skip.input_grad = False
    full(x)
    skip(x)
    assert full.backward(dy) is not None
    assert skip.backward(dy) is None
    np.testing.assert_allclose(skip.weight.grad, full.weight.grad, atol=1e-12)
    np.testing.assert_allclose(skip.bias.grad, full.bias.grad, atol=1e-12)


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (3, 1, 0, 2), (2, 1, 2, 1), (1, 1, 1, 1), (3, 2, 1, 1)])
def test_depthwise_paths_against_scipy(k, s, p, d):
    """Depthwise (groups = C = T) runs as taps side by side + a batched vector-matrix product at stride 1,
    dx as the flipped-kernel correlation (padding <= E - 1) or tap by tap (larger padding, stride 2)."""
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((3, 4, 7, 8)), rng.standard_normal((4, 1, k, k)), rng.standard_normal(4)
    y_ref, backward_ref = scipy_conv(x, w, b, (s, s), (p, p), (d, d), 4)
    dy = rng.standard_normal(y_ref.shape)
    np.testing.assert_allclose(conv2d(x, w, b, s, p, d, 4), y_ref, atol=1e-10)
    for got, want in zip(conv2d_backward(dy, x, w, s, p, d, 4), backward_ref(dy), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("groups,kernel,padding,dilation", [(1, (3, 3), (1, 1), (1, 1)), (2, (3, 2), (1, 0), (2, 1)),
                                                             (3, (1, 3), (0, 2), (1, 2))])
def test_stride_one_backward_from_the_columns_of_dy_alone(groups, kernel, padding, dilation):
    """At stride 1 with T <= C, backward builds only dy's columns: dx by the flipped kernel and dw as
    x correlated with them (`_flipped_backward`); the direct loops are the reference."""

    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((3, 6, 7, 8)), rng.standard_normal((6, 6 // groups, *kernel))
    dy = rng.standard_normal(conv2d(x, w, None, 1, padding, dilation, groups).shape)
    assert conv_im2col._full_padding(w.shape, padding, dilation) is not None  # the path under test
    want = conv2d_backward(dy, x, w, 1, padding, dilation, groups, "direct")
    dx = np.full(x.shape, np.nan)  # every entry must be written
    dw = conv_im2col._flipped_backward(dy, x, w, padding, dilation, groups, dx)
    np.testing.assert_allclose(dx, want[0], atol=1e-10)
    np.testing.assert_allclose(dw, want[1], atol=1e-10)


# ---- patches as rows, channels last (`conv_rows`) ------------------------------------------------------------


@st.composite
def rows_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, d[0] * (kh - 1))), draw(st.integers(0, d[1] * (kw - 1))))  # backward needs p <= E-1
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 9))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 9))
    n, c, t = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return n, c, h, w, t, kh, kw, p, d, draw(st.booleans()), draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(rows_case())
def test_rows_forward_and_backward_match_scipy(case):
    n, c, h, wd, t, kh, kw, p, d, bias, seed = case
    g = np.random.default_rng(seed)
    x, w = g.standard_normal((n, c, h, wd)), g.standard_normal((t, c, kh, kw))
    b = g.standard_normal(t) if bias else None
    y_ref, backward_ref = scipy_conv(x, w, b, (1, 1), p, d, 1)
    np.testing.assert_allclose(conv_rows.conv2d_rows(x, w, b, p, d), y_ref, atol=1e-10)
    dy = g.standard_normal(y_ref.shape)
    dx_ref, dw_ref, _ = backward_ref(dy)
    dx, dw = conv_rows.conv2d_rows_backward(dy, x, w, p, d)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-10)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-10)
    none, dw_alone = conv_rows.conv2d_rows_backward(dy, x, w, p, d, need_dx=False)
    assert none is None
    np.testing.assert_allclose(dw_alone, dw_ref, atol=1e-10)


@pytest.mark.parametrize("block_values", [1, 40, 10**6])  # bands of rows of one image; whole images
def test_rows_blocks_give_the_whole_batch_result(monkeypatch, block_values):
    g = np.random.default_rng(3)
    x, w, b = g.standard_normal((5, 3, 7, 6)), g.standard_normal((4, 3, 3, 2)), g.standard_normal(4)
    want = conv2d(x, w, b, 1, (1, 1), method="direct")
    dy = g.standard_normal(want.shape)
    want_dx, want_dw, _ = conv2d_backward(dy, x, w, 1, (1, 1), method="direct")
    monkeypatch.setattr(conv_rows, "BLOCK_VALUES", block_values)
    assert len(conv_rows._blocks(5, 7, 6 * 6 * 3)) == {1: 35, 40: 35, 10**6: 1}[block_values]
    np.testing.assert_allclose(conv_rows.conv2d_rows(x, w, b, (1, 1), (1, 1)), want, atol=1e-10)
    dx, dw = conv_rows.conv2d_rows_backward(dy, x, w, (1, 1), (1, 1))
    np.testing.assert_allclose(dx, want_dx, atol=1e-10)
    np.testing.assert_allclose(dw, want_dw, atol=1e-10)


def test_rows_refuses_a_padding_that_would_crop_dy():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        conv_rows.conv2d_rows_backward(np.zeros((1, 2, 7, 7)), x, w, (3, 3), (1, 1))


def test_which_convolutions_take_the_rows():
    pay = conv_rows.rows_pay
    assert pay((64, 32, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # CIFAR 32->64 on 16x16
    assert pay((64, 64, 8, 8), (128, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # 64->128 on 8x8
    assert not pay((64, 32, 32, 32), (32, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1)  # 32x32: wide rows waste 6%
    assert not pay((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1)  # LeNet C3: too few channels
    assert not pay((64, 64, 16, 16), (64, 64, 3, 3), (2, 2), (1, 1), (1, 1), 1)  # stride 2
    assert not pay((64, 64, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 2)  # grouped


@pytest.mark.parametrize("t", [32, 80])  # T <= 2C: backward by rows; T > 2C: the column path
def test_the_layer_path_through_rows_matches_the_direct_loops(t):
    """A float32 layer whose shape takes the rows path, against the direct loops, with dx and without."""
    g = np.random.default_rng(5)
    x = g.standard_normal((4, 32, 6, 6)).astype(np.float32)
    w, b = (g.standard_normal((t, 32, 3, 3)) * 0.1).astype(np.float32), g.standard_normal(t).astype(np.float32)
    assert conv_rows.rows_pay(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1)
    y = conv_im2col.conv2d_im2col(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    want = conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1, method="direct")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    dy = g.standard_normal(y.shape).astype(np.float32)
    want_grads = conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), 1, 1,
                                 method="direct")
    for data_grad in ("col2im", "none", "flipped"):
        dx, dw, db = conv_im2col.conv2d_im2col_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1, data_grad=data_grad)
        assert (dx is None) == (data_grad == "none")
        for got, ref in zip((dx, dw, db), want_grads, strict=True):
            if got is not None:
                assert got.dtype == np.float32
                np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


def test_a_conv_layer_on_the_rows_path_passes_gradcheck():
    layer = L.Conv2D(32, 16, 3, padding=1).to(np.float64)
    x = np.random.default_rng(7).standard_normal((2, 32, 4, 4))
    assert conv_rows.rows_pay(x.shape, layer.weight.data.shape, (1, 1), (1, 1), (1, 1), 1)
    gradcheck(layer, x)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (0, 4, 5, 6), (2, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_is_dy_summed_over_images_and_pixels(shape, dtype):
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    got = conv_im2col.bias_grad(dy[:, :, ::-1])  # a non-contiguous dy too
    assert got.dtype == dtype and got.shape == (shape[1],)
    np.testing.assert_allclose(got, dy.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("workers", [2, 3, 7])
@pytest.mark.parametrize("case", [(3, 6, 9, 9, 8, 3, (1, 1), (1, 1), 1), (4, 32, 6, 6, 32, 3, (1, 1), (1, 1), 1),
                                  (5, 4, 8, 7, 6, 3, (2, 1), (1, 0), 2), (2, 6, 7, 7, 16, 5, (1, 1), (0, 0), 1)])
def test_workers_split_the_batch_and_give_the_one_thread_numbers(monkeypatch, workers, case):
    """MINICNN_WORKERS parts of the batch, each a whole convolution on the pool: the same numbers as one
    thread for every path (columns, rows, col2im, flipped, dw alone), and a worker never waits on the pool."""
    n, c, h, wd, t, k, s, p, g = case
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((t, c // g, k, k)), rng.standard_normal(t)
    y1 = conv_im2col.conv2d_im2col(x, w, b, s, p, (1, 1), g)
    dy = rng.standard_normal(y1.shape)
    one = {d: conv_im2col.conv2d_im2col_backward(dy, x, w, s, p, (1, 1), g, data_grad=d)
           for d in ("col2im", "flipped", "none")}
    monkeypatch.setattr(conv_im2col, "WORKERS", workers)
    monkeypatch.setattr(conv_im2col, "SPLIT_MIN_MACS", 0)
    calls = []
    real = conv_im2col._forward
    monkeypatch.setattr(conv_im2col, "_forward", lambda xs, *a: calls.append(len(xs)) or real(xs, *a))
    np.testing.assert_allclose(conv_im2col.conv2d_im2col(x, w, b, s, p, (1, 1), g), y1, atol=1e-12)
    assert sorted(calls) == sorted(n * (i + 1) // min(workers, n) - n * i // min(workers, n)
                                   for i in range(min(workers, n)))
    for d, want in one.items():
        got = conv_im2col.conv2d_im2col_backward(dy, x, w, s, p, (1, 1), g, data_grad=d)
        for a, e in zip(got, want, strict=True):
            assert (a is None) == (e is None)
            if a is not None:
                np.testing.assert_allclose(a, e, atol=1e-10)


def test_small_convolutions_are_not_split(monkeypatch):
    """Below SPLIT_MIN_MACS the hand-offs cost more than a second thread saves: one part."""
    monkeypatch.setattr(conv_im2col, "WORKERS", 2)
    assert conv_im2col._parts(conv_im2col.SPLIT_MIN_MACS - 1) == 1
    assert conv_im2col._parts(conv_im2col.SPLIT_MIN_MACS) == 2
    calls = []
    real = conv_im2col._forward
    monkeypatch.setattr(conv_im2col, "_forward", lambda xs, *a: calls.append(len(xs)) or real(xs, *a))
    conv_im2col.conv2d_im2col(np.ones((4, 2, 5, 5)), np.ones((3, 2, 3, 3)), None, (1, 1), (1, 1), (1, 1), 1)
    assert calls == [4]


@pytest.mark.parametrize("c,h", [(32, 8), (3, 12)])  # the rows path, the column path
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(c, h):
    layer = L.Conv2D(c, 16, 3, padding=1).to(np.float64)
    x = np.zeros((0, c, h, h))
    assert conv_rows.rows_pay(x.shape, layer.weight.data.shape, (1, 1), (1, 1), (1, 1), 1) == (c == 32)
    y = layer(x)
    assert y.shape == (0, 16, h, h)
    assert layer.backward(y).shape == x.shape
    assert not layer.weight.grad.any() and not layer.bias.grad.any()
