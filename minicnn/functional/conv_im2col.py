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

Optimisations (measured on the shared 2-core machine, see `minicnn bench conv`):
- the padded input is stored channel-major (C, N, Hp, Wp), so every one of the KH*KW copies that
  build the columns is a plain strided slice with no transposition;
- the columns are (C, KH, KW, N, OH, OW) = (C*KH*KW, N*OH*OW): one GEMM for the whole batch per group,
  and the weight gradient `dy_mat @ cols.T` needs no transpose copy (BLAS reads cols transposed);
- the output is returned as a (N, T, OH, OW) *view* of the (T, N, OH, OW) GEMM result: no copy, and the
  next convolution's channel-major padding copy becomes a straight copy;
- an optional `workspace` dict (owned by a layer) keeps the padded-input and column buffers between
  calls (no fresh page faults) and lets backward reuse the columns built in forward;
- stride-1 col2im works on "wide rows" (`_col2im_wide_add`): one long contiguous add per tap instead of
  OH short rows, which cut the LeNet layers' backward about 3x (NumPy's per-row overhead dominated);
- the KH*KW copies and adds are split over images into COPY_THREADS threads (NumPy releases the GIL
  in its copy loops), so they use both cores like the GEMM does;
- depthwise convolution (groups == C == T) is NOT a matrix multiply: it runs as a shift-and-accumulate
  over the KH*KW taps, vectorised over N, C, OH, OW, on cache-sized blocks of images (`_depthwise`);
  other grouped convolutions (including channel multipliers T = m*C) use one GEMM per group;
- a memory budget (`MEMORY_BUDGET_BYTES`, or `set_memory_budget`) bounds the column matrix: larger
  batches are processed in chunks of images; backward's column gradient is built a block of images at a
  time (`DX_BLOCK_VALUES`), so a layer holds about one column matrix plus two copies of dy between calls.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .checks import conv_output_size

Pair = tuple[int, int]

MEMORY_BUDGET_BYTES = 256 * 2**20  # largest column matrix built at once; bigger batches are chunked
COPY_THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0) or os.cpu_count() or 1  # as BLAS
PARALLEL_MIN_VALUES = 2**17  # copies smaller than this run in one thread (a thread hand-off costs ~50 us)
DX_BLOCK_VALUES = 2**21  # column-gradient entries computed at once in backward (8 MB of float32)
CACHE_VALUES = 2**17  # array entries per block of images in the depthwise loops (512 KB of float32 = L2)
_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (process id, pool): a forked child makes its own


def set_memory_budget(nbytes: int) -> int:
    """Set the column-matrix budget in bytes; returns the previous value."""
    global MEMORY_BUDGET_BYTES
    if nbytes < 1:
        raise ValueError(f"set_memory_budget: expected a positive number of bytes, got {nbytes}")
    previous, MEMORY_BUDGET_BYTES = MEMORY_BUDGET_BYTES, int(nbytes)
    return previous


def _by_image_blocks(fn, n: int, per_image: int, cache_blocks: bool = False) -> None:
    """Run fn(lo, hi) over blocks of images [lo, hi) covering range(n).

    Large jobs spread the blocks over COPY_THREADS threads: NumPy releases the GIL inside its copy and
    arithmetic loops, and each block writes only its own images. With `cache_blocks`, blocks hold about
    CACHE_VALUES array entries (`per_image` per image), so a kernel-offset loop inside fn re-reads its
    block from cache instead of memory: the depthwise multiply-adds are memory-bound, and looping over
    all taps for the whole batch streamed every array through memory KH*KW times (3x slower, measured).
    The im2col copies gain nothing from it (they stream the columns out anyway) and pay the extra calls.
    """
    global _POOL
    threads = COPY_THREADS if n * per_image >= PARALLEL_MIN_VALUES else 1
    step = max(1, CACHE_VALUES // max(per_image, 1)) if cache_blocks else -(-n // threads)
    blocks = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    threads = min(threads, len(blocks))
    if threads <= 1:
        for lo, hi in blocks:
            fn(lo, hi)
        return
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(COPY_THREADS))

    def run(k: int) -> None:
        for lo, hi in blocks[k::threads]:
            fn(lo, hi)

    list(_POOL[1].map(run, range(threads)))


def _buffer(workspace: dict | None, key: str, shape: tuple[int, ...], dtype, zero: bool = False) -> np.ndarray:
    """A scratch array, reused from `workspace` when one of the same shape/dtype is there."""
    if workspace is not None:
        buf = workspace.get(key)
        if buf is not None and buf.shape == shape and buf.dtype == dtype:
            return buf
    buf = np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    if workspace is not None:
        workspace[key] = buf
    return buf


def pad_channel_major(x: np.ndarray, padding: Pair, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded copy laid out (C, N, H + 2 ph, W + 2 pw).

    `out`, when given, must have zero borders (only the interior is written).
    """
    n, c, h, w = x.shape
    ph, pw = padding
    if out is None:
        out = np.zeros((c, n, h + 2 * ph, w + 2 * pw), x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x.transpose(1, 0, 2, 3)  # (C, N, H, W)
    return out


def im2col(
    x: np.ndarray, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1),
    out: np.ndarray | None = None, *, x_padded: np.ndarray | None = None,
) -> np.ndarray:
    """Unfold every receptive field of x into a column.

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW), row index (c, i, j), column index (n, oh, ow):

        cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    OH = floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1 (and OW alike). The Python loop runs over the
    KH*KW kernel offsets only; each iteration copies one strided slice of the whole batch.
    `x_padded` (C, N, Hp, Wp) may be passed to skip the padding step (see `pad_channel_major`).
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh, who="im2col")
    ow = conv_output_size(w, kw, sw, pw, dw, who="im2col")
    xp = pad_channel_major(x, padding) if x_padded is None else x_padded  # (C, N, Hp, Wp)
    if out is None:
        out = np.empty((c, kh, kw, n, oh, ow), x.dtype)
    cols = out.reshape(c, kh, kw, n, oh, ow)  # (C, KH, KW, N, OH, OW)

    def copy(lo: int, hi: int) -> None:  # images lo..hi-1
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols[:, i, j, lo:hi] = xp[:, lo:hi, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw]

    _by_image_blocks(copy, n, cols.size // n)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel_size: Pair, stride: Pair = (1, 1),
    padding: Pair = (0, 0), dilation: Pair = (1, 1),
) -> np.ndarray:
    """The adjoint of `im2col`: add every column entry back onto the pixel it was read from.

    cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W). Overlapping windows *sum* (each input pixel feeds
    several outputs, so its gradient collects all of them). Loops over the KH*KW offsets only.
    The result is a (N, C, H, W) view of a channel-major (C, N, H, W) array.
    """
    n, c, h, w = input_shape
    kh, kw = kernel_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh, who="col2im")
    ow = conv_output_size(w, kw, sw, pw, dw, who="col2im")
    cols = cols.reshape(c, kh, kw, n, oh, ow)  # (C, KH, KW, N, OH, OW)
    dxp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), cols.dtype)  # (C, N, Hp, Wp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)  # (N, C, H, W) view


def _chunk_size(n: int, per_image_bytes: int) -> int:
    return max(1, min(n, MEMORY_BUDGET_BYTES // max(per_image_bytes, 1)))


def conv2d_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, workspace: dict | None = None,
) -> np.ndarray:
    """y = conv2d(x, w, b) via im2col + one GEMM per group.

    x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW) (a view of a (T, N, OH, OW)
    array). Cost: the column copy, C*KH*KW*N*OH*OW values, plus 2*T*(C/G)*KH*KW*N*OH*OW flops of GEMM.
    Extra memory: the column matrix, at most MEMORY_BUDGET_BYTES (else the batch is chunked).
    `workspace` (optional dict) keeps buffers between calls and the columns for backward.
    """
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    if groups == c == t and c > 1:
        return _depthwise(x, w, b, stride, padding, dilation)
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, stride[1], padding[1], dilation[1], who="conv2d")
    y = np.empty((t, n, oh, ow), x.dtype)  # (T, N, OH, OW)
    w_mat = w.reshape(groups, t // groups, cg * kh * kw)  # (G, T/G, C/G*KH*KW)
    step = _chunk_size(n, c * kh * kw * oh * ow * x.itemsize)
    for n0 in range(0, n, step):
        xs = x[n0:n0 + step]
        ns = xs.shape[0]
        xp = _buffer(workspace, "x_pad", (c, ns, h + 2 * padding[0], wd + 2 * padding[1]), x.dtype, zero=True)
        pad_channel_major(xs, padding, out=xp)
        cols = _buffer(workspace, "cols", (c * kh * kw, ns * oh * ow), x.dtype)
        im2col(xs, (kh, kw), stride, padding, dilation, out=cols, x_padded=xp)
        cols_g = cols.reshape(groups, cg * kh * kw, ns * oh * ow)  # (G, C/G*KH*KW, Ns*OH*OW)
        out = y[:, n0:n0 + ns].reshape(groups, t // groups, ns * oh * ow) if step == n else None
        res = np.matmul(w_mat, cols_g, out=out)  # (G, T/G, Ns*OH*OW)
        if out is None:
            y[:, n0:n0 + ns] = res.reshape(t, ns, oh, ow)
    if workspace is not None:
        workspace["cols_of"] = x if step == n else None  # the cached columns belong to this x
    if b is not None:
        y += b.reshape(t, 1, 1, 1)
    return y.transpose(1, 0, 2, 3)  # (N, T, OH, OW) view


def conv2d_im2col_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, workspace: dict | None = None, data_grad: str = "col2im",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for y = conv2d_im2col(x, w, b, ...), given dy (N, T, OH, OW).

        dw (T, C/G, KH, KW) = dy_mat @ cols^T  per group       (dz/dW = dz/dy x^T)
        db (T,)             = sum of dy over N, OH, OW
        dx (N, C, H, W)     = col2im(w_mat^T @ dy_mat)         (dz/dx = W^T dz/dy)
    With `data_grad="flipped"`, dx = correlate(pad/dilate(dy), flip_kernel(w)) instead (the lecture's
    form; `conv2d_input_grad_flipped`). The columns come from `workspace` when forward left them there.
    """
    n, c, h, wd = x.shape
    t, cg, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    if groups == c == t and c > 1:
        dx, dw, db = _depthwise_backward(dy, x, w, stride, padding, dilation)
        if data_grad == "flipped":
            dx = conv2d_input_grad_flipped(dy, x.shape, w, stride, padding, dilation, groups)
        return (None if data_grad == "none" else dx), dw, db
    dy_t = dy.transpose(1, 0, 2, 3)  # (T, N, OH, OW): free when dy is the view our forward produced
    db = dy_t.sum(axis=(1, 2, 3))
    w_mat = w.reshape(groups, t // groups, cg * kh * kw)  # (G, T/G, C/G*KH*KW)
    dw = np.zeros((groups, t // groups, cg * kh * kw), np.result_type(dy, x))
    wide = stride == (1, 1)  # stride 1: col2im on wide rows (see `_col2im_wide_add`), one extra zero row
    hp, wp = h + 2 * padding[0] + wide, wd + 2 * padding[1]
    dxp = np.zeros((c, n, hp * wp), dy.dtype) if data_grad == "col2im" else None  # (C, N, Hp(+1)*Wp) flat maps
    step = _chunk_size(n, c * kh * kw * oh * ow * x.itemsize)
    cached = workspace is not None and workspace.get("cols_of") is x
    for n0 in range(0, n, step):
        xs = x[n0:n0 + step]
        ns = xs.shape[0]
        if cached:
            cols = workspace["cols"]
        else:
            xp = _buffer(workspace, "x_pad", (c, ns, h + 2 * padding[0], wd + 2 * padding[1]), x.dtype, zero=True)
            pad_channel_major(xs, padding, out=xp)
            cols = _buffer(workspace, "cols", (c * kh * kw, ns * oh * ow), x.dtype)
            im2col(xs, (kh, kw), stride, padding, dilation, out=cols, x_padded=xp)
        cols_g = cols.reshape(groups, cg * kh * kw, ns * oh * ow)  # (G, C/G*KH*KW, Ns*L)
        dy_mat = _buffer(workspace, "dy_mat", (t, ns, oh, ow), dy.dtype)
        np.copyto(dy_mat, dy_t[:, n0:n0 + ns])  # (T, Ns, OH, OW)
        dw += np.matmul(dy_mat.reshape(groups, t // groups, -1), cols_g.transpose(0, 2, 1))  # (G, T/G, C/G*KH*KW)
        if dxp is None:
            continue
        if wide:  # dy on wide rows: zeros in the Wp - OW extra columns (never overwritten)
            dy_src = _buffer(workspace, "dy_wide", (t, ns, oh, wp), dy.dtype, zero=True)
            dy_src[..., :ow] = dy_mat
        else:
            dy_src = dy_mat
        length = dy_src.shape[2] * dy_src.shape[3]  # OH*Wp (wide) or OH*OW column entries per image
        dy_src = dy_src.reshape(groups, t // groups, ns, length)  # (G, T/G, Ns, L)
        # dcols = W^T dy, then col2im, a block of images at a time: the column gradient is as large as
        # the columns, and blocks bound this scratch to DX_BLOCK_VALUES entries (same speed, measured)
        block = max(1, min(ns, DX_BLOCK_VALUES // (c * kh * kw * length)))
        buf = _buffer(workspace, "dcols", (c * kh * kw * block * length,), dy.dtype)
        for lo in range(0, ns, block):
            hi = min(lo + block, ns)
            dcols = buf[: c * kh * kw * (hi - lo) * length].reshape(groups, cg * kh * kw, (hi - lo) * length)
            np.matmul(w_mat.transpose(0, 2, 1), dy_src[:, :, lo:hi].reshape(groups, t // groups, -1), out=dcols)
            if wide:
                _col2im_wide_add(dcols, dxp[:, n0 + lo:n0 + hi], (kh, kw), dilation, (oh, wp))
            else:
                _col2im_add(dcols, dxp[:, n0 + lo:n0 + hi].reshape(c, hi - lo, hp, wp), (kh, kw), stride, dilation,
                            (oh, ow))
    dw = dw.reshape(w.shape)
    if data_grad == "none":
        dx = None
    elif dxp is None:
        dx = conv2d_input_grad_flipped(dy, x.shape, w, stride, padding, dilation, groups)
    else:
        dxp = dxp.reshape(c, n, hp, wp)  # (C, N, Hp(+1), Wp)
        dx = dxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd].transpose(1, 0, 2, 3)  # (N, C, H, W)
    return dx, dw, db


def _col2im_add(dcols: np.ndarray, dxp: np.ndarray, kernel_size: Pair, stride: Pair, dilation: Pair,
                out_size: Pair) -> None:
    """dxp (C, Ns, Hp, Wp) += col2im(dcols); the in-place core of `col2im`."""
    c, ns = dxp.shape[:2]
    kh, kw = kernel_size
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    cols = dcols.reshape(c, kh, kw, ns, oh, ow)  # (C, KH, KW, Ns, OH, OW)

    def add(lo: int, hi: int) -> None:  # images lo..hi-1
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                dxp[:, lo:hi, rows, j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, i, j, lo:hi]

    _by_image_blocks(add, ns, cols.size // ns)


def _col2im_wide_add(dcols: np.ndarray, flat: np.ndarray, kernel_size: Pair, dilation: Pair, size: Pair) -> None:
    """Stride-1 col2im on "wide rows": flat (C, Ns, (Hp+1)*Wp) += col2im(dcols), dcols (C*KH*KW, Ns*OH*Wp),
    size = (OH, Wp).

    The column gradient was computed for OH rows of Wp (not OW) outputs, from a dy with zeros in the
    Wp - OW extra columns. Flattening each padded map, tap (i, j) is then the 1-D shift i*dh*Wp + j*dw and
    one add covers OH*Wp contiguous values per (channel, image) — instead of OH rows of OW values, which
    is where NumPy's per-row overhead went for small maps. The extra zero row keeps the last shift
    inside the buffer; the zero columns of dy make the wrapped-around values add nothing.
    """
    c, ns = flat.shape[:2]
    kh, kw = kernel_size
    (dh, dw), (oh, wp) = dilation, size
    length = oh * wp
    cols = dcols.reshape(c, kh, kw, ns, length)  # (C, KH, KW, Ns, OH*Wp)

    def add(lo: int, hi: int) -> None:  # images lo..hi-1
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                flat[:, lo:hi, off:off + length] += cols[:, i, j, lo:hi]

    _by_image_blocks(add, ns, cols.size // ns)


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
    """(dx, dw, db) of `_depthwise`, tap by tap:

        dw[c, 0, i, j] = sum_{n,oh,ow} dy[n, c, oh, ow] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]
        dx_pad[n, c, oh*sh + i*dh, ow*sw + j*dw] += w[c, 0, i, j] * dy[n, c, oh, ow]
    """
    if stride == (1, 1):
        return _depthwise_wide_backward(dy, x, w, padding, dilation)
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
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, dy.sum(axis=(0, 2, 3))


def _wide_padded(x: np.ndarray, padding: Pair, extra_rows: int) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, C, (Hp + extra_rows) * Wp), each padded map flattened."""
    n, c, h, wd = x.shape
    ph, pw = padding
    xp = np.zeros((n, c, h + 2 * ph + extra_rows, wd + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    return xp.reshape(n, c, -1)


def _depthwise_wide(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair,
                    dilation: Pair) -> np.ndarray:
    """Stride-1 depthwise on "wide rows": flatten every padded map (row length Wp); then tap (i, j) is the
    1-D shift by i*dh*Wp + j*dw, and each output row is computed over Wp columns of which the last
    Wp - OW are discarded. The multiply-adds run over long contiguous runs (OH*Wp values) instead of
    OW-long rows, which is where NumPy's per-row overhead went. One extra zero row keeps the last shift
    inside the buffer."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (ph, pw), (dh, dw) = padding, dilation
    wp = wd + 2 * pw
    oh, ow = h + 2 * ph - dh * (kh - 1), wp - dw * (kw - 1)
    xf = _wide_padded(x, padding, 1)  # (N, C, (Hp+1)*Wp)
    length = oh * wp
    y = np.empty((n, c, length), x.dtype)  # (N, C, OH*Wp): wide output rows

    def taps(lo: int, hi: int) -> None:  # images lo..hi-1; the block and its scratch stay in cache
        tmp = np.empty((hi - lo, c, length), x.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                window, wij = xf[lo:hi, :, off:off + length], w[None, :, 0, i, j, None]
                if i == j == 0:
                    np.multiply(window, wij, out=y[lo:hi])
                else:
                    np.multiply(window, wij, out=tmp)
                    y[lo:hi] += tmp
        if b is not None:
            y[lo:hi] += b.reshape(1, c, 1)

    _by_image_blocks(taps, n, xf.size // n, cache_blocks=True)
    return y.reshape(n, c, oh, wp)[:, :, :, :ow]  # drop the wrap-around columns (a view)


def _depthwise_wide_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: Pair,
                             dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of `_depthwise_wide`: dy is copied into wide rows with zeros in the discarded columns, so
    they add nothing to dw or dx."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (ph, pw), (dh, dw_) = padding, dilation
    oh, ow = dy.shape[2:]
    wp = wd + 2 * pw
    length = oh * wp
    xf = _wide_padded(x, padding, 1)  # (N, C, (Hp+1)*Wp)
    dyw = np.zeros((n, c, oh, wp), x.dtype)
    dyw[..., :ow] = dy
    dyw = dyw.reshape(n, c, length)  # (N, C, OH*Wp), zeros in the discarded columns
    dxf = np.zeros_like(xf)
    partial_dw = {}  # dw summed over each block's images, added up below

    def taps(lo: int, hi: int) -> None:  # images lo..hi-1; the block and its scratch stay in cache
        dw = np.empty(w.shape, x.dtype)
        tmp = np.empty((hi - lo, c, length), x.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw_
                dw[:, 0, i, j] = np.einsum("ncl,ncl->c", dyw[lo:hi], xf[lo:hi, :, off:off + length])
                np.multiply(dyw[lo:hi], w[None, :, 0, i, j, None], out=tmp)
                dxf[lo:hi, :, off:off + length] += tmp
        partial_dw[lo] = dw

    _by_image_blocks(taps, n, xf.size // n, cache_blocks=True)
    dw = sum(partial_dw.values())
    dx = dxf.reshape(n, c, -1, wp)[:, :, ph:ph + h, pw:pw + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))
