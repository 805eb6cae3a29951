"""Lowering along one axis (MEC, Cho and Brand 2017): a stride-1 convolution with a third of im2col's copies.

A fast twin of the plain im2col convolution (`minicnn.functional.conv_im2col`) for stride 1 and groups 1
(any kernel, padding and dilation). im2col copies every input value KH*KW times, once per tap. Here the
padded image is copied only KW times, once per kernel COLUMN j, each copy shifted left by j*dil_w:

    low[(c, j), q] = xp_flat[c, q + j*dil_w]          xp_flat: the padded map (Hp, Wp) as one row

and the kernel ROWS i are read from it without any copy: on wide rows (output pixel (oh, ow) at column
q = oh*Wp + ow, as in `conv_im2col`) the tap (i, j) of every output is low[(c, j), q + i*dil_h*Wp], so
kernel row i's columns are the VIEW low[:, i*dil_h*Wp : i*dil_h*Wp + L] (L = OH*Wp): a matrix whose rows
lie one padded map apart, which BLAS reads in place (its leading dimension). Then

    Y (T, L) = sum over i of  W_i (T, C*KW) @ low[:, i*dil_h*Wp : i*dil_h*Wp + L]
    W_i[t, (c, j)] = w[t, c, i, j]: KH products of depth C*KW instead of one of depth C*KH*KW

The wrapped-around columns (ow >= OW) compute sums of pixels of neighbouring rows; they are dropped when
Y is copied into y, exactly as on `conv_im2col`'s wide rows. Price: the products are KH times as many,
each KH times shallower, and the KH - 1 partial sums are added (one pass over T*L values each).

Blocks of images: the lowered columns of `images_per_block` images at a time (about `block_values`
entries), one product per image and kernel row (np.matmul over the block), as in `conv_im2col`. With
more than one worker the batch is cut into `parts` run side by side (`minicnn.threads.split_batch`).
Forward only. Chosen only by the planner (`minicnn.kernels.conv`, candidate "mec"), where it measures faster.
Measured 2026-12-03, Intel Xeon (AVX-512, 2 MB L2 per core), batch 64, float32, 1 thread, `minicnn tune
cifar_net` (ms, mec against the best other candidate): forward 32->32 on 32x32 15.6 against 19.3, 64->64 on
16x16 13.5 against 14.9, LeNet C3 (5x5 6->16 on 14x14) 0.65 against 0.87 (a separate timing loop); 32->64 on
16x16 7.9 against 7.7, 3->32 on 32x32 4.3 against 2.9. A backward built the same way (dW_i = dY @ (row
view i)^T, dx as the forward of dy with the flipped kernel) won no layer of cifar_net or LeNet-5 there
(32->32 on 32x32: 34.6-40.7 ms against the default's 33.7-35.4; the dW products have only KH*T rows and
C*KW columns over a long sum, which BLAS runs slower than im2col's forms); with it and a second forward
block size (L2, which won nothing) the planner's count for cifar_net's first epoch rose to 3.6% (`python
benchmarks/bench_planning.py --model cifar_net`, busy machine), above the 3% budget: both were left out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.functional.checks import conv_output_size
from minicnn.threads import split_batch

Pair = tuple[int, int]

BLOCK_VALUES = 2**19  # lowered entries (and partial sums) per block of images, unless the caller says
SUPPORT = ("mec_applies", "images_per_block")  # the planner's side (minicnn.kernels.conv)


def mec_applies(w_shape: tuple[int, ...], stride: Pair, groups: int) -> bool:
    """True for the convolutions lowered here: stride (1, 1) and groups 1."""
    return stride == (1, 1) and groups == 1 and len(w_shape) == 4


class _Lowering(NamedTuple):
    """Sizes of one call: the padded map (Hp, Wp), L = OH*Wp wide output columns per image, S = Hp*Wp
    lowered columns per image, and `block` images per block."""

    c: int
    t: int
    kernel: Pair
    padding: Pair
    dilation: Pair
    out: Pair
    padded: Pair
    block: int

    @property
    def length(self) -> int:
        return self.out[0] * self.padded[1]

    @property
    def span(self) -> int:
        return self.padded[0] * self.padded[1]


def _lowering(x_shape, w_shape, padding: Pair, dilation: Pair, block_values: int) -> _Lowering:
    n, c, h, wd = x_shape
    t, _, kh, kw = w_shape
    out = (conv_output_size(h, kh, 1, padding[0], dilation[0], who="conv2d"),
           conv_output_size(wd, kw, 1, padding[1], dilation[1], who="conv2d"))
    padded = (h + 2 * padding[0], wd + 2 * padding[1])
    per_image = c * kw * padded[0] * padded[1] + 2 * t * out[0] * padded[1]  # lowered + partial sums
    block = max(1, min(n, block_values // per_image))
    return _Lowering(c, t, (kh, kw), padding, dilation, out, padded, block)


def images_per_block(x_shape, w_shape, padding: Pair, dilation: Pair, block_values: int = BLOCK_VALUES) -> int:
    """How many images one block holds (the planner drops block sizes that give the same count)."""
    return _lowering(x_shape, w_shape, padding, dilation, block_values).block


def _check(x_shape, w_shape, stride: Pair, groups: int, who: str) -> None:
    if not mec_applies(w_shape, stride, groups):
        raise ValueError(f"{who}: expected stride (1, 1) and groups 1, got stride {stride}, groups={groups} "
                         f"(input {tuple(x_shape)}, weight {tuple(w_shape)})")


def _row_weights(w: np.ndarray) -> np.ndarray:
    """w (T, C, KH, KW) -> W_i stacked (KH, T, C*KW), W_i[t, c*KW + j] = w[t, c, i, j]."""
    t, c, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, t, c * kw)


class _Buffer:
    """The lowered block (B, C, KW, S), zeroed once: the padding borders and the tail of each shifted copy
    are never written, so they stay zero for every block."""

    def __init__(self, p: _Lowering, dtype):
        self.low = np.zeros((p.block, p.c, p.kernel[1], p.span), dtype)

    def lower(self, xs: np.ndarray, p: _Lowering) -> np.ndarray:
        """xs (Nb, C, H, W) -> the block's lowered columns (Nb, C*KW, S)."""
        nb, c, h, wd = xs.shape
        (ph, pw), (hp, wp), dil_w, span = p.padding, p.padded, p.dilation[1], p.span
        low = self.low[:nb]
        low[:, :, 0].reshape(nb, c, hp, wp)[:, :, ph:ph + h, pw:pw + wd] = xs  # column j = 0: the padded maps
        for j in range(1, p.kernel[1]):
            shift = j * dil_w
            low[:, :, j, :span - shift] = low[:, :, 0, shift:]
        return low.reshape(nb, c * p.kernel[1], span)


def _row_view(low: np.ndarray, p: _Lowering, i: int) -> np.ndarray:
    """Kernel row i's columns of every image of the block: (Nb, C*KW, L), a view (no copy)."""
    start = i * p.dilation[0] * p.padded[1]
    return low[:, :, start:start + p.length]


def conv2d_mec(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
               groups: int, *, block_values: int = BLOCK_VALUES, parts: int = 1) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col` for stride 1, groups 1: x (N, C, H, W),
    w (T, C, KH, KW), b (T,) or None -> y (N, T, OH, OW) (module docstring); `parts`: the batch cut into that
    many parts run side by side. ValueError for any other convolution."""
    _check(x.shape, w.shape, stride, groups, "conv2d_mec")
    dtype = np.result_type(x, w)
    p = _lowering(x.shape, w.shape, padding, dilation, block_values)
    y = np.empty((x.shape[0], p.t, *p.out), dtype)
    rows = _row_weights(w.astype(dtype, copy=False))
    split_batch(lambda lo, hi: _forward(x[lo:hi].astype(dtype, copy=False), rows, b, p, y[lo:hi]), x.shape[0],
                parts)
    return y


def _forward(x: np.ndarray, rows: np.ndarray, b: np.ndarray | None, p: _Lowering, y: np.ndarray) -> None:
    """y (N, T, OH, OW) of the images x, block by block: Y = sum_i W_i @ row view i, then the wide columns
    dropped (and the bias added) in the copy to y."""
    n, (oh, ow), wp, length = x.shape[0], p.out, p.padded[1], p.length
    buf = _Buffer(p, y.dtype)
    acc = np.empty((p.block, p.t, length), y.dtype)
    part = np.empty_like(acc)
    for n0 in range(0, n, p.block):
        nb = min(p.block, n - n0)
        low = buf.lower(x[n0:n0 + nb], p)
        total, extra = acc[:nb], part[:nb]
        np.matmul(rows[0], _row_view(low, p, 0), out=total)  # (Nb, T, L)
        for i in range(1, p.kernel[0]):
            np.matmul(rows[i], _row_view(low, p, i), out=extra)
            total += extra
        wide = total.reshape(nb, p.t, oh, wp)[..., :ow]
        if b is None:
            y[n0:n0 + nb] = wide
        else:
            np.add(wide, b.reshape(-1, 1, 1), out=y[n0:n0 + nb])
