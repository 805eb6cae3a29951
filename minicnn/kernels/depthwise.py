"""Depthwise convolution (groups == C == T) as shift-and-accumulate over the KH*KW taps: four kernels.

Fast twin of the plain im2col convolution for the depthwise case: depthwise convolution is NOT a
matrix multiply (each channel would be a 1-row GEMM), so it runs as per-tap multiply-adds vectorised over
N, C, OH, OW, on cache-sized blocks of images, spread over threads (NumPy releases the GIL in its loops):

    `_depthwise_strided`        forward, stride > 1: one multiply-add per tap over the whole batch
    `_depthwise_wide`           forward, stride 1: "wide rows" (every padded map flattened, tap (i, j) is a
                                1-D shift), the KH*KW shifted views copied side by side per cache block and
                                each channel's output ONE (1, KH*KW) @ (KH*KW, Nb*L) product (forward 7.3 ->
                                4.2 ms CPU for 64 channels on 16x16, batch 64, 1 thread, against per-tap
                                multiply-adds with a per-channel weight)
    `_depthwise_backward_taps`  backward, any stride (and padding > E - 1): tap by tap
    `_depthwise_wide_backward`  backward, stride 1: from the columns of dy alone, padded by E - 1 - p

Optimisations: blocks of about CACHE_VALUES entries (2**17 was 7-21% slower fwd+bwd on 16x16, 8x8 and 4x4
maps, batch 64, 1 thread; looping over all taps for the whole batch streamed every array through memory
KH*KW times, 3x slower); jobs under PARALLEL_MIN_VALUES stay on one thread (a hand-off costs ~50 us);
the thread count is `minicnn.threads.own_threads()`, read at each call.
"""

from __future__ import annotations

import numpy as np

from minicnn.functional.checks import conv_output_size
from minicnn.functional.conv_im2col import full_padding
from minicnn.threads import own_threads, split_blocks

Pair = tuple[int, int]

CACHE_VALUES = 2**19  # array entries per block of images in the depthwise loops (2 MB of float32)
PARALLEL_MIN_VALUES = 2**17  # depthwise jobs smaller than this run in one thread (a hand-off costs ~50 us)


def _is_depthwise(x_shape: tuple[int, ...], w_shape: tuple[int, ...], groups: int) -> bool:
    """True when groups == C == T > 1: one filter per channel, the case these kernels take."""
    return groups == x_shape[1] == w_shape[0] and groups > 1


def _bias_grad(dy: np.ndarray) -> np.ndarray:
    """db = dy summed over images and pixels, (N, T, OH, OW) -> (T,) in dy's dtype: each map summed alone
    (one contiguous row each), then the N*T map sums added in float64; the reduction over axes (0, 2, 3)
    of an NCHW array ran at a third of this speed."""
    n, t, oh, ow = dy.shape
    per_map = np.einsum("ij->i", dy.reshape(n * t, oh * ow))  # (N*T,)
    return per_map.reshape(n, t).sum(axis=0, dtype=np.float64).astype(dy.dtype, copy=False)


def _by_image_blocks(fn, n: int, per_image: int) -> None:
    """fn(lo, hi) over blocks of images of about CACHE_VALUES entries (`minicnn.threads.split_blocks`).

    The depthwise loops are memory-bound multiply-adds over the KH*KW taps; on a cache-sized block the
    taps re-read it from cache instead of memory (looping over all taps for the whole batch streamed
    every array through memory KH*KW times, 3x slower, measured). Large jobs are cut into own_threads()
    parts: NumPy releases the GIL in its loops, and each block writes only its own images."""
    split_blocks(fn, n, per_image, CACHE_VALUES, own_threads() if n * per_image >= PARALLEL_MIN_VALUES else 1)


ALGORITHMS = ("auto", "taps")  # "auto": wide rows at stride 1 (the default); "taps": tap by tap at any stride


def _check_algorithm(algorithm: str, who: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{who}: expected algorithm one of {ALGORITHMS}, got {algorithm!r}")


def conv2d_depthwise(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, algorithm: str = "auto",
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col` for depthwise convolutions (groups == C == T).

        y[n, c, oh, ow] = b[c] + sum_{i,j} w[c, 0, i, j] * x_pad[n, c, oh*sh + i*dil_h, ow*sw + j*dil_w]

    Stride 1 takes `_depthwise_wide`, other strides (and algorithm="taps") `_depthwise_strided`."""
    if not _is_depthwise(x.shape, w.shape, groups):
        raise ValueError(f"conv2d_depthwise: expected groups == C == T > 1, got input {x.shape}, weight {w.shape} "
                         f"and groups={groups}")
    _check_algorithm(algorithm, "conv2d_depthwise")
    if stride == (1, 1) and algorithm == "auto":
        return _depthwise_wide(x, w, b, padding, dilation)
    return _depthwise_strided(x, w, b, stride, padding, dilation)


def conv2d_depthwise_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, algorithm: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col_backward` for depthwise convolutions.

    (dx, dw, db): stride 1 with padding <= E - 1 by `_depthwise_wide_backward`, else (and with
    algorithm="taps") tap by tap."""
    if not _is_depthwise(x.shape, w.shape, groups):
        raise ValueError(f"conv2d_depthwise_backward: expected groups == C == T > 1, got input {x.shape}, "
                         f"weight {w.shape} and groups={groups}")
    _check_algorithm(algorithm, "conv2d_depthwise_backward")
    if algorithm == "auto" and stride == (1, 1) and min(full_padding(w.shape[2:], padding, dilation)) >= 0:
        return _depthwise_wide_backward(dy, x, w, padding, dilation)
    return _depthwise_backward_taps(dy, x, w, stride, padding, dilation)


def _depthwise_strided(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                       dilation: Pair) -> np.ndarray:
    """Depthwise forward, any stride: each tap is one vectorised multiply-add over (N, C, OH, OW)."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (ph, pw), (dil_h, dil_w) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dil_h, who="conv2d")
    ow = conv_output_size(wd, kw, sw, pw, dil_w, who="conv2d")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    y = np.zeros((n, c, oh, ow), x.dtype)
    tmp = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i * dil_h: i * dil_h + sh * (oh - 1) + 1: sh,
                        j * dil_w: j * dil_w + sw * (ow - 1) + 1: sw]  # (N, C, OH, OW)
            np.multiply(window, w[None, :, 0, i, j, None, None], out=tmp)
            y += tmp
    if b is not None:
        y += b.reshape(1, c, 1, 1)
    return y


def _depthwise_backward_taps(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                             dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of a depthwise convolution, tap by tap (any stride, any padding):

        dw[c, 0, i, j] = sum_{n,oh,ow} dy[n, c, oh, ow] * x_pad[n, c, oh*sh + i*dil_h, ow*sw + j*dil_w]
        dx_pad[n, c, oh*sh + i*dil_h, ow*sw + j*dil_w] += w[c, 0, i, j] * dy[n, c, oh, ow]
    """
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (ph, pw), (dil_h, dil_w) = stride, padding, dilation
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    dxp = np.zeros_like(xp)
    dw = np.empty(w.shape, x.dtype)
    tmp = np.empty(dy.shape, x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dil_h, i * dil_h + sh * (oh - 1) + 1, sh)
            cols = slice(j * dil_w, j * dil_w + sw * (ow - 1) + 1, sw)
            dw[:, 0, i, j] = np.einsum("ncpq,ncpq->c", dy, xp[:, :, rows, cols])
            np.multiply(dy, w[None, :, 0, i, j, None, None], out=tmp)
            dxp[:, :, rows, cols] += tmp
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, _bias_grad(dy)


def _wide_padded(x: np.ndarray, padding: Pair, extra_rows: int) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, C, (Hp + extra_rows) * Wp), each padded map flattened."""
    n, c, h, wd = x.shape
    ph, pw = padding
    xp = np.zeros((n, c, h + 2 * ph + extra_rows, wd + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    return xp.reshape(n, c, -1)


def _depthwise_wide_columns(xf: np.ndarray, lo: int, hi: int, kernel: Pair, dilation: Pair, wp: int,
                            length: int) -> np.ndarray:
    """The KH*KW shifted wide-row views of images lo..hi-1 of xf (N, C, (Hp+1)*Wp), copied side by side:
    cols (C, KH*KW, Nb*L), L = OH*Wp, so that each channel's taps form one small (KH*KW, Nb*L) matrix."""
    (kh, kw), (dil_h, dil_w) = kernel, dilation
    c = xf.shape[1]
    cols = np.empty((c, kh * kw, hi - lo, length), xf.dtype)  # (C, KH*KW, Nb, L)
    for i in range(kh):
        for j in range(kw):
            off = i * dil_h * wp + j * dil_w
            cols[:, i * kw + j] = xf[lo:hi, :, off:off + length].transpose(1, 0, 2)  # (C, Nb, L)
    return cols.reshape(c, kh * kw, -1)


def _depthwise_wide(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair,
                    dilation: Pair) -> np.ndarray:
    """Stride-1 depthwise on "wide rows": flatten every padded map (row length Wp); then tap (i, j) is the
    1-D shift by i*dil_h*Wp + j*dil_w, and each output row is computed over Wp columns of which the last
    Wp - OW are discarded. Per cache block of images the KH*KW shifted views are copied side by side
    (`_depthwise_wide_columns`) and each channel's output row is ONE vector-matrix product
    w[c] (1, KH*KW) @ cols[c] (KH*KW, Nb*L), batched over the channels by np.matmul: faster than KH*KW
    multiply-adds with a per-channel weight (NumPy's broadcast multiply ran at a third of its add's
    speed; forward 7.3 -> 4.2 ms CPU for 64 channels on 16x16, batch 64, 1 thread). One extra zero row keeps the
    last shift inside the buffer."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    wp = wd + 2 * padding[1]
    oh = conv_output_size(h, kh, 1, padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, 1, padding[1], dilation[1], who="conv2d")
    xf = _wide_padded(x, padding, 1)  # (N, C, (Hp+1)*Wp)
    length = oh * wp
    y = np.empty((n, c, length), x.dtype)  # (N, C, OH*Wp): wide output rows
    w_rows = w.reshape(c, 1, kh * kw)  # (C, 1, KH*KW)

    def taps(lo: int, hi: int) -> None:  # images lo..hi-1; the block and its columns stay in cache
        cols = _depthwise_wide_columns(xf, lo, hi, (kh, kw), dilation, wp, length)  # (C, KH*KW, Nb*L)
        out = np.matmul(w_rows, cols).reshape(c, hi - lo, length)  # (C, Nb, L)
        if b is None:
            y[lo:hi] = out.transpose(1, 0, 2)
        else:
            np.add(out.transpose(1, 0, 2), b.reshape(1, c, 1), out=y[lo:hi])

    _by_image_blocks(taps, n, c * kh * kw * length)
    return y.reshape(n, c, oh, wp)[:, :, :, :ow]  # drop the wrap-around columns (a view)


def _depthwise_wide_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: Pair,
                             dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of `_depthwise_wide` from the columns of dy alone (padded by E-1-p, E the dilated extent,
    `full_padding`; needs p <= E - 1), as `conv_im2col._flipped_backward` does for full convolutions:

        dx[c] = w_flipped[c] (1, KH*KW) @ dy_cols[c]                      (`_depthwise_wide` of dy)
        dw[c, i, j] = sum_q x[c, q] dy_cols[c, (KH-1-i, KW-1-j), q]        (q over the pixels of x)

    with x copied onto dx's wide grid (zeros in the wide columns)."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    dy_pad = full_padding(w.shape[2:], padding, dilation)  # E - 1 - p per axis, >= 0 here
    ow = dy.shape[3]
    wp = ow + 2 * dy_pad[1]  # dy's padded row length = dx's wide row length
    length = h * wp
    dyf = _wide_padded(dy, dy_pad, 1)  # (N, C, (OH + 2 (E_h - 1 - p_h) + 1)*Wp)
    dx = np.empty((n, c, length), np.result_type(dy, x))  # (N, C, H*Wp): wide rows
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1]).reshape(c, 1, kh * kw)  # (C, 1, KH*KW)
    partial_dw = {}  # dw (flipped taps) summed over each block's images, added up below

    def taps(lo: int, hi: int) -> None:  # images lo..hi-1; the block and its columns stay in cache
        nb = hi - lo
        cols = _depthwise_wide_columns(dyf, lo, hi, (kh, kw), dilation, wp, length)  # (C, KH*KW, Nb*L)
        dx[lo:hi] = np.matmul(flipped, cols).reshape(c, nb, length).transpose(1, 0, 2)
        x_wide = np.zeros((c, nb, h, wp), x.dtype)  # (C, Nb, H, Wp)
        x_wide[..., :wd] = x[lo:hi].transpose(1, 0, 2, 3)
        partial_dw[lo] = np.matmul(cols, x_wide.reshape(c, -1, 1))  # (C, KH*KW, 1)

    _by_image_blocks(taps, n, c * kh * kw * length)
    dw = sum(partial_dw.values()).reshape(c, kh, kw)[:, ::-1, ::-1].reshape(w.shape)
    return dx.reshape(n, c, h, wp)[:, :, :, :wd], dw, _bias_grad(dy)
