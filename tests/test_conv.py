"""Convolution: the three plain algorithms and their fast twins against scipy.signal, per channel pair;
flipped-kernel backward; the banded matrix; the conv-family layers, with kernels on and off; bad input.
The kernels' own machinery (blocks, rows, depthwise, workers) is tested in tests/test_kernels_conv.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve, correlate

from minicnn import layers as L
from minicnn import runtime
from minicnn.functional.conv import (
    conv2d,
    conv2d_backward,
    conv2d_input_grad,
    conv_as_matrix,
    conv_transpose2d,
    flip_kernel,
)
from minicnn.functional.conv_im2col import col2im, conv2d_im2col, im2col
from minicnn.functional.locally_connected import locally_connected2d
from minicnn.gradcheck import gradcheck
from minicnn.kernels import conv as K
from minicnn.kernels import conv_rows as KR

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
        for forward, backward, path in ((conv2d, conv2d_backward, "plain"), (K.conv2d, K.conv2d_backward, "fast")):
            y = forward(x, w, b, s, p, d, g, method=method)
            np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10, err_msg=f"{path} {method}")
            dy_before = dy.copy()
            for name, got, want in zip("dx dw db".split(), backward(dy, x, w, s, p, d, g, method=method),
                                       grads_ref, strict=True):
                assert got.shape == want.shape, (path, method, name)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, err_msg=f"{path} {method} {name}")
            np.testing.assert_array_equal(dy, dy_before)  # backward never mutates dy
    for input_grad in (conv2d_input_grad, K.conv2d_input_grad):  # the lecture's flipped-kernel form
        np.testing.assert_allclose(input_grad(dy, x.shape, w, s, p, d, g), grads_ref[0], rtol=0, atol=1e-10)


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
    dx_flipped = conv2d_input_grad(dy, x.shape, w, s, p, d, g)
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


def test_whole_batch_im2col_gemm_is_the_convolution():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 2, 7, 6)), rng.standard_normal((4, 2, 3, 2))
    cols = im2col(x, (3, 2), (2, 1), (1, 0), (1, 1))
    y = (w.reshape(4, -1) @ cols).reshape(4, 3, 4, 5).transpose(1, 0, 2, 3)  # (N, T, OH, OW)
    np.testing.assert_allclose(y, conv2d(x, w, None, (2, 1), (1, 0), method="direct"), atol=1e-12)
    np.testing.assert_allclose(conv2d_im2col(x, w, None, (2, 1), (1, 0), (1, 1), 1), y, atol=1e-12)


@pytest.mark.parametrize("path", ["plain", "fast"])
@pytest.mark.parametrize("method", METHODS)
def test_float32_follows_input_dtype(method, path):
    forward, backward = (conv2d, conv2d_backward) if path == "plain" else (K.conv2d, K.conv2d_backward)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 3))
    y = forward(x, w, method=method)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, conv2d(x.astype(np.float64), w, method="direct"), atol=1e-4)
    grads = backward(np.ones_like(y), x, w, method=method)
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


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "plain"])
@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_gradcheck(name, kernels):
    make, shape = LAYER_CASES[name]
    layer = make().to(np.float64)
    runtime.use_kernels(kernels)
    try:
        report = gradcheck(layer, np.random.default_rng(5).standard_normal(shape))
    finally:
        runtime.use_kernels(None)
    assert report.max_rel_error < 1e-6, report.table()


def test_a_layer_survives_the_switch_changing_between_forward_and_backward():
    """Both paths' backward need only the cached x and w, so either may follow either forward."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 4, 7, 7))
    for method in METHODS:
        layer = L.Conv2D(4, 6, 3, padding=1, groups=2, method=method).to(np.float64)
        dy = rng.standard_normal(layer(x).shape)
        want = layer.backward(dy)
        for forward_kernels in (True, False):
            layer.zero_grad()
            runtime.use_kernels(forward_kernels)
            try:
                layer(x)
                runtime.use_kernels(not forward_kernels)
                np.testing.assert_allclose(layer.backward(dy), want, atol=1e-10, err_msg=method)
            finally:
                runtime.use_kernels(None)


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
    np.testing.assert_allclose(K.conv2d(x, w, b, s, p, d, 4), y_ref, atol=1e-10)
    for got, want in zip(K.conv2d_backward(dy, x, w, s, p, d, 4), backward_ref(dy), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_a_conv_layer_on_the_rows_path_passes_gradcheck():
    layer = L.Conv2D(32, 16, 3, padding=1).to(np.float64)
    x = np.random.default_rng(7).standard_normal((2, 32, 4, 4))
    assert KR.rows_layout_pays(x.shape, layer.weight.data.shape, (1, 1), (1, 1), (1, 1), 1)
    gradcheck(layer, x)


@pytest.mark.parametrize("c,h", [(32, 8), (3, 12)])  # the rows path, the column path
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(c, h):
    layer = L.Conv2D(c, 16, 3, padding=1).to(np.float64)
    x = np.zeros((0, c, h, h))
    assert KR.rows_layout_pays(x.shape, layer.weight.data.shape, (1, 1), (1, 1), (1, 1), 1) == (c == 32)
    y = layer(x)
    assert y.shape == (0, 16, h, h)
    assert layer.backward(y).shape == x.shape
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_locally_connected_patches_are_the_windows_read_by_loops():
    """`patches` (shown in chapter 2): row (oh*OW + ow, n) holds the window of x under output (oh, ow),
    zero padding included, flattened in (C, KH, KW) order; checked against an explicit loop."""
    from minicnn.functional.locally_connected import patches

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 5))
    (kh, kw), (sh, sw), (ph, pw) = (3, 2), (2, 1), (1, 0)
    oh, ow = (6 + 2 * ph - kh) // sh + 1, (5 + 2 * pw - kw) // sw + 1
    p = patches(x, (kh, kw), (sh, sw), (ph, pw), (oh, ow))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    assert p.shape == (oh * ow, 2, 3 * kh * kw)
    for i in range(oh):
        for j in range(ow):
            for n in range(2):
                window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                assert np.array_equal(p[i * ow + j, n], window.reshape(-1))
