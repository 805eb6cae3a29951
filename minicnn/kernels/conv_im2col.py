"""Fast twin of the plain im2col convolution (`minicnn.functional.conv_im2col`): the same products, blocked.

The plain version unfolds the whole batch and runs one product per group; the kernels here
(`conv2d_im2col`, `conv2d_im2col_backward`, `conv2d_input_grad_flipped`) compute the same products on
BLOCKS of images. Their optimisations, with the measurements that justified them:

- a block holds about BLOCK_VALUES column entries (2 MB of float32), so its columns are written and
  read back by the GEMM while still in cache; the whole batch's columns (75 MB for CIFAR's 32->32
  layer at batch 64) never exist, and the copy runs at cache speed instead of memory speed. With more
  than one BLAS thread the blocks are 8x larger (THREADED_BLOCK_VALUES): every GEMM call wakes the
  OpenBLAS threads, which then spin while Python copies the next block, and on a busy machine many
  small calls ran 3x slower per step than few large ones (cifar_net, 2 threads, load average 7.6);
- backward REBUILDS each block's columns from the cached x instead of keeping forward's: the copy is
  cheap in cache, and a layer then holds nothing but its input between calls;
- stride 1 uses "wide rows": the padded block is flattened per map (row length Wp), so tap (i, j) is the
  1-D shift i*dil_h*Wp + j*dil_w and each column row is ONE contiguous run of OH*Wp values (instead of OH runs
  of OW). Each output row then has Wp - OW extra values computed from wrapped-around pixels; they are
  dropped when the block is copied into y, and in backward dy gets zeros there, so they add nothing.
  col2im then adds, per kernel row and per channel and kernel column, ONE run covering the block's
  images (`_wide_col2im`: KH + KW adds instead of KH*KW);
- the GEMM runs once per image of the block (w (T, C*KH*KW) @ that image's columns, batched by
  np.matmul): OpenBLAS runs a product with few rows and very many columns slowly (LeNet's first layer,
  6 x 25 @ 25 x 20,608: 0.18 ms as one product, 0.10 as 23 per-image ones). The (Nb, T, L) result is
  copied straight into the NCHW output, dropping the wide columns and adding the bias in the same pass.
  The column path's weight gradient sums per-image products too (`_blocked_backward`: 27 x 18,496 @
  18,496 x 32, CIFAR's first layer, ran at 36 GFLOP/s as one product, 93 as 17 per-image ones);
- backward at stride 1 with T <= FLIP_RATIO * C takes dx AND dw from the columns of dy alone
  (`_flipped_backward`, the lecture's flipped-kernel form): no scatter-add, x's columns not rebuilt.
  CPU ms of backward, batch 64, 1 thread: CIFAR 32->64 on 16x16 18.6 vs 20.2, 64->128 on 8x8 18.7 vs
  19.9; LeNet C3 6->16 (T/C = 2.7) 5.5 vs 2.5 (so not there);
- small maps with many channels (16x16 and smaller, C >= 32: where wide rows waste 12% or more) go to
  `minicnn.kernels.conv_rows`, the same products with the patches as rows, channels last;
- depthwise convolution (groups == C == T) is NOT a matrix multiply: `minicnn.kernels.depthwise`; other
  grouped convolutions (including channel multipliers T = m*C) use one GEMM per group and image.
With more than one worker (`minicnn --threads N`, or $MINICNN_WORKERS, read at each call through
`minicnn.threads.configured_workers`) a batch is cut into that many parts, each a whole convolution (its
own blocks, scratch and products) on its own thread (`minicnn.threads.split_batch`), BLAS then running
one thread per part: copies and products of one part run beside the other's. Convolutions under
SPLIT_MIN_MACS multiply-adds stay whole (the hand-offs would cost more).
Every choice above is the DEFAULT (`Variant()`, what `minicnn --no-tune` runs); a `Variant` asks for
another path, block size, row layout or split, and the planner in `minicnn.kernels.conv` times them
on this machine (block sizes there come from its caches, `minicnn.kernels.machine.cache_sizes`).
Measured figures: `python benchmarks/bench_vs_torch.py` (see its docstring).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.functional.checks import conv_output_size
from minicnn.functional.conv_im2col import dilate_and_pad, flip_kernel, full_correlation_pads, full_padding
from minicnn.threads import configured_threads, configured_workers, split_batch

from .conv_rows import _rows_backward, _rows_forward, rows_layout_pays
from .depthwise import _bias_grad, _is_depthwise, conv2d_depthwise, conv2d_depthwise_backward

Pair = tuple[int, int]

BLOCK_VALUES = 2**19  # column entries built per block of images (2 MB of float32), one thread
THREADED_BLOCK_VALUES = 2**22  # the same with several BLAS threads: fewer, larger GEMM calls (16 MB)
SPLIT_MIN_MACS = 2**25  # smaller convolutions run as one part: LeNet-5's (7.5M and 15M multiply-adds at
#                         batch 64) lost 15% of a training step to the hand-offs when split in two
FLIP_RATIO = 2.0  # stride 1: backward from dy's columns (`_flipped_backward`) when T <= FLIP_RATIO * C
PATHS = ("auto", "columns", "rows", "flipped")
SUPPORT = ("block_values", "images_per_block", "flippable")  # what the planner asks (minicnn.kernels.conv)


class Variant(NamedTuple):
    """One way the kernels here compute the same numbers; the planner (`minicnn.kernels.conv`) picks one.

    path          "auto": the fixed rules above (`rows_layout_pays`, FLIP_RATIO), the `--no-tune` default;
                  "columns": the blocked im2col columns (forward and `_blocked_backward`); "rows": the
                  channels-last rows (`minicnn.kernels.conv_rows`, stride 1, groups 1); "flipped":
                  backward from dy's columns (`_flipped_backward`, stride 1)
    block_values  column entries per block; None: BLOCK_VALUES (THREADED_BLOCK_VALUES with several BLAS threads)
    wide          stride 1: wide rows (True) or one run of OW values per output row (False)
    parts         how many parts the batch is split into; None: `_parts`'s rule"""

    path: str = "auto"
    block_values: int | None = None
    wide: bool = True
    parts: int | None = None


DEFAULT = Variant()


class _Plan(NamedTuple):
    """Sizes of one blocked call. Rows of the padded block buffer: Hp, plus one zero row on wide rows
    (the last tap's shift reads up to (KW-1)*dil_w values past the last padded row)."""

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
    wide: bool  # stride 1 on wide rows

    @property
    def length(self) -> int:
        """Column entries per image: OH * width."""
        return self.out[0] * self.width


def _plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
          groups: int, variant: Variant = DEFAULT) -> _Plan:
    n, c, h, wd = x_shape
    t, _, kh, kw = w_shape
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, stride[1], padding[1], dilation[1], who="conv2d")
    wide = stride == (1, 1) and variant.wide
    hp, wp = h + 2 * padding[0] + wide, wd + 2 * padding[1]
    width = wp if wide else ow
    block = max(1, min(n, block_values(variant) // (c * kh * kw * oh * width)))
    return _Plan(c, t, groups, (kh, kw), stride, padding, dilation, (oh, ow), (hp, wp), width, block, wide)


def block_values(variant: Variant = DEFAULT) -> int:
    """Column entries per block of `variant`: its own, else BLOCK_VALUES (THREADED_BLOCK_VALUES with
    several BLAS threads)."""
    if variant.block_values is not None:
        return variant.block_values
    return BLOCK_VALUES if configured_threads() == 1 else THREADED_BLOCK_VALUES


def images_per_block(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair,
                     dilation: Pair, groups: int, variant: Variant = DEFAULT) -> int:
    """How many images one block of the columns path holds under `variant` (the planner drops block sizes
    that give the same count: the same computation)."""
    return _plan(x_shape, w_shape, stride, padding, dilation, groups, variant).block


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
            if p.wide:  # `_wide_col2im`'s channel-major buffers
                size = p.padded[0] * p.padded[1]
                self.dlow = np.zeros((p.c * kw, p.block, size), grad_dtype)  # (C*KW, B, S)
                self.dpart = np.empty((p.groups, p.block, p.c // p.groups * kw, p.length), grad_dtype)
                self.dx_cm = np.empty((p.c, (p.block + 1) * size), grad_dtype)  # (C, B*S + S)
            else:  # `_block_col2im`
                self.dcols = np.empty(p.c * kh * kw * p.block * p.length, grad_dtype)  # flat (C*KH*KW * B*L)
                self.dx_padded = np.empty((p.block, p.c, *p.padded), grad_dtype)  # (B, C, Hp, Wp)


def _block_columns(xs: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """im2col of a block of images xs (Nb, C, H, W) -> cols (C*KH*KW, Nb*L), L = OH * width."""
    nb, c, h, wd = xs.shape
    (kh, kw), (ph, pw), (dil_h, dil_w), (sh, sw) = p.kernel, p.padding, p.dilation, p.stride
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
                off = i * dil_h * wp + j * dil_w
                cols[:, i, j] = flat[:, :, off:off + length].transpose(1, 0, 2)  # (C, Nb, L)
            else:
                rows = slice(i * dil_h, i * dil_h + sh * (oh - 1) + 1, sh)
                tap = xp[:, :, rows, j * dil_w: j * dil_w + sw * (ow - 1) + 1: sw]  # (Nb, C, OH, OW)
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
    c, (kh, kw), (ph, pw), (dil_h, dil_w), (sh, sw) = p.c, p.kernel, p.padding, p.dilation, p.stride
    (oh, ow), (hp, wp) = p.out, p.padded
    nb = dcols.shape[0]
    dxp = s.dx_padded[:nb]  # (Nb, C, Hp, Wp)
    dxp[...] = 0
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dil_h, i * dil_h + sh * (oh - 1) + 1, sh)
            tap = dxp[:, :, rows, j * dil_w: j * dil_w + sw * (ow - 1) + 1: sw]  # (Nb, C, OH, OW)
            tap += dcols[:, :, i, j].reshape(nb, c, oh, ow)
    return dxp[:, :, ph:hp - ph, pw:wp - pw]


def conv2d_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, variant: Variant = DEFAULT,
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col`: im2col + GEMM, a block of images at a time.

    x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW). Depthwise convolutions go to
    `minicnn.kernels.depthwise`, small maps with many channels to `minicnn.kernels.conv_rows` (when
    `rows_layout_pays`). Cost: the column copy, C*KH*KW*N*OH*OW values, plus 2*T*(C/G)*KH*KW*N*OH*OW
    flops of GEMM (about Wp/OW more on wide rows). Extra memory: one block's columns and GEMM result
    (about BLOCK_VALUES entries each), freed on return. `variant`: which of these ways (`Variant`);
    the default follows the fixed rules, and any other path still sends depthwise convolutions to
    `minicnn.kernels.depthwise` unless it is "columns".
    """
    n, t = x.shape[0], w.shape[0]
    if _is_depthwise(x.shape, w.shape, groups) and variant.path != "columns":
        return conv2d_depthwise(x, w, b, stride, padding, dilation, groups)
    oh = conv_output_size(x.shape[2], w.shape[2], stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(x.shape[3], w.shape[3], stride[1], padding[1], dilation[1], who="conv2d")
    y = np.empty((n, t, oh, ow), np.result_type(x, w))  # (N, T, OH, OW)
    parts = _parts(y.size * w[0].size) if variant.parts is None else variant.parts
    split_batch(lambda lo, hi: _forward(x[lo:hi], w, b, stride, padding, dilation, groups, y[lo:hi], variant), n,
                parts)
    return y


def _parts(macs: int) -> int:
    """How many parts `split_batch` cuts a convolution of `macs` multiply-adds into: the configured
    workers (`minicnn.threads.configured_workers`, read now), or 1 under SPLIT_MIN_MACS."""
    return configured_workers() if macs >= SPLIT_MIN_MACS else 1


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
             groups: int, y: np.ndarray, variant: Variant = DEFAULT) -> None:
    """`conv2d_im2col` of the images x into y (N, T, OH, OW), a block of images at a time."""
    rows = rows_layout_pays(x.shape, w.shape, stride, padding, dilation, groups) if variant.path == "auto" \
        else variant.path == "rows"
    if rows:
        _check_rows(x.shape, w.shape, stride, groups, "conv2d_im2col")
        _rows_forward(x, w, b, padding, dilation, y)
        return
    n, t = x.shape[0], w.shape[0]
    p = _plan(x.shape, w.shape, stride, padding, dilation, groups, variant)
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
    *, input_grad: bool = True, variant: Variant = DEFAULT,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col_backward`: (dx, dw, db), blocked.

        dw (T, C/G, KH, KW) = dy_mat @ cols^T  per group       (dz/dW = dz/dy x^T)
        db (T,)             = sum of dy over N, OH, OW
        dx (N, C, H, W)     = W^T dz/dy: col2im(w_mat^T @ dy_mat), the column gradient added back pixel
                              by pixel (`_blocked_backward`), or at stride 1 with T <= FLIP_RATIO * C the
                              full correlation with flip_kernel(w) from the columns of dy (`_flipped_backward`)
    `input_grad=False` skips dx (None in its place): a network's first layer has no use for dL/dimage.
    Depthwise convolutions take `minicnn.kernels.depthwise`; small maps with many channels the
    flipped-kernel algebra with patches as rows (`minicnn.kernels.conv_rows`, when `rows_layout_pays`).
    `variant` (`Variant`): "columns", "rows" or "flipped" take that path whatever the rules say ("rows" and
    "flipped" need stride 1 and padding <= E - 1, "flipped" also dx wanted: ValueError otherwise).
    """
    if _is_depthwise(x.shape, w.shape, groups) and variant.path != "columns":
        dx, dw, db = conv2d_depthwise_backward(dy, x, w, stride, padding, dilation, groups)
        return (dx if input_grad else None), dw, db
    db = _bias_grad(dy)
    dx = np.empty(x.shape, np.result_type(dy, x)) if input_grad else None

    def part(lo: int, hi: int) -> np.ndarray:
        return _backward(dy[lo:hi], x[lo:hi], w, stride, padding, dilation, groups, None if dx is None else dx[lo:hi],
                         variant)

    parts = _parts(dy.size * w[0].size) if variant.parts is None else variant.parts
    dws = split_batch(part, x.shape[0], parts)  # parts side by side, each a whole backward
    return dx, (dws[0] if len(dws) == 1 else sum(dws)), db


def flippable(w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair) -> bool:
    """True when backward may take dx and dw from dy's columns: stride 1 and padding <= E - 1 per axis."""
    return stride == (1, 1) and min(full_padding(w_shape[2:], padding, dilation)) >= 0


def _check_rows(x_shape, w_shape, stride: Pair, groups: int, who: str) -> None:
    if stride != (1, 1) or groups != 1:
        raise ValueError(f"{who}: the rows layout expects stride (1, 1) and groups 1, got stride {stride} and "
                         f"groups={groups} for input {x_shape} and weight {w_shape}")


def _backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair,
              groups: int, dx: np.ndarray | None, variant: Variant = DEFAULT) -> np.ndarray:
    """dw of the images x, and their dx written into `dx` (None: not wanted); see `conv2d_im2col_backward`."""
    if variant.path != "auto":
        if variant.path in ("rows", "flipped") and not flippable(w.shape, stride, padding, dilation):
            raise ValueError(f"conv2d_im2col_backward: the {variant.path!r} path expects stride (1, 1) and padding "
                             f"<= dilation*(kernel-1), got stride {stride}, padding {padding}")
        if variant.path == "rows":
            _check_rows(x.shape, w.shape, stride, groups, "conv2d_im2col_backward")
            return _rows_backward(dy, x, w, padding, dilation, dx is not None, dx)[1]
        if variant.path == "flipped":
            if dx is None:
                raise ValueError("conv2d_im2col_backward: the 'flipped' path expects input_grad=True")
            return _flipped_backward(dy, x, w, padding, dilation, groups, dx, variant)
        return _blocked_backward(dy, x, w, stride, padding, dilation, groups, dx, variant)
    c, t = x.shape[1], w.shape[0]
    flippable_here = flippable(w.shape, stride, padding, dilation)
    # the rows of dy cost T/C times x's columns: they pay for dx and dw up to FLIP_RATIO, for dw alone up to 1
    dy_columns_pay = t <= c * (FLIP_RATIO if dx is not None else 1)
    if flippable_here and dy_columns_pay and rows_layout_pays(x.shape, w.shape, stride, padding, dilation, groups):
        return _rows_backward(dy, x, w, padding, dilation, dx is not None, dx)[1]
    if flippable_here and dx is not None and t <= c * FLIP_RATIO:
        return _flipped_backward(dy, x, w, padding, dilation, groups, dx)
    return _blocked_backward(dy, x, w, stride, padding, dilation, groups, dx)


def _flipped_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: Pair, dilation: Pair,
                      groups: int, dx: np.ndarray, variant: Variant = DEFAULT) -> np.ndarray:
    """Stride 1: dw, and dx written into `dx` (N, C, H, W), from ONE set of columns, those of dy padded by E - 1 - p:

        dx = flip_kernel(w) (C, T/G*KH*KW) @ dy_cols                  (the lecture's flipped-kernel form)
        dw[t, c, i, j] = sum_q x[c, q] dy_cols[(t, KH-1-i, KW-1-j), q]   (q over the pixels of x)

    The second line is dw = correlation of x with dy rewritten on dx's grid: the tap (i, j) of the
    forward pairs x[q] with dy[q - (i, j) + p], which is dy_cols row (KH-1-i, KW-1-j). So x's columns
    are never built in backward; x is only copied onto dx's wide grid (zeros in the wide columns)."""
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    w_back = flip_kernel(w, groups)  # (C, T/G, KH, KW)
    p = _plan(dy.shape, w_back.shape, (1, 1), full_padding(w.shape[2:], padding, dilation), dilation, groups,
              variant._replace(wide=True))  # dx's grid is built on wide rows
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


def _col2im_rows(w: np.ndarray, groups: int) -> np.ndarray:
    """w (T, C/G, KH, KW) -> W_i^T per kernel row and group, (KH, G, 1, C/G*KW, T/G) (the 1 broadcasts
    over a block's images): `_wide_col2im`'s weights, made once per backward call."""
    t, cg, kh, kw = w.shape
    rows = w.reshape(groups, t // groups, cg, kh, kw).transpose(3, 0, 2, 4, 1)  # (KH, G, C/G, KW, T/G)
    return rows.reshape(kh, groups, 1, cg * kw, t // groups)


def _wide_col2im(rows: np.ndarray, dy_n: np.ndarray, p: _Plan, s: _Scratch) -> np.ndarray:
    """dx of a block on wide rows (stride 1), channel-major: (Nb, C, H, W) view into the scratch.

    col2im adds each tap's column gradient w^T dy back, shifted by the tap's offset i*dil_h*Wp + j*dil_w.
    The offsets split into a row part and a column part, so the KH*KW shifted adds become KH + KW
    (the transpose of `minicnn.kernels.conv_mec`'s lowering):

        dlow[(c, j), n, q + i*dil_h*Wp] += (W_i^T dy_n)[(c, j), q]     W_i[t, (c, j)] = w[t, c, i, j], q < L
        dx_cm[c, m + j*dil_w] += dlow[(c, j), m]                        m over the block's Nb*S values

    dlow holds per image S = (Hp+1)*Wp values; the row shifts stay inside them (i*dil_h*Wp + L <= S - Wp).
    The second line adds ONE run of Nb*S values per (channel, kernel column): the last Wp values of each
    image are zeros (dy is zero in the wide columns) and land on the next image's top rows, adding
    nothing. (LeNet's C3, 5x5: 10 adds per block instead of 25.) `rows`: `_col2im_rows` of the weight."""
    nb, groups = dy_n.shape[0], p.groups
    c, (kh, kw), (dil_h, dil_w) = p.c, p.kernel, p.dilation
    (hp1, wp), (ph, pw), length = p.padded, p.padding, p.length
    size = hp1 * wp
    dy_g = dy_n.transpose(1, 0, 2, 3)  # (G, Nb, T/G, L)
    low = s.dlow.reshape(groups, c // groups * kw, p.block, size)[:, :, :nb]  # (G, C/G*KW, Nb, S)
    low[..., length:] = 0  # kernel row 0 writes [0, L); the later rows add beyond it
    np.matmul(rows[0], dy_g, out=low[..., :length].transpose(0, 2, 1, 3))
    part = s.dpart[:, :nb]  # (G, Nb, C/G*KW, L)
    for i in range(1, kh):
        np.matmul(rows[i], dy_g, out=part)
        start = i * dil_h * wp
        low[..., start:start + length] += part.transpose(0, 2, 1, 3)
    runs = s.dlow.reshape(c, kw, p.block * size)  # (C, KW, B*S)
    dxc = s.dx_cm[:, : nb * size + size]  # (C, Nb*S + S)
    dxc[...] = 0
    for j in range(kw):
        off = j * dil_w
        dxc[:, off:off + nb * size] += runs[:, j, : nb * size]
    dxp = dxc[:, : nb * size].reshape(c, nb, hp1, wp)  # (C, Nb, Hp+1, Wp)
    return dxp[:, :, ph:hp1 - 1 - ph, pw:wp - pw].transpose(1, 0, 2, 3)


def _blocked_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                      dilation: Pair, groups: int, dx: np.ndarray | None, variant: Variant = DEFAULT) -> np.ndarray:
    """dw, a block of images at a time: rebuild the block's columns from x, then dw += dy_mat @ cols^T
    and, when `dx` (N, C, H, W) is given, dx_block = col2im(w_mat^T @ dy_mat) written into it."""
    n = x.shape[0]
    t = w.shape[0]
    p = _plan(x.shape, w.shape, stride, padding, dilation, groups, variant)
    dtype = np.result_type(dy, x)
    s = _Scratch(p, x.dtype, dtype, dx is not None)
    w_mat = w.reshape(groups, t // groups, -1)  # (G, T/G, C/G*KH*KW)
    dw_t = np.zeros(w_mat.transpose(0, 2, 1).shape, dtype)  # (G, C/G*KH*KW, T/G): dw transposed
    rows = _col2im_rows(w, groups) if dx is not None and p.wide else None
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
            dx[n0:n0 + nb] = _wide_col2im(rows, dy_n, p, s)
        elif dx is not None:  # dcols = w_mat^T @ dy per image, written image-major: (Nb, G, C/G*KH*KW, L)
            dcols = s.dcols[: cols.size].reshape(nb, groups, -1, p.length)
            np.matmul(w_mat.transpose(0, 2, 1)[:, None], dy_n.transpose(1, 0, 2, 3), out=dcols.transpose(1, 0, 2, 3))
            dx[n0:n0 + nb] = _block_col2im(dcols.reshape(nb, p.c, *p.kernel, p.length), p, s)
    return dw_t.transpose(0, 2, 1).reshape(w.shape)


def conv2d_input_grad_flipped(
    dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride: Pair, padding: Pair,
    dilation: Pair, groups: int,
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_input_grad_flipped`: the blocked `conv2d_im2col`
    of the dilated, padded dy with flip_kernel(w). At stride 1 with padding <= E - 1 the zeros around dy are
    the convolution's own padding (no padded copy of dy)."""
    pads = full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    (top, bottom), (left, right) = pads
    if stride == (1, 1) and top == bottom >= 0 and left == right >= 0:
        return conv2d_im2col(dy, flip_kernel(w, groups), None, (1, 1), (top, left), dilation, groups)
    return conv2d_im2col(dilate_and_pad(dy, stride, pads), flip_kernel(w, groups), None, (1, 1), (0, 0), dilation,
                         groups)
