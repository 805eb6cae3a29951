"""Convolution with the patches as ROWS, channels last: the im2col product turned around, for small maps.

`conv_im2col` lays a block's patches out as columns and multiplies W (T, C*KH*KW) @ cols (C*KH*KW, N*L).
On the small maps of a CIFAR net's deeper layers (16x16 and 8x8, 32 to 128 channels) that costs more than
it should, for two reasons:
- stride 1's wide rows compute (W + 2p) / W - 1 extra outputs per row, 12% on 16x16 maps, 25% on 8x8;
- OpenBLAS runs a product with few rows (T) and a long inner operand at 77-95 GFLOP/s here, but the
  same numbers as (N*L, K) @ (K, T) -- the long axis as the rows of a contiguous first operand -- at
  92-103 (float32, 1 thread, the shapes of `cifar_net`).
So here each block of images is first copied channels-last and padded, xr (Nb, Hp, Wp, C). A patch is then
KH*KW runs of C contiguous values, and they are copied side by side into one ROW per output pixel:

    rows[(n, oh, ow), (i, j, c)] = xr[n, oh + i*dil_h, ow + j*dil_w, c]        (Nb*OH*OW, KH*KW*C)
    y^T = rows @ w_rows,   w_rows[(i, j, c), t] = w[t, c, i, j]                (Nb*OH*OW, T)

and y^T is copied back to NCHW (adding the bias). No output is computed twice or thrown away.

Backward (stride 1) is `minicnn.kernels.conv_im2col._flipped_backward`'s algebra in the same layout: the rows of dy,
padded by E - 1 - p (E the dilated kernel extent), channels last, serve both products:

    dy_rows (Nb*H*W, KH*KW*T),   dy_rows[(n, h, w), (i, j, t)] = dy_pad[n, t, h + i*dil_h, w + j*dil_w]
    dx^T    = dy_rows @ w_back,   w_back[(i, j, t), c] = w[t, c, KH-1-i, KW-1-j]   (the flipped kernel)
    dw_back = dy_rows^T @ x^T     (KH*KW*T, C),  x^T = x channels last (Nb*H*W, C); dw is dw_back unflipped

The price is four transposing copies per layer and step (x and dy in, y and dx out), one pass each.
NCHW -> channels-last goes through a padded NCHW buffer whose rows have an odd length: read straight from
x, each gathered value would be H*W*4 bytes from the last, a power of two that maps every channel to the
same cache set (4.1 ms instead of 0.9 for CIFAR's (64, 32, 32, 32), measured).

`rows_layout_pays` says when this path is taken (`minicnn.kernels.conv_im2col` asks it); `conv2d_rows`
and `conv2d_rows_backward` compute any stride-1, ungrouped convolution (the backward also needs
padding <= E - 1) and are tested against the plain `minicnn.functional.conv_im2col`.
Measured figures: `python benchmarks/bench_vs_torch.py`, `python benchmarks/bench_paths.py rows`.
"""

from __future__ import annotations

import numpy as np

from minicnn.functional.checks import conv_output_size
from minicnn.functional.conv_im2col import full_padding

from .depthwise import _bias_grad

Pair = tuple[int, int]

BLOCK_VALUES = 2**19  # row entries built per block (2 MB of float32)
MIN_CHANNELS = 32  # fewer input channels: runs of C values are too short to copy fast (C=6: 2-4x slower)
MIN_WASTE = 0.10  # take this path when stride 1's wide rows would waste at least this share of the GEMM


SUPPORT = ("rows_layout_pays",)  # public, not a kernel: the predicate that picks this layout (tutorial 9)


def rows_layout_pays(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
             groups: int) -> bool:
    """True for the convolutions this layout runs faster: stride 1, ungrouped, C >= MIN_CHANNELS, and maps
    small enough that wide rows would waste >= MIN_WASTE ((W + 2p) / OW - 1: 16x16 maps with padding 1 and
    smaller; CIFAR's 32x32 layers stay in the blocked im2col, where the copies are cheaper and the waste 6%)."""
    c, padded_w = x_shape[1], x_shape[3] + 2 * padding[1]
    if stride != (1, 1) or groups != 1 or c < MIN_CHANNELS or dilation[1] * (w_shape[3] - 1) >= padded_w:
        return False  # not this layout's case, or no output column at all
    out_w = conv_output_size(x_shape[3], w_shape[3], 1, padding[1], dilation[1], who="conv2d")
    return padded_w / out_w - 1 >= MIN_WASTE


def _blocks(n: int, out_rows: int, per_row: int) -> list[tuple[int, int, int, int]]:
    """(n0, n1, r0, r1): images n0..n1-1, output rows r0..r1-1, about BLOCK_VALUES row entries each.
    Whole images when one fits, else bands of rows of one image."""
    per_image = out_rows * per_row
    if per_image <= BLOCK_VALUES:
        step = max(1, BLOCK_VALUES // per_image)
        return [(lo, min(lo + step, n), 0, out_rows) for lo in range(0, n, step)]
    band = max(1, BLOCK_VALUES // per_row)
    return [(i, i + 1, r, min(r + band, out_rows)) for i in range(n) for r in range(0, out_rows, band)]


class _ChannelsLast:
    """Padded channels-last copies of groups of images of a (N, C, H, W) array, one group at a time:
    `get(n0, n1)` -> (n1 - n0, H + 2 ph, W + 2 pw, C), zero borders. The group is copied once, however many
    blocks of rows read it."""

    def __init__(self, a: np.ndarray, padding: Pair, images: int):
        n, c, h, w = a.shape
        self.a, self.padding, self.current = a, padding, None
        self.padded = (h + 2 * padding[0], w + 2 * padding[1])
        size = self.padded[0] * self.padded[1]
        self.stage = np.zeros((images, c, size | 1), a.dtype)  # (B, C, odd row length >= Hp*Wp)
        self.out = np.empty((images, *self.padded, c), a.dtype)  # (B, Hp, Wp, C)

    def get(self, n0: int, n1: int) -> np.ndarray:
        if self.current != (n0, n1):
            m, (hp, wp), (ph, pw) = n1 - n0, self.padded, self.padding
            _, c, h, w = self.a.shape
            stage = self.stage[:m, :, :hp * wp]  # (m, C, Hp*Wp)
            stage.reshape(m, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = self.a[n0:n1]
            np.copyto(self.out[:m].reshape(m, hp * wp, c), stage.transpose(0, 2, 1))
            self.current = (n0, n1)
        return self.out[: n1 - n0]


def _patch_rows(xr: np.ndarray, r0: int, r1: int, out_w: int, kernel: Pair, dilation: Pair,
                buf: np.ndarray) -> np.ndarray:
    """Rows of the patches of output rows r0..r1-1 (stride 1): xr (m, Hp, Wp, C) -> (m*(r1-r0)*OW, KH*KW*C)."""
    m, c = xr.shape[0], xr.shape[3]
    (kh, kw), (dil_h, dil_w) = kernel, dilation
    rows = buf[: m * (r1 - r0) * out_w * kh * kw * c].reshape(m, r1 - r0, out_w, kh * kw, c)
    for i in range(kh):
        for j in range(kw):
            tap = xr[:, r0 + i * dil_h: r1 + i * dil_h, j * dil_w: j * dil_w + out_w]  # (m, R, OW, C)
            rows[:, :, :, i * kw + j] = tap
    return rows.reshape(-1, kh * kw * c)


def _check_rows_case(x_shape, w_shape, stride: Pair, groups: int, who: str) -> None:
    if stride != (1, 1) or groups != 1:
        raise ValueError(f"{who}: expected stride (1, 1) and groups 1 (the rows layout's case), got stride {stride} "
                         f"and groups={groups} for input {x_shape} and weight {w_shape}")


def conv2d_rows(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
                groups: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col` for stride 1, groups 1, patches as rows.

    x (N, C, H, W), w (T, C, KH, KW) -> y (N, T, OH, OW); `out`: an (N, T, OH, OW) array to write y into
    (returned), else a new one."""
    _check_rows_case(x.shape, w.shape, stride, groups, "conv2d_rows")
    return _rows_forward(x, w, b, padding, dilation, out)


def conv2d_rows_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                         dilation: Pair, groups: int, *, input_grad: bool = True,
                         out: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col_backward` for stride 1, groups 1.

    (dx, dw, db) from the rows of dy alone (see the module docstring); needs padding <= E - 1 per axis
    (E = dilation * (K - 1) + 1), so that dy is padded, not cropped. `input_grad=False` skips dx (None
    in its place); `out`: an (N, C, H, W) array to write dx into, else a new one."""
    _check_rows_case(x.shape, w.shape, stride, groups, "conv2d_rows_backward")
    dx, dw = _rows_backward(dy, x, w, padding, dilation, input_grad, out)
    return dx, dw, _bias_grad(dy)


def _rows_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair, dilation: Pair,
                  out: np.ndarray | None) -> np.ndarray:
    """y = conv2d(x, w, b), stride 1, groups 1, with the patches as rows (`conv2d_rows`)."""
    n, c, h, wd = x.shape
    t, _, kh, kw = w.shape
    oh = conv_output_size(h, kh, 1, padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, 1, padding[1], dilation[1], who="conv2d")
    dtype = np.result_type(x, w)
    w_rows = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype).reshape(kh * kw * c, t)  # ((i, j, c), T)
    y = np.empty((n, t, oh, ow), dtype) if out is None else out  # (N, T, OH, OW)
    if n == 0:
        return y
    blocks = _blocks(n, oh, ow * kh * kw * c)
    images = max(n1 - n0 for n0, n1, _, _ in blocks)
    pixels = images * max(r1 - r0 for _, _, r0, r1 in blocks) * ow  # output pixels per block, at most
    source = _ChannelsLast(x, padding, images)
    buf, res_buf = np.empty(pixels * kh * kw * c, x.dtype), np.empty(pixels * t, dtype)
    for n0, n1, r0, r1 in blocks:
        rows = _patch_rows(source.get(n0, n1), r0, r1, ow, (kh, kw), dilation, buf)  # (P, KH*KW*C)
        res = np.matmul(rows, w_rows, out=res_buf[: rows.shape[0] * t].reshape(-1, t))  # (P, T)
        res = res.reshape(n1 - n0, r1 - r0, ow, t).transpose(0, 3, 1, 2)  # (m, T, R, OW) view
        if b is None:
            y[n0:n1, :, r0:r1] = res
        else:
            np.add(res, b.reshape(1, t, 1, 1), out=y[n0:n1, :, r0:r1])
    return y


def _rows_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: Pair, dilation: Pair,
                   input_grad: bool, out: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw) of `conv2d_rows` (`conv2d_rows_backward`)."""
    n, c, h, wd = x.shape
    t, _, kh, kw = w.shape
    dy_pad = full_padding((kh, kw), padding, dilation)  # E - 1 - p per axis
    if min(dy_pad) < 0:
        raise ValueError(f"conv2d_rows_backward: expected padding <= dilation*(kernel-1) per axis, got {padding}")
    dtype = np.result_type(dy, x)
    w_back = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1), dtype).reshape(kh * kw * t, c)
    dw_back = np.zeros((kh * kw * t, c), dtype)  # ((i, j, t) flipped, C)
    dx = None if not input_grad else np.empty(x.shape, dtype) if out is None else out
    if n == 0:
        return dx, np.zeros(w.shape, dtype)
    blocks = _blocks(n, h, wd * kh * kw * t)
    images = max(n1 - n0 for n0, n1, _, _ in blocks)
    pixels = images * max(r1 - r0 for _, _, r0, r1 in blocks) * wd
    source, x_last = _ChannelsLast(dy, dy_pad, images), _ChannelsLast(x, (0, 0), images)
    buf, res_buf = np.empty(pixels * kh * kw * t, dtype), np.empty(pixels * c, dtype)
    for n0, n1, r0, r1 in blocks:
        rows = _patch_rows(source.get(n0, n1), r0, r1, wd, (kh, kw), dilation, buf)  # (P, KH*KW*T)
        if dx is not None:
            res = np.matmul(rows, w_back, out=res_buf[: rows.shape[0] * c].reshape(-1, c))  # (P, C)
            dx[n0:n1, :, r0:r1] = res.reshape(n1 - n0, r1 - r0, wd, c).transpose(0, 3, 1, 2)
        x_rows = x_last.get(n0, n1)[:, r0:r1].reshape(-1, c)  # (P, C)
        dw_back += rows.T @ x_rows
    dw = dw_back.reshape(kh, kw, t, c)[::-1, ::-1].transpose(2, 3, 0, 1)  # (T, C, KH, KW), unflipped
    return dx, np.ascontiguousarray(dw)
