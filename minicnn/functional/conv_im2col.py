"""Convolution by im2col: unfold every receptive field into a column, then ONE matrix multiply.

The lecture's idea: "reduce all S*T convolutions to a single matrix multiplication". Each output
position (n, oh, ow) reads a window of C*KH*KW input values; lay those values out as one column and

    cols (C*KH*KW, N*OH*OW)            the unfolded input (`im2col`)
    y    = w.reshape(T, C*KH*KW) @ cols     (T, N*OH*OW)  -> viewed as (N, T, OH, OW)

Backward is the same matrix multiply read the other way (the multiplicative layer's rules):

    dw    = dy_mat @ cols^T            (T, C*KH*KW)     dz/dW = dz/dy x^T
    dcols = w_mat^T @ dy_mat           (C*KH*KW, N*L)   dz/dx = W^T dz/dy, still in column form
    dx    = col2im(dcols)              every column entry is added back to the pixel it came from

or, with `data_grad="flipped"`, dx is computed as the lecture writes it: pad/dilate dy, then
correlate it with `flip_kernel(w)` (see `conv2d_im2col_backward`). Both give the same numbers.

Same signature as its siblings `conv_direct` and `conv_fft`:
    conv2d_im2col(x, w, b, stride, padding, dilation, groups) -> y
    conv2d_im2col_backward(dy, x, w, stride, padding, dilation, groups) -> (dx, dw, db)
with stride, padding, dilation already resolved to pairs (see `minicnn.functional.conv`).

`im2col` and `col2im` are the plain whole-batch versions, as the lecture states them. The layer path
(`conv2d_im2col`, `conv2d_im2col_backward`) computes the same products on BLOCKS of images:

- a block holds about BLOCK_VALUES column entries (2 MB of float32), so its columns are written and
  read back by the GEMM while still in cache; the whole batch's columns (75 MB for CIFAR's 32->32
  layer at batch 64) never exist, and the copy runs at cache speed instead of memory speed. With more
  than one BLAS thread the blocks are 8x larger (THREADED_BLOCK_VALUES): every GEMM call wakes the
  OpenBLAS threads, which then spin while Python copies the next block, and on a busy machine many
  small calls ran 3x slower per step than few large ones (cifar_net, 2 threads, load average 7.6);
- backward REBUILDS each block's columns from the cached x instead of keeping forward's: the copy is
  cheap in cache, and a layer then holds nothing but its input between calls;
- stride 1 uses "wide rows": the padded block is flattened per map (row length Wp), so tap (i, j) is the
  1-D shift i*dh*Wp + j*dw and each column row is ONE contiguous run of OH*Wp values (instead of OH runs
  of OW). Each output row then has Wp - OW extra values computed from wrapped-around pixels; they are
  dropped when the block is copied into y, and in backward dy gets zeros there, so they add nothing.
  col2im then adds, per channel and tap, ONE run covering the block's images (`_wide_col2im`);
- the GEMM runs once per image of the block (w (T, C*KH*KW) @ that image's columns, batched by
  np.matmul): OpenBLAS runs a product with few rows and very many columns slowly (LeNet's first layer,
  6 x 25 @ 25 x 20,608: 0.18 ms as one product, 0.10 as 23 per-image ones). The (Nb, T, L) result is
  copied straight into the NCHW output, dropping the wide columns and adding the bias in the same pass.
  The column path's weight gradient sums per-image products too (`_blocked_backward`: 27 x 18,496 @
  18,496 x 32, CIFAR's first layer, ran at 36 GFLOP/s as one product, 93 as 17 per-image ones);
- small maps with many channels (16x16 and smaller, C >= 32: where wide rows waste 12% or more) go to
  `conv_rows`, the same products with the patches as rows, channels last (see its docstring);
- depthwise convolution (groups == C == T) is NOT a matrix multiply: it runs as a shift-and-accumulate
  over the KH*KW taps, vectorised over N, C, OH, OW, on cache-sized blocks of images (`_depthwise`),
  spread over COPY_THREADS threads (NumPy releases the GIL in its arithmetic loops); other grouped
  convolutions (including channel multipliers T = m*C) use one GEMM per group and image.
With WORKERS > 1 (`minicnn --threads N`, or $MINICNN_WORKERS) a batch is cut into WORKERS parts, each a
whole convolution (its own blocks, scratch and products) on its own thread (`minicnn.threads.split_batch`),
BLAS then running one thread per part: copies and products of one part run beside the other's.
Convolutions under SPLIT_MIN_MACS multiply-adds stay whole (the hand-offs would cost more).
Measured figures: `python benchmarks/bench_vs_torch.py` (see its docstring).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.threads import configured_threads, configured_workers, own_threads, split_batch, split_blocks

from .checks import conv_output_size
from .conv_rows import conv2d_rows, conv2d_rows_backward, rows_pay
from .norm import channel_sums

Pair = tuple[int, int]

BLOCK_VALUES = 2**19  # column entries built per block of images (2 MB of float32), one thread
THREADED_BLOCK_VALUES = 2**22  # the same with several BLAS threads: fewer, larger GEMM calls (16 MB)
BLAS_THREADS = configured_threads()  # NumPy's BLAS threads, as the environment sets them (minicnn.threads)
COPY_THREADS = own_threads()  # threads of the depthwise loops: as many as BLAS or workers (minicnn.threads)
WORKERS = configured_workers()  # threads that split a batch between them (MINICNN_WORKERS; minicnn.threads)
SPLIT_MIN_MACS = 2**25  # smaller convolutions run as one part: LeNet-5's (7.5M and 15M multiply-adds at
#                         batch 64) lost 15% of a training step to the hand-offs when split in two
PARALLEL_MIN_VALUES = 2**17  # depthwise jobs smaller than this run in one thread (a hand-off costs ~50 us)
FLIP_RATIO = 2.0  # stride 1: backward from dy's columns (`_flipped_backward`) when T <= FLIP_RATIO * C
CACHE_VALUES = 2**19  # array entries per block of images in the depthwise loops (2 MB of float32; 2**17
#                      was 7-21% slower fwd+bwd on 16x16, 8x8 and 4x4 maps, batch 64, 1 thread)


def _by_image_blocks(fn, n: int, per_image: int) -> None:
    """fn(lo, hi) over blocks of images of about CACHE_VALUES entries (`minicnn.threads.split_blocks`).

    The depthwise loops are memory-bound multiply-adds over the KH*KW taps; on a cache-sized block the
    taps re-read it from cache instead of memory (looping over all taps for the whole batch streamed
    every array through memory KH*KW times, 3x slower, measured). Large jobs are cut into COPY_THREADS
    parts: NumPy releases the GIL in its loops, and each block writes only its own images."""
    split_blocks(fn, n, per_image, CACHE_VALUES, COPY_THREADS if n * per_image >= PARALLEL_MIN_VALUES else 1)


# ---- the plain versions: the whole batch at once ---------------------------------------------------------


def im2col(
    x: np.ndarray, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1),
) -> np.ndarray:
    """Unfold every receptive field of x into a column.

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW), row index (c, i, j), column index (n, oh, ow):

        cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    OH = floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1 (and OW alike). The Python loop runs over the
    KH*KW kernel offsets only; each iteration copies one strided slice of the whole batch.
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh, who="im2col")
    ow = conv_output_size(w, kw, sw, pw, dw, who="im2col")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    cols = np.empty((c, kh, kw, n, oh, ow), x.dtype)  # (C, KH, KW, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols[:, i, j] = xp[:, :, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel_size: Pair, stride: Pair = (1, 1),
    padding: Pair = (0, 0), dilation: Pair = (1, 1),
) -> np.ndarray:
    """The adjoint of `im2col`: add every column entry back onto the pixel it was read from.

    cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W). Overlapping windows *sum* (each input pixel feeds
    several outputs, so its gradient collects all of them). Loops over the KH*KW offsets only.
    """
    n, c, h, w = input_shape
    kh, kw = kernel_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh, who="col2im")
    ow = conv_output_size(w, kw, sw, pw, dw, who="col2im")
    cols = cols.reshape(c, kh, kw, n, oh, ow)  # (C, KH, KW, N, OH, OW)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)  # (N, C, Hp, Wp)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            dxp[:, :, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, ph:ph + h, pw:pw + w]


# ---- the layer path: blocks of images, columns rebuilt in backward ----------------------------------------


class _Plan(NamedTuple):
    """Sizes of one blocked call. Rows of the padded block buffer: Hp, plus one zero row on wide rows
    (the last tap's shift reads up to (KW-1)*dw values past the last padded row)."""

    c: int
    t: int
    groups: int
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    out: Pair  # (OH, OW)
    padded: Pair  # (Hp (+1 when wide), Wp): the block buffer's map size
    width: int  # values computed per output row: Wp on wide rows (stride 1), else OW
    block: int  # images per block

    @property
    def wide(self) -> bool:
        return self.stride == (1, 1)

    @property
    def length(self) -> int:
        """Column entries per image: OH * width."""
        return self.out[0] * self.width


def _plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
          groups: int) -> _Plan:
    n, c, h, wd = x_shape
    t, _, kh, kw = w_shape
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, stride[1], padding[1], dilation[1], who="conv2d")
    wide = stride == (1, 1)
    hp, wp = h + 2 * padding[0] + wide, wd + 2 * padding[1]
    width = wp if wide else ow
    budget = BLOCK_VALUES if BLAS_THREADS == 1 else THREADED_BLOCK_VALUES
    block = max(1, min(n, budget // (c * kh * kw * oh * width)))
    return _Plan(c, t, groups, (kh, kw), stride, padding, dilation, (oh, ow), (hp, wp), width, block)


class _Scratch:
    """The buffers of one blocked call, allocated once per call and reused by every block (never kept
    by a layer). `padded` (B, C, Hp(+1), Wp) has zero borders that no block writes."""

    def __init__(self, p: _Plan, dtype, grad_dtype=None, scatter: bool = False):
        kh, kw = p.kernel
        self.padded = np.zeros((p.block, p.c, *p.padded), dtype)  # (B, C, Hp(+1), Wp)
        self.cols = np.empty(p.c * kh * kw * p.block * p.length, dtype)  # flat (C*KH*KW * B*L)
        if grad_dtype is not None:  # backward
            self.dy = np.zeros(p.t * p.block * p.length, grad_dtype)  # flat (T * B*L); wide columns stay 0
        if scatter:  # backward with dx by col2im
            if p.wide:  # `_wide_col2im`'s channel-major buffers; the zeros beyond L are never written
                size = p.padded[0] * p.padded[1]
                self.dcols_cm = np.zeros((p.c * kh * kw, p.block, size), grad_dtype)  # (C*KH*KW, B, S)
                self.dx_cm = np.empty((p.c, (p.block + 1) * size), grad_dtype)  # (C, B*S + S)
            else:  # `_block_col2im`
                self.dcols = np.empty(p.c * kh * kw * p.block * p.length, grad_dtype)  # flat (C*KH*KW * B*L)
                self.dx_padded = np.empty((p.block, p.c, *p.padded), grad_dtype)  # (B, C, Hp, Wp)


def _block_columns(xs: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """im2col of a block of images xs (Nb, C, H, W) -> cols (C*KH*KW, Nb*L), L = OH * width."""
    nb, c, h, wd = xs.shape
    (kh, kw), (ph, pw), (dh, dw), (sh, sw) = p.kernel, p.padding, p.dilation, p.stride
    (oh, ow), wp, length = p.out, p.padded[1], p.length
    xp = s.padded[:nb]  # (Nb, C, Hp(+1), Wp)
    xp[:, :, ph:ph + h, pw:pw + wd] = xs
    cols = s.cols[: c * kh * kw * nb * length].reshape(c, kh, kw, nb, length)  # (C, KH, KW, Nb, L)
    flat = xp.reshape(nb, c, -1)  # (Nb, C, (Hp+1)*Wp): each padded map as one row
    cols6 = cols.reshape(c, kh, kw, nb, oh, p.width)  # (C, KH, KW, Nb, OH, OW) when not wide
    wide = p.wide
    for i in range(kh):
        for j in range(kw):
            if wide:  # one contiguous run of OH*Wp values per (image, channel)
                off = i * dh * wp + j * dw
                cols[:, i, j] = flat[:, :, off:off + length].transpose(1, 0, 2)  # (C, Nb, L)
            else:
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                tap = xp[:, :, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw]  # (Nb, C, OH, OW)
                cols6[:, i, j] = tap.transpose(1, 0, 2, 3)  # (C, Nb, OH, OW)
    return cols.reshape(c * kh * kw, nb * length)


def _block_dy(dys: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """dy of a block (Nb, T, OH, OW) -> (Nb, T, L), L = OH * width, zeros in the wide columns."""
    nb = dys.shape[0]
    (oh, ow), width = p.out, p.width
    dy_mat = s.dy[: p.t * nb * p.length].reshape(nb, p.t, oh, width)  # (Nb, T, OH, width)
    dy_mat[..., :ow] = dys  # the wide columns stay zero (s.dy starts zeroed): wrapped-around outputs get no gradient
    return dy_mat.reshape(nb, p.t, p.length)


def _block_col2im(dcols: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """col2im of a block, stride > 1: dcols (Nb, C, KH, KW, OH*OW) -> dx (Nb, C, H, W), a view into the
    scratch buffer; each tap adds its (Nb, C, OH, OW) values onto a strided slice of the padded block.
    (Stride 1 takes `_wide_col2im`.)"""
    c, (kh, kw), (ph, pw), (dh, dw), (sh, sw) = p.c, p.kernel, p.padding, p.dilation, p.stride
    (oh, ow), (hp, wp) = p.out, p.padded
    nb = dcols.shape[0]
    dxp = s.dx_padded[:nb]  # (Nb, C, Hp, Wp)
    dxp[...] = 0
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            tap = dxp[:, :, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw]  # (Nb, C, OH, OW)
            tap += dcols[:, :, i, j].reshape(nb, c, oh, ow)
    return dxp[:, :, ph:hp - ph, pw:wp - pw]


def conv2d_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> np.ndarray:
    """y = conv2d(x, w, b) via im2col + one GEMM per group, a block of images at a time (small maps with
    many channels: `conv_rows.conv2d_rows`, when `rows_pay`).

    x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW). Cost: the column copy,
    C*KH*KW*N*OH*OW values, plus 2*T*(C/G)*KH*KW*N*OH*OW flops of GEMM (about Wp/OW more on wide rows).
    Extra memory: one block's columns and GEMM result (about BLOCK_VALUES entries each), freed on return.
    """
    n, c = x.shape[:2]
    t = w.shape[0]
    if groups == c == t and c > 1:
        return _depthwise(x, w, b, stride, padding, dilation)
    oh = conv_output_size(x.shape[2], w.shape[2], stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(x.shape[3], w.shape[3], stride[1], padding[1], dilation[1], who="conv2d")
    y = np.empty((n, t, oh, ow), np.result_type(x, w))  # (N, T, OH, OW)
    split_batch(lambda lo, hi: _forward(x[lo:hi], w, b, stride, padding, dilation, groups, y[lo:hi]), n,
                _parts(y.size * w[0].size))
    return y


def _parts(macs: int) -> int:
    """How many parts `split_batch` cuts a convolution of `macs` multiply-adds into."""
    return WORKERS if macs >= SPLIT_MIN_MACS else 1


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
             groups: int, y: np.ndarray) -> None:
    """`conv2d_im2col` of the images x into y (N, T, OH, OW), a block of images at a time."""
    if rows_pay(x.shape, w.shape, stride, padding, dilation, groups):
        conv2d_rows(x, w, b, padding, dilation, out=y)
        return
    n, t = x.shape[0], w.shape[0]
    p = _plan(x.shape, w.shape, stride, padding, dilation, groups)
    (oh, ow), length = p.out, p.length
    s = _Scratch(p, x.dtype)
    res_buf = np.empty(t * p.block * length, y.dtype)
    w_mat = w.reshape(groups, t // groups, -1)  # (G, T/G, C/G*KH*KW)
    for n0 in range(0, n, p.block):
        nb = min(p.block, n - n0)
        cols = _block_columns(x[n0:n0 + nb], p, s)  # (C*KH*KW, Nb*L)
        # one product per image (see the module docstring); the result comes out image-major, as y is
        out = res_buf[: t * nb * length].reshape(groups, nb, t // groups, length)  # (G, Nb, T/G, L)
        res = np.matmul(w_mat[:, None], cols.reshape(groups, -1, nb, length).transpose(0, 2, 1, 3), out=out)
        res = res.transpose(1, 0, 2, 3).reshape(nb, t, oh, p.width)[..., :ow]  # (Nb, T, OH, OW); a copy if G > 1
        if b is None:
            y[n0:n0 + nb] = res
        else:
            np.add(res, b.reshape(1, t, 1, 1), out=y[n0:n0 + nb])


def conv2d_im2col_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, data_grad: str = "col2im",
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx, dw, db) for y = conv2d_im2col(x, w, b, ...), given dy (N, T, OH, OW).

        dw (T, C/G, KH, KW) = dy_mat @ cols^T  per group       (dz/dW = dz/dy x^T)
        db (T,)             = sum of dy over N, OH, OW
        dx (N, C, H, W)     = W^T dz/dy
    dx, with data_grad="col2im" (the default): col2im(w_mat^T @ dy_mat), the column gradient added back
    pixel by pixel (`_blocked_backward`) — except at stride 1 when T <= FLIP_RATIO * C, where the same
    numbers come faster from the columns of dy alone (`_flipped_backward`): dx as the full correlation
    with flip_kernel(w) (a GEMM whose inner dimension is T*KH*KW rather than T, and no scatter-add) and
    dw from the same columns, so x's columns are not rebuilt. CPU ms of backward, batch 64, 1 thread:
    CIFAR 32->64 on 16x16 18.6 vs 20.2, 64->128 on 8x8 18.7 vs 19.9; LeNet C3 6->16 (T/C = 2.7) 5.5 vs 2.5.
    data_grad="flipped" takes that lecture form at every stride; "none" skips dx (returns None).
    Depthwise convolutions take the tap-by-tap `_depthwise_backward`; small maps with many channels the
    same flipped-kernel algebra with patches as rows, channels last (`conv_rows`, when `rows_pay`).
    """
    c, t = x.shape[1], w.shape[0]
    if groups == c == t and c > 1:
        dx, dw, db = _depthwise_backward(dy, x, w, stride, padding, dilation)
        if data_grad == "flipped":
            dx = conv2d_input_grad_flipped(dy, x.shape, w, stride, padding, dilation, groups)
        return (None if data_grad == "none" else dx), dw, db
    db = bias_grad(dy)
    dx = None if data_grad == "none" else np.empty(x.shape, np.result_type(dy, x))

    def part(lo: int, hi: int) -> np.ndarray:
        return _backward(dy[lo:hi], x[lo:hi], w, stride, padding, dilation, groups, data_grad,
                         None if dx is None else dx[lo:hi])

    dws = split_batch(part, x.shape[0], _parts(dy.size * w[0].size))  # parts side by side, each a whole backward
    return dx, (dws[0] if len(dws) == 1 else sum(dws)), db


def _backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair,
              groups: int, data_grad: str, dx: np.ndarray | None) -> np.ndarray:
    """dw of the images x, and their dx written into `dx` (None: not wanted); see `conv2d_im2col_backward`."""
    c, t = x.shape[1], w.shape[0]
    flipped = data_grad == "flipped" or (data_grad == "col2im" and stride == (1, 1) and t <= c * FLIP_RATIO)
    # the rows of dy cost T/C times x's columns: worth it for dx and dw up to FLIP_RATIO, for dw alone up to 1
    worth = data_grad == "flipped" or t <= c * (1 if data_grad == "none" else FLIP_RATIO)
    full = _full_padding(w.shape, padding, dilation)
    if worth and rows_pay(x.shape, w.shape, stride, padding, dilation, groups) and full is not None:
        return conv2d_rows_backward(dy, x, w, padding, dilation, need_dx=dx is not None, out=dx)[1]
    if flipped and stride == (1, 1) and full is not None:
        return _flipped_backward(dy, x, w, padding, dilation, groups, dx)
    dw = _blocked_backward(dy, x, w, stride, padding, dilation, groups, dx if not flipped else None)
    if flipped and dx is not None:
        dx[...] = conv2d_input_grad_flipped(dy, x.shape, w, stride, padding, dilation, groups)
    return dw


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """db = dy summed over images and pixels, (N, T, OH, OW) -> (T,) in dy's dtype: `norm.channel_sums`
    (per-map sums, then over images), the same numbers as dy.sum(axis=(0, 2, 3)) at three times its speed."""
    return channel_sums(dy).astype(dy.dtype, copy=False)


def _full_padding(w_shape: tuple[int, ...], padding: Pair, dilation: Pair) -> Pair | None:
    """Stride 1: the padding of dy that makes dx a plain correlation with the flipped kernel, E - 1 - p per
    axis (E = dilated kernel extent); None when p > E - 1 (dx would need cropping, not padding)."""
    full = tuple(d * (k - 1) - p for k, p, d in zip(w_shape[2:], padding, dilation, strict=True))
    return None if min(full) < 0 else full


def _flipped_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: Pair, dilation: Pair,
                      groups: int, dx: np.ndarray) -> np.ndarray:
    """Stride 1: dw, and dx written into `dx` (N, C, H, W), from ONE set of columns, those of dy padded by E - 1 - p:

        dx = flip_kernel(w) (C, T/G*KH*KW) @ dy_cols                  (the lecture's flipped-kernel form)
        dw[t, c, i, j] = sum_q x[c, q] dy_cols[(t, KH-1-i, KW-1-j), q]   (q over the pixels of x)

    The second line is dw = correlation of x with dy rewritten on dx's grid: the tap (i, j) of the
    forward pairs x[q] with dy[q - (i, j) + p], which is dy_cols row (KH-1-i, KW-1-j). So x's columns
    are never built in backward; x is only copied onto dx's wide grid (zeros in the wide columns)."""
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    w_back = flip_kernel(w, groups)  # (C, T/G, KH, KW)
    p = _plan(dy.shape, w_back.shape, (1, 1), _full_padding(w.shape, padding, dilation), dilation, groups)
    dtype = np.result_type(dy, x)
    s = _Scratch(p, dtype)
    res_buf = np.empty(c * p.block * p.length, dtype)
    x_buf = np.empty(c * p.block * p.length, dtype)
    back_mat = w_back.reshape(groups, c // groups, -1)  # (G, C/G, T/G*KH*KW)
    dw_back = np.zeros((groups, t // groups * kh * kw, cg), dtype)  # (G, T/G*KH*KW, C/G)
    for n0 in range(0, n, p.block):
        nb = min(p.block, n - n0)
        cols = _block_columns(dy[n0:n0 + nb], p, s).reshape(groups, -1, nb * p.length)  # (G, T/G*KH*KW, Nb*L)
        out = res_buf[: c * nb * p.length].reshape(groups, c // groups, nb * p.length)  # (G, C/G, Nb*L)
        res = np.matmul(back_mat, cols, out=out).reshape(c, nb, h, p.width)  # (C, Nb, H, width)
        dx[n0:n0 + nb] = res[..., :wd].transpose(1, 0, 2, 3)
        x_wide = x_buf[: c * nb * p.length].reshape(c, nb, h, p.width)  # (C, Nb, H, width)
        x_wide[..., :wd] = x[n0:n0 + nb].transpose(1, 0, 2, 3)
        x_wide[..., wd:] = 0  # dx's wrapped-around columns pair with nothing
        dw_back += np.matmul(cols, x_wide.reshape(groups, cg, -1).transpose(0, 2, 1))  # (G, T/G*KH*KW, C/G)
    dw = dw_back.reshape(groups, t // groups, kh, kw, cg)[:, :, ::-1, ::-1]  # (G, T/G, KH, KW, C/G), unflipped
    return dw.transpose(0, 1, 4, 2, 3).reshape(w.shape)


def _wide_col2im(w_mat: np.ndarray, dy_n: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """dx of a block on wide rows (stride 1), channel-major: (Nb, C, H, W) view into the scratch.

    The column gradient w_mat^T @ dy_n is written per image into s.dcols_cm (C*KH*KW, B, S), S = the
    padded map's size (Hp+1)*Wp: each image's L = OH*Wp values, then S - L zeros. So for one (channel,
    tap) the block's images form ONE run of Nb*S values, and tap (i, j) is a single add of it, shifted by
    i*dh*Wp + j*dw, onto dx_cm (C, Nb*S + S): the zeros land on the next image's top rows and add
    nothing. C runs per tap instead of Nb*C (LeNet's C3: 6 rows of 5,040 values instead of 144 of 140)."""
    nb, groups = dy_n.shape[0], w_mat.shape[0]
    c, (kh, kw), (dh, dw) = p.c, p.kernel, p.dilation
    (hp1, wp), (ph, pw), length = p.padded, p.padding, p.length
    size = hp1 * wp
    cm = s.dcols_cm  # (C*KH*KW, B, S), zero beyond L in every image
    out = cm.reshape(groups, -1, p.block, size)[:, :, :nb, :length].transpose(0, 2, 1, 3)  # (G, Nb, C/G*KK, L)
    np.matmul(w_mat.transpose(0, 2, 1)[:, None], dy_n.transpose(1, 0, 2, 3), out=out)
    taps = cm.reshape(c, kh * kw, p.block * size)  # (C, KK, B*S)
    dxc = s.dx_cm[:, : nb * size + size]  # (C, Nb*S + S)
    dxc[...] = 0
    for i in range(kh):
        for j in range(kw):
            off = i * dh * wp + j * dw
            dxc[:, off:off + nb * size] += taps[:, i * kw + j, : nb * size]
    dxp = dxc[:, : nb * size].reshape(c, nb, hp1, wp)  # (C, Nb, Hp+1, Wp)
    return dxp[:, :, ph:hp1 - 1 - ph, pw:wp - pw].transpose(1, 0, 2, 3)


def _blocked_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                      dilation: Pair, groups: int, dx: np.ndarray | None) -> np.ndarray:
    """dw, a block of images at a time: rebuild the block's columns from x, then dw += dy_mat @ cols^T
    and, when `dx` (N, C, H, W) is given, dx_block = col2im(w_mat^T @ dy_mat) written into it."""
    n = x.shape[0]
    t = w.shape[0]
    p = _plan(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = np.result_type(dy, x)
    s = _Scratch(p, x.dtype, dtype, dx is not None)
    w_mat = w.reshape(groups, t // groups, -1)  # (G, T/G, C/G*KH*KW)
    dw_t = np.zeros(w_mat.transpose(0, 2, 1).shape, dtype)  # (G, C/G*KH*KW, T/G): dw transposed
    for n0 in range(0, n, p.block):
        nb = min(p.block, n - n0)
        cols = _block_columns(x[n0:n0 + nb], p, s)  # (C*KH*KW, Nb*L), rebuilt: forward kept nothing
        cols = cols.reshape(groups, -1, nb * p.length)  # (G, C/G*KH*KW, Nb*L)
        dy_n = _block_dy(dy[n0:n0 + nb], p, s).reshape(nb, groups, t // groups, p.length)  # (Nb, G, T/G, L)
        # dw^T += cols @ dy_mat^T  (C/G*KH*KW, T/G), summed image by image:
        # one product per image, the long L axis inner in both operands,
        # is what OpenBLAS runs fastest
        cols_n = cols.reshape(groups, -1, nb, p.length).transpose(0, 2, 1, 3)  # (G, Nb, C/G*KH*KW, L)
        dw_t += np.matmul(cols_n, dy_n.transpose(1, 0, 3, 2)).sum(axis=1)
        if dx is not None and p.wide:
            dx[n0:n0 + nb] = _wide_col2im(w_mat, dy_n, p, s)
        elif dx is not None:  # dcols = w_mat^T @ dy per image, written image-major: (Nb, G, C/G*KH*KW, L)
            dcols = s.dcols[: cols.size].reshape(nb, groups, -1, p.length)
            np.matmul(w_mat.transpose(0, 2, 1)[:, None], dy_n.transpose(1, 0, 2, 3), out=dcols.transpose(1, 0, 2, 3))
            dx[n0:n0 + nb] = _block_col2im(dcols.reshape(nb, p.c, *p.kernel, p.length), p, s)
    return dw_t.transpose(0, 2, 1).reshape(w.shape)


def flip_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The lecture's backward kernel K_back(i, j, t, s) = K(2d+1-i, 2d+1-j, s, t).

    w (T, C/G, KH, KW) -> w_back (C, T/G, KH, KW): a spatial flip (both axes) and, within each group,
    a swap of the in- and out-channel axes. Correlating the (padded, dilated) dy with w_back gives dx.
    """
    t, cg, kh, kw = w.shape
    wg = w.reshape(groups, t // groups, cg, kh, kw)  # (G, T/G, C/G, KH, KW)
    return wg.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1].reshape(groups * cg, t // groups, kh, kw).copy()


def dilate_and_pad(dy: np.ndarray, stride: Pair, pads: tuple[Pair, Pair]) -> np.ndarray:
    """Insert (stride-1) zeros between the entries of dy, then zero-pad (before, after) per axis.

    A negative pad crops instead. dy (N, T, OH, OW) -> (N, T, (OH-1)*sh + 1 + pads, ...).
    """
    n, t, oh, ow = dy.shape
    (sh, sw), ((top, bottom), (left, right)) = stride, pads
    dh_, dw_ = (oh - 1) * sh + 1, (ow - 1) * sw + 1
    full = np.zeros((n, t, dh_ + max(top, 0) + max(bottom, 0), dw_ + max(left, 0) + max(right, 0)), dy.dtype)
    full[:, :, max(top, 0): max(top, 0) + dh_: sh, max(left, 0): max(left, 0) + dw_: sw] = dy
    return full[:, :, max(-top, 0): full.shape[2] - max(-bottom, 0), max(-left, 0): full.shape[3] - max(-right, 0)]


def full_correlation_pads(input_shape: tuple[int, ...], kernel_size: Pair, stride: Pair, padding: Pair,
                          dilation: Pair, out_size: Pair) -> tuple[Pair, Pair]:
    """Zeros (before, after) per axis around the stride-dilated dy that turn dx into a 'valid' correlation.

    The forward window of extent E = d (K - 1) + 1 starts at -p; dx[i] collects dy[o] for every o whose
    window covers i: pad E - 1 - p before and E - 1 - p + r after, r = rows the last window leaves unread.
    """
    pads = []
    for size, k, s, p, d, o in zip(input_shape[2:], kernel_size, stride, padding, dilation, out_size, strict=True):
        extent = d * (k - 1) + 1
        rest = size + 2 * p - extent - s * (o - 1)  # rows/cols after the last window
        pads.append((extent - 1 - p, extent - 1 - p + rest))
    return pads[0], pads[1]


def conv2d_input_grad_flipped(
    dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride: Pair, padding: Pair,
    dilation: Pair, groups: int,
) -> np.ndarray:
    """dx as the lecture writes it: pad/dilate dy, then correlate with flip_kernel(w) (stride 1).

    A full correlation: dilate dy by the stride, pad it (`full_correlation_pads`), and correlate with
    the flipped, channel-swapped kernel at dilation d.
    """
    pads = full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    (top, bottom), (left, right) = pads
    if stride == (1, 1) and top == bottom >= 0 and left == right >= 0:  # no zeros to insert: pad in the conv
        return conv2d_im2col(dy, flip_kernel(w, groups), None, (1, 1), (top, left), dilation, groups)
    dyp = dilate_and_pad(dy, stride, pads)
    return conv2d_im2col(dyp, flip_kernel(w, groups), None, (1, 1), (0, 0), dilation, groups)


def _depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
               dilation: Pair) -> np.ndarray:
    """Depthwise convolution (groups == C == T) as shift-and-accumulate over the KH*KW taps:

        y[n, c, oh, ow] = b[c] + sum_{i,j} w[c, 0, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    Each tap is one vectorised multiply-add over (N, C, OH, OW); no matrix multiply (each channel
    would be a 1-row GEMM). Stride 1 takes the fast `_depthwise_wide` form.
    """
    if stride == (1, 1):
        return _depthwise_wide(x, w, b, padding, dilation)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh, who="conv2d")
    ow = conv_output_size(wd, kw, sw, pw, dw, who="conv2d")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    y = np.zeros((n, c, oh, ow), x.dtype)
    tmp = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            np.multiply(window, w[None, :, 0, i, j, None, None], out=tmp)
            y += tmp
    if b is not None:
        y += b.reshape(1, c, 1, 1)
    return y


def _depthwise_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                        dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of `_depthwise`: stride 1 by `_depthwise_wide_backward`, else tap by tap."""
    if stride == (1, 1):
        return _depthwise_wide_backward(dy, x, w, padding, dilation)
    return _depthwise_backward_taps(dy, x, w, stride, padding, dilation)


def _depthwise_backward_taps(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                             dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of `_depthwise`, tap by tap (any stride):

        dw[c, 0, i, j] = sum_{n,oh,ow} dy[n, c, oh, ow] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]
        dx_pad[n, c, oh*sh + i*dh, ow*sw + j*dw] += w[c, 0, i, j] * dy[n, c, oh, ow]
    """
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    dxp = np.zeros_like(xp)
    dw = np.empty(w.shape, x.dtype)
    tmp = np.empty(dy.shape, x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw_, j * dw_ + sw * (ow - 1) + 1, sw)
            dw[:, 0, i, j] = np.einsum("ncpq,ncpq->c", dy, xp[:, :, rows, cols])
            np.multiply(dy, w[None, :, 0, i, j, None, None], out=tmp)
            dxp[:, :, rows, cols] += tmp
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, bias_grad(dy)


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
    (kh, kw), (dh, dw) = kernel, dilation
    c = xf.shape[1]
    cols = np.empty((c, kh * kw, hi - lo, length), xf.dtype)  # (C, KH*KW, Nb, L)
    for i in range(kh):
        for j in range(kw):
            off = i * dh * wp + j * dw
            cols[:, i * kw + j] = xf[lo:hi, :, off:off + length].transpose(1, 0, 2)  # (C, Nb, L)
    return cols.reshape(c, kh * kw, -1)


def _depthwise_wide(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair,
                    dilation: Pair) -> np.ndarray:
    """Stride-1 depthwise on "wide rows": flatten every padded map (row length Wp); then tap (i, j) is the
    1-D shift by i*dh*Wp + j*dw, and each output row is computed over Wp columns of which the last
    Wp - OW are discarded. Per cache block of images the KH*KW shifted views are copied side by side
    (`_depthwise_wide_columns`) and each channel's output row is ONE vector-matrix product
    w[c] (1, KH*KW) @ cols[c] (KH*KW, Nb*L), batched over the channels by np.matmul: faster than KH*KW
    multiply-adds with a per-channel weight (NumPy's broadcast multiply ran at a third of its add's
    speed; forward 7.3 -> 4.2 ms CPU for 64 channels on 16x16, batch 64, 1 thread). One extra zero row keeps the
    last shift inside the buffer."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (ph, pw), (dh, dw) = padding, dilation
    wp = wd + 2 * pw
    oh, ow = h + 2 * ph - dh * (kh - 1), wp - dw * (kw - 1)
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
    """Backward of `_depthwise_wide` from the columns of dy alone (padded by E-1-p, E the dilated extent),
    as `_flipped_backward` does for full convolutions:

        dx[c] = w_flipped[c] (1, KH*KW) @ dy_cols[c]                      (`_depthwise_wide` of dy)
        dw[c, i, j] = sum_q x[c, q] dy_cols[c, (KH-1-i, KW-1-j), q]        (q over the pixels of x)

    with x copied onto dx's wide grid (zeros in the wide columns). A padding beyond E-1 (which reads
    only zeros) takes the tap-by-tap `_depthwise_backward_taps`."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    full = _full_padding(w.shape, padding, dilation)
    if full is None:
        return _depthwise_backward_taps(dy, x, w, (1, 1), padding, dilation)
    oh, ow = dy.shape[2:]
    wp = ow + 2 * full[1]  # dy's padded row length = dx's wide row length
    length = h * wp
    dyf = _wide_padded(dy, full, 1)  # (N, C, (OH + 2 full_h + 1)*Wp)
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
    return dx.reshape(n, c, h, wp)[:, :, :, :wd], dw, bias_grad(dy)
