"""Convolution, direct: loops that read like the lecture's equation. The REFERENCE — slow on purpose.

    V(x, y, t) = sum_{i, j, s} K(i - x + d, j - y + d, s, t) U(i, j, s)

in code (NCHW, cross-correlation as in every deep-learning library, stride, padding, dilation, groups):

    y[n, t, oh, ow] = b[t] + sum_{s, i, j} w[t, s, i, j] * x_pad[n, g*C/G + s, oh*sh + i*dil_h, ow*sw + j*dil_w]

where g = t // (T/G) is the group of output map t. The Python loops run over every output map and
every output position (only the batch and the window sum are vectorised), so this costs
T*OH*OW Python iterations: fine for tests and tutorials, far too slow for training — use "im2col".

Same signature as its siblings `conv_im2col` and `conv_fft`:
    conv2d_direct(x, w, b, stride, padding, dilation, groups) -> y
    conv2d_direct_backward(dy, x, w, stride, padding, dilation, groups) -> (dx, dw, db)
"""

from __future__ import annotations

import numpy as np

from .checks import conv_output_size

Pair = tuple[int, int]


def _window(xp: np.ndarray, oh: int, ow: int, kernel: Pair, stride: Pair, dilation: Pair) -> tuple[slice, slice]:
    """Rows and columns of the padded input read by output position (oh, ow)."""
    (kh, kw), (sh, sw), (dil_h, dil_w) = kernel, stride, dilation
    return (slice(oh * sh, oh * sh + dil_h * (kh - 1) + 1, dil_h),
            slice(ow * sw, ow * sw + dil_w * (kw - 1) + 1, dil_w))


def conv2d_direct(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> np.ndarray:
    """x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW). Slow reference."""
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    tg = t // groups  # output maps per group
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, stride[1], padding[1], dilation[1], who="conv2d")
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))  # zero padding
    y = np.zeros((n, t, oh, ow), np.result_type(x, w))
    for to in range(t):  # output map t
        s0 = (to // tg) * cg  # first input map of its group
        for i in range(oh):
            for j in range(ow):
                rows, cols = _window(xp, i, j, (kh, kw), stride, dilation)
                u = xp[:, s0:s0 + cg, rows, cols]  # (N, C/G, KH, KW): U(i, j, s) in the window
                y[:, to, i, j] = (u * w[to]).sum(axis=(1, 2, 3))  # sum_{i,j,s} K(., ., s, t) U(i, j, s)
        if b is not None:
            y[:, to] += b[to]
    return y


def conv2d_direct_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) by the chain rule, one output position at a time. Slow reference.

    Output y[n, t, oh, ow] read the window u = x_pad[n, group(t), rows, cols] with weights w[t], so

        dw[t]          += sum_n dy[n, t, oh, ow] * u        dz/dK(m, n, s, t) = sum_{k,l} dz/dy(k,l,t) x(k-m, l-n, s)
        dx_pad[window] += sum_t dy[n, t, oh, ow] * w[t]      dz/dx = W^T dz/dy
        db[t]          += sum_n dy[n, t, oh, ow]
    """
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    tg = t // groups
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    dxp = np.zeros(xp.shape, np.result_type(dy, w))
    dw = np.zeros(w.shape, np.result_type(dy, x))
    for g in range(groups):
        outs, ins = slice(g * tg, (g + 1) * tg), slice(g * cg, (g + 1) * cg)
        for i in range(oh):
            for j in range(ow):
                rows, cols = _window(xp, i, j, (kh, kw), stride, dilation)
                d = dy[:, outs, i, j]  # (N, T/G): dz/dy at this position
                dw[outs] += np.einsum("nt,nskl->tskl", d, xp[:, ins, rows, cols])
                dxp[:, ins, rows, cols] += np.einsum("nt,tskl->nskl", d, w[outs])
    db = dy.sum(axis=(0, 2, 3))
    return dxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd], dw, db
