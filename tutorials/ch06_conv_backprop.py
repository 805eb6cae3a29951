"""Chapter 6: backpropagation through a convolution — flipped kernels and a correlation for dK."""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate2d

from minicnn import core
from minicnn import layers as L
from minicnn.functional import conv as FC
from minicnn.functional import conv_direct, conv_im2col
from minicnn.gradcheck import gradcheck

from ._runner import Step

TITLE = "Backprop through convolution"
SUMMARY = "dz/dx = Wᵀ dz/dy is a correlation with flipped kernels; dz/dK correlates x with dz/dy; both checked"


def _example(seed: int = 0, stride: int = 1, padding=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    y = FC.conv2d(x, w, stride=stride, padding=padding)
    dy = rng.standard_normal(y.shape)
    return x, w, dy


def _transpose(t):
    t.code(conv_direct.conv2d_direct_backward)
    t.say("Read the `dxp[...] +=` line: every output position hands dz/dy times its kernel back to the "
          "window it read — row (t, oh, ow) of W, transposed. By hand, 1-D: x = [x0, x1, x2], kernel [a, b], "
          "so y0 = a·x0 + b·x1 and y1 = a·x1 + b·x2; with dz/dy = [1, 10], dz/dx = [a, b + 10a, 10b].")
    a, b = 2.0, 3.0
    dx1, _, _ = conv_direct.conv2d_direct_backward(np.array([1.0, 10.0]).reshape(1, 1, 1, 2), np.zeros((1, 1, 1, 3)),
                                                   np.array([a, b]).reshape(1, 1, 1, 2), (1, 1), (0, 0), (1, 1), 1)
    t.array("dz/dx for a = 2, b = 3", dx1[0, 0, 0])
    t.check("by hand: [a, b + 10a, 10b] = [2, 23, 30]", dx1[0, 0, 0], [2, 23, 30], tol=0)
    for stride, padding in ((1, 0), (2, 1)):
        x, w, dy = _example(stride=stride, padding=padding)
        mat = FC.conv_as_matrix(w, x.shape[1:], stride=stride, padding=padding)
        dx, _, _ = FC.conv2d_backward(dy, x, w, stride=stride, padding=padding, method="direct")
        t.check(f"stride {stride}, padding {padding}: the direct backward's dx equals Wᵀ dz/dy "
                "(W = conv_as_matrix)", dx.ravel(), mat.T @ dy.ravel())


def _flip(t):
    t.code(conv_im2col.flip_kernel)
    t.code(conv_im2col.conv2d_input_grad_flipped)
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    t.array("K (one map in, one out)", w[0, 0])
    t.array("flip_kernel(K)", conv_im2col.flip_kernel(w)[0, 0])
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 2, 3, 3))
    back = conv_im2col.flip_kernel(w)
    t.check("K_back(i, j, t, s) = K(2δ − i, 2δ − j, s, t) (0-based: 2 − i, 2 − j), shape (S, T, 3, 3)",
            back, np.transpose(w, (1, 0, 2, 3))[:, :, ::-1, ::-1])
    for stride, padding in ((1, 0), (1, 1), (2, 1)):
        x, w, dy = _example(seed=4, stride=stride, padding=padding)
        flipped = FC.conv2d_input_grad(dy, x.shape, w, stride=stride, padding=padding)
        mat = FC.conv_as_matrix(w, x.shape[1:], stride=stride, padding=padding)
        t.check(f"stride {stride}, padding {padding}: correlating padded dz/dy with flipped kernels = Wᵀ dz/dy",
                flipped.ravel(), mat.T @ dy.ravel())


def _dk(t):
    t.code(conv_direct.conv2d_direct_backward, start="for g in range(groups)", end="db =")
    t.say("The `dw[outs] +=` line is the equation: at each output position, dz/dy times the window of x it "
          "read. By hand, 1-D: x = [1, 2, 3], kernel of 2 taps, dz/dy = [1, 10]: dz/dK0 = 1·1 + 10·2 = 21 and "
          "dz/dK1 = 1·2 + 10·3 = 32.")
    x1 = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)  # (N, C, H, W) = (1, 1, 1, 3)
    _, dw1, _ = conv_direct.conv2d_direct_backward(np.array([1.0, 10.0]).reshape(1, 1, 1, 2), x1,
                                                   np.zeros((1, 1, 1, 2)), (1, 1), (0, 0), (1, 1), 1)
    t.check("by hand: dz/dK = [21, 32]", dw1.ravel(), [21, 32], tol=0)
    x, w, dy = _example(seed=5)
    _, dw, db = FC.conv2d_backward(dy, x, w, method="direct")
    # the lecture's formula as a correlation of x (input map s) with dy (output map t)
    by_corr = np.array([[correlate2d(x[0, s], dy[0, t_], mode="valid") for s in range(2)] for t_ in range(3)])
    t.check("dz/dK[t, s] = correlate(x[s], dz/dy[t]) (scipy.signal.correlate2d, 'valid')", dw, by_corr)
    t.say("And straight from the multiplicative layer: dz/dW = dz/dy xᵀ is a full matrix, one entry per "
          "(output, input) pair. Tying means each kernel weight is the sum of dz/dW over the entries where it "
          "sits in the banded matrix — and where it sits is conv_as_matrix of a one-hot kernel.")
    dW = np.outer(dy.ravel(), x.ravel())
    tied = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        onehot = np.zeros_like(w)
        onehot[idx] = 1.0
        tied[idx] = np.sum(dW * FC.conv_as_matrix(onehot, x.shape[1:]))
    t.check("dz/dK = Σ of dz/dy·xᵀ over the matrix entries tied to each kernel weight", dw, tied)
    t.check("dz/db = Σ dz/dy over positions", db, dy.sum(axis=(0, 2, 3)))
    t.heading("The same math, fast: im2col turns the sum over positions into matrix products")
    t.code(conv_im2col.conv2d_im2col_backward, start="cols = im2col(", end="dw = np.matmul(dy_mat")
    _, dw_fast, db_fast = FC.conv2d_backward(dy, x, w, method="im2col")
    t.check("im2col's dw (dy_mat @ colsᵀ) equals the direct loop's", dw_fast, dw)
    t.check("and its db", db_fast, db)


def _gradcheck(t):
    t.code(L.Conv2D.backward)
    rows = []
    for stride, padding, dilation in ((1, 0, 1), (2, 1, 1), (1, "same", 2)):
        core.manual_seed(0)
        layer = L.Conv2D(2, 3, 3, stride=stride, padding=padding, dilation=dilation).to(np.float64)
        x = np.random.default_rng(6).standard_normal((2, 2, 7, 7))
        report = gradcheck(layer, x, name=f"Conv2D stride {stride} pad {padding!r} dil {dilation}")
        rows.append([report.layer] + [tr.max_rel_error for tr in report.tensors])
        t.check_true(f"{report.layer}: passes, worst relative error {report.max_rel_error:.1e} < 1e-6", report.ok)
    t.table(["layer", "input", "weight", "bias"], rows)


STEPS = [
    Step("dz/dx = Wᵀ dz/dy", """
        A convolution is y = W x with the banded matrix of chapter 5, so the multiplicative layer's rule
        holds as is. conv2d_backward never builds W; compare it with the explicit transpose.""",
         "dz/dx = (dy/dx)ᵀ dz/dy = Wᵀ dz/dy", _transpose),
    Step("Wᵀ is again a correlation, with flipped kernels", """
        Multiplying by Wᵀ means: pad (and, for strides, dilate) dz/dy, then correlate it with every kernel
        turned by 180° and with input and output maps swapped.""",
         "K_back(i, j, t, s) = K(2δ + 1 − i, 2δ + 1 − j, s, t)        dz/dx = corr(pad(dz/dy), K_back)", _flip),
    Step("dz/dK is a correlation of x with dz/dy", """
        For a dense layer ∂z/∂W_ij = x_j ∂z/∂y_i. A convolution ties together the weights that link the
        same relative positions of y_i and x_j, so their gradients add up.""",
         "∂z/∂K(m, n, s, t) = Σ_{k,l} ∂z/∂y(k, l, t) · x(k + m, l + n, s)   (lecture: x(k−m, l−n) with its kernel "
         "indexing)", _dk),
    Step("The gradient checker agrees", """
        Finally the numerical check on the layer, including stride, padding and dilation.""",
         "max rel. error over input, weight and bias < 1e-6 (float64 central differences)", _gradcheck),
]
