"""The locally-connected layer: a convolution's receptive field with UNTIED weights.

The lecture's first idea (before weight tying):

    V(x, y, t) = sum_{i=x-d}^{x+d} sum_{j=y-d}^{y+d} sum_{s=1}^{S} K^{x,y,t}(i - x + d, j - y + d, s) U(i, j, s)

every output position (x, y) owns its kernel K^{x,y,t}. In code:

    y[n, t, oh, ow] = b[t, oh, ow] + sum_{s,i,j} w[oh, ow, t, s, i, j] * x_pad[n, s, oh*sh + i, ow*sw + j]

    x (N, C, H, W), w (OH, OW, T, C, KH, KW), b (T, OH, OW) -> y (N, T, OH, OW)

Computed as one small matrix multiply per output position, batched: the patches (OH*OW, N, C*KH*KW)
times the per-position weights (OH*OW, C*KH*KW, T). Backward: the multiplicative layer's rules at each
position, dw[p] = dy_p^T patches_p, dpatches_p = dy_p w_p, then the patches are added back onto the
pixels they were read from (loop over the KH*KW offsets only).
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, conv_output_size

Pair = tuple[int, int]


def locally_connected_output_size(input_size: Pair, kernel_size: Pair, stride: Pair, padding: Pair,
                                  who: str = "locally_connected2d") -> Pair:
    return (conv_output_size(input_size[0], kernel_size[0], stride[0], padding[0], who=who),
            conv_output_size(input_size[1], kernel_size[1], stride[1], padding[1], who=who))


def patches(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, out_size: Pair) -> np.ndarray:
    """x (N, C, H, W) -> patches (OH*OW, N, C*KH*KW), one copy per kernel offset."""
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (oh, ow) = kernel_size, stride, out_size
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    p = np.empty((oh, ow, n, c, kh, kw), x.dtype)  # (OH, OW, N, C, KH, KW)
    for i in range(kh):
        for j in range(kw):
            p[..., i, j] = xp[:, :, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw].transpose(2, 3, 0, 1)
    return p.reshape(oh * ow, n, c * kh * kw)


def locally_connected2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                        who: str = "locally_connected2d") -> np.ndarray:
    """y (N, T, OH, OW) of the untied-weight layer; see the module docstring."""
    check_array(x, who, 4, "(N, C, H, W)")
    oh, ow, t, c, kh, kw = w.shape
    if x.shape[1] != c:
        raise ValueError(f"{who}: expected input (N, {c}, H, W), got shape {x.shape}")
    out = locally_connected_output_size(x.shape[2:], (kh, kw), stride, padding, who)
    if out != (oh, ow):
        raise ValueError(f"{who}: weight is for a {oh}x{ow} output; input shape {x.shape} with stride {stride} "
                         f"and padding {padding} gives {out[0]}x{out[1]}")
    p = patches(x, (kh, kw), stride, padding, (oh, ow))  # (OH*OW, N, C*KH*KW)
    wm = w.reshape(oh * ow, t, c * kh * kw).transpose(0, 2, 1)  # (OH*OW, C*KH*KW, T)
    y = np.matmul(p, wm).transpose(1, 2, 0).reshape(x.shape[0], t, oh, ow)  # (N, T, OH, OW)
    if b is not None:
        y = y + b
    return y


def locally_connected2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair,
                                 padding: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db): dw[p] = dy_p^T patches_p, dx = scatter of dy_p w_p, db = sum_n dy."""
    n, c, h, wd = x.shape
    oh, ow, t, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    p = patches(x, (kh, kw), stride, padding, (oh, ow))  # (OH*OW, N, C*KH*KW)
    dyp = dy.reshape(n, t, oh * ow).transpose(2, 0, 1)  # (OH*OW, N, T)
    dw = np.matmul(dyp.transpose(0, 2, 1), p).reshape(w.shape)  # (OH*OW, T, C*KH*KW)
    dp = np.matmul(dyp, w.reshape(oh * ow, t, c * kh * kw))  # (OH*OW, N, C*KH*KW)
    dp = dp.reshape(oh, ow, n, c, kh, kw)
    dxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.result_type(dy, w))
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw] += dp[..., i, j].transpose(2, 3, 0, 1)
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, dy.sum(axis=0)
