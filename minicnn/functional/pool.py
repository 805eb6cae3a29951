"""Pooling (lecture: "pooling + subsampling") and the review's pooling variants, as pure functions.

A pooling layer slides a KH x KW window over each channel separately, with stride (SH, SW) and
padding (PH, PW), and reduces each window to one number:

    y[n, c, oh, ow] = reduce( x_pad[n, c, oh*SH + i, ow*SW + j]  for 0 <= i < KH, 0 <= j < KW )
    OH = floor((H + 2 PH - KH) / SH) + 1          (the one formula, `conv_output_size`)

    max      reduce = max                      backward: route dy to the argmax (first maximum)
    avg      reduce = mean (padded zeros count, divisor KH*KW, as PyTorch count_include_pad=True)
    sum      reduce = sum                      backward: copy dy to every window position
    SoftPool reduce = sum_k softmax(x)_k x_k   backward: dx_k += dy * p_k (1 + x_k - y)
    stochastic (train) pick position k with probability p_k = x_k / sum x (x >= 0), y = x_k
    stochastic (eval)  y = sum_k p_k x_k = sum x^2 / sum x; backward dx_k += dy (2 x_k - y) / sum x
    mixed    y = a * max + (1 - a) * avg;      da = sum dy * (max - avg)

Where windows overlap (stride < kernel) an input value belongs to several windows and its gradient is
the SUM over them. Max pooling keeps only the argmax index of each window (0 .. KH*KW-1, row-major
inside the window); ties go to the FIRST maximum in that order (np.argmax's rule). NaN counts as larger
than every number (np.max's and np.argmax's rule): a window with a NaN gives y = NaN and argmax = its
first NaN, so the gradient goes to the value y came from. Backward sends dy to the winner only, inf and
NaN included (dy * 0 would be NaN: when dy holds inf or NaN, the paths below select instead of
multiplying, or zero the other positions afterwards). Max pooling pads with -inf, so padding never
beats a real value (a window of padding and -inf only picks its first entry; if that is padding, its
gradient is dropped); like PyTorch, padding may be at most half the kernel, so every window holds at
least one real value.

How it is computed: max/avg/sum loop over the KH*KW window offsets (i, j); offset (i, j) of every
window at once is ONE strided slice of the (padded) input, so there is no per-pixel Python loop and no
copy of the windows. Backward puts pieces back the same way. Fast path (windows tile the input: kernel
== stride, no padding): the gradient buffer is viewed as (N, C, OH, KH, OW, KW) and each offset's piece
is assigned, not accumulated (no zero fill, no padded buffer). Max pooling 2x2 stride 2 goes one step
further: forward copies the four offsets into contiguous arrays first (`_taps_2x2`: NumPy runs a
stride-2 view as 16-value rows and pays per row), and backward (when the windows cover the whole input,
H and W even) computes dx = upsample(dy) * [upsample(argmax) == position in the window] in contiguous
passes (`_upsample2`). Max pooling forward runs over cache-sized blocks of images, split over
MINICNN_WORKERS threads when large (`_by_images`). Measured, cifar_net's MaxPool2D(2) forward on
(64, 32, 32, 32) / (64, 64, 16, 16) float32, before (the stride-2 slices of the 4 offsets) -> after,
2-core machine shared with other jobs (load average 0.4-1.5): alone, 21 alternating rounds, 1 thread:
2.21 -> 1.84 / 1.18 -> 0.97 ms; inside a training step (`benchmarks/profile_step.py`, medians of 5
alternating runs of 30 steps): 1 thread 5.3 -> 3.0 / 1.65 -> 1.43 ms, MINICNN_WORKERS=2 3.8 -> 2.0 /
1.44 -> 1.16 ms. Backward stays one pass over the whole batch: cache-sized blocks, and a split over 2 workers,
measured no faster (its passes are memory-bound; on this machine even a plain 8 MB copy takes as long
on 2 threads as on 1); checking dy for inf/NaN costs it 0.07 ms (1.5 -> 1.6 ms). SoftPool and
stochastic pooling copy the windows to (N, C, OH, OW, KH*KW) (a reshape when they tile).
`pool2d_reference` and `max_pool2d_backward_reference` are the direct loops (one Python iteration per
output value) that the fast and general paths are tested against.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minicnn.threads import large_parts, split_blocks

from .checks import check_array, check_grad, conv_output_size, pair, positive_pair

_LAYOUT = "(N, C, H, W)"
BLOCK_VALUES = 2**18  # input values per block of images in max pooling (1 MB of float32, cache-sized)


class PoolGeometry:
    """Kernel, stride, padding and output size of one pooling call (all pairs, checked)."""

    __slots__ = ("KH", "KW", "SH", "SW", "PH", "PW", "OH", "OW", "fast")

    def __init__(self, x_shape: tuple[int, ...], kernel_size, stride=None, padding=0, who: str = "pool2d"):
        self.KH, self.KW = positive_pair(kernel_size, who, "kernel_size")
        self.SH, self.SW = (self.KH, self.KW) if stride is None else positive_pair(stride, who, "stride")
        self.PH, self.PW = pair(padding, who, "padding")
        if self.PH < 0 or self.PW < 0 or 2 * self.PH > self.KH or 2 * self.PW > self.KW:
            raise ValueError(f"{who}: expected 0 <= padding <= kernel_size / 2, got padding "
                             f"{(self.PH, self.PW)} with kernel_size {(self.KH, self.KW)}")
        H, W = x_shape[2], x_shape[3]
        if self.KH > H + 2 * self.PH or self.KW > W + 2 * self.PW:
            raise ValueError(
                f"{who}: expected input (N, C, H, W) with H + 2*{self.PH} >= {self.KH} and "
                f"W + 2*{self.PW} >= {self.KW} (window {(self.KH, self.KW)} must fit the padded "
                f"input), got shape {tuple(x_shape)}")
        self.OH = conv_output_size(H, self.KH, self.SH, self.PH, who=who)
        self.OW = conv_output_size(W, self.KW, self.SW, self.PW, who=who)
        # windows tile the input (up to dropped trailing rows/columns): each input value is in at most
        # one window, so backward can assign into a (N, C, OH, KH, OW, KW) view instead of accumulating
        self.fast = (self.KH, self.KW) == (self.SH, self.SW) and self.PH == 0 and self.PW == 0


@lru_cache(maxsize=512)
def _cached_geometry(x_shape, kernel_size, stride, padding, who: str) -> PoolGeometry:
    return PoolGeometry(x_shape, kernel_size, stride, padding, who)


def geometry(x_shape: tuple[int, ...], kernel_size, stride=None, padding=0, who: str = "pool2d") -> PoolGeometry:
    """PoolGeometry, memoised on its (hashable) arguments: a training loop calls every pooling with
    the same shapes, and the argument checks would otherwise be most of a small call's cost.
    Invalid arguments raise every time (exceptions are not cached)."""
    try:
        return _cached_geometry(tuple(x_shape), kernel_size, stride, padding, who)
    except TypeError:  # unhashable argument, e.g. kernel_size given as a list
        return PoolGeometry(x_shape, kernel_size, stride, padding, who)


def _geometry(x: np.ndarray, kernel_size, stride, padding, who: str) -> PoolGeometry:
    check_array(x, who, 4, _LAYOUT)
    return geometry(x.shape, kernel_size, stride, padding, who)


def _geometry_dy(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride, padding, who: str) -> PoolGeometry:
    """A backward rule's geometry, with dy checked to be the output's shape (N, C, OH, OW)."""
    g = geometry(x_shape, kernel_size, stride, padding, who)
    check_grad(dy, (*x_shape[:2], g.OH, g.OW), who)
    return g


def _pad(x: np.ndarray, g: PoolGeometry, value: float) -> np.ndarray:
    if g.PH == 0 and g.PW == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)), constant_values=value)


def _windows(x: np.ndarray, g: PoolGeometry, pad_value: float = 0.0) -> np.ndarray:
    """Every window as a row: (N, C, OH, OW, KH*KW), a fresh array (entry k = window offset
    (k // KW, k % KW))."""
    N, C = x.shape[:2]
    if g.fast:
        x6 = x[:, :, :g.OH * g.KH, :g.OW * g.KW].reshape(N, C, g.OH, g.KH, g.OW, g.KW)
        return x6.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, g.OH, g.OW, g.KH * g.KW)  # (N, C, OH, OW, K)
    xp = _pad(x, g, pad_value)
    view = sliding_window_view(xp, (g.KH, g.KW), axis=(2, 3))  # (N, C, H', W', KH, KW), no copy
    view = view[:, :, :g.SH * (g.OH - 1) + 1:g.SH, :g.SW * (g.OW - 1) + 1:g.SW]  # (N, C, OH, OW, KH, KW)
    return view.reshape(N, C, g.OH, g.OW, g.KH * g.KW)  # copy


def _tap(xp: np.ndarray, g: PoolGeometry, i: int, j: int) -> np.ndarray:
    """Entry (i, j) of every window at once: the strided view xp[:, :, oh*SH + i, ow*SW + j] (N, C, OH, OW)."""
    return xp[:, :, i:i + g.SH * (g.OH - 1) + 1:g.SH, j:j + g.SW * (g.OW - 1) + 1:g.SW]


def _offsets(g: PoolGeometry):
    """(k, i, j) for every window offset, k = i*KW + j (row-major inside the window)."""
    return [(i * g.KW + j, i, j) for i in range(g.KH) for j in range(g.KW)]


def _scatter_taps(piece: Callable[[int], np.ndarray], x_shape: tuple[int, ...], g: PoolGeometry, dtype,
                  fast: bool) -> np.ndarray:
    """dx = sum over window offsets k of piece(k) (N, C, OH, OW), put back where offset k reads.

    Loops over the KH*KW offsets only. Overlapping windows accumulate (+=) into a zeroed, padded
    buffer whose border is then cut off. Fast path (windows tile the input): every input value is
    read by exactly one offset, so each piece is *assigned* into a (N, C, OH, KH, OW, KW) buffer —
    no zero fill, no accumulation, no padding.
    """
    N, C, H, W = x_shape
    if fast:
        dx6 = np.empty((N, C, g.OH, g.KH, g.OW, g.KW), dtype=dtype)  # (N, C, OH, KH, OW, KW)
        for k, i, j in _offsets(g):
            dx6[:, :, :, i, :, j] = piece(k)
        dx = dx6.reshape(N, C, g.OH * g.KH, g.OW * g.KW)
        if dx.shape[2:] != (H, W):  # trailing rows/columns that no window covered get 0
            dx = np.pad(dx, ((0, 0), (0, 0), (0, H - dx.shape[2]), (0, W - dx.shape[3])))
        return dx
    dxp = np.zeros((N, C, H + 2 * g.PH, W + 2 * g.PW), dtype=dtype)
    for k, i, j in _offsets(g):
        _tap(dxp, g, i, j)[...] += piece(k)
    return dxp[:, :, g.PH:g.PH + H, g.PW:g.PW + W]


def _scatter(cols: np.ndarray, x_shape: tuple[int, ...], g: PoolGeometry) -> np.ndarray:
    """Adjoint of `_windows`: add each window row (N, C, OH, OW, KH*KW) back onto the input grid."""
    return _scatter_taps(lambda k: cols[..., k], x_shape, g, cols.dtype, g.fast)


def _route(dy: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...], g: PoolGeometry,
           fast: bool | None = None) -> np.ndarray:
    """Send each dy[n, c, oh, ow] to window position index[n, c, oh, ow]; everything else gets 0.

    Offset k's piece is dy * [index == k]; when dy holds inf or NaN (dy * 0 = NaN would land on every
    position of the window), it is np.where(index == k, dy, 0) instead (about 10x slower: 1.1 vs 0.1 ms
    on (64, 32, 16, 16) float32, so only then)."""
    finite = bool(np.isfinite(dy).all())
    zero = np.zeros((), dy.dtype)

    def piece(k: int) -> np.ndarray:
        return dy * (index == k) if finite else np.where(index == k, dy, zero)

    return _scatter_taps(piece, x_shape, g, dy.dtype, g.fast if fast is None else fast)


_WIDER = {1: (np.uint8, np.uint16), 2: (np.uint16, np.uint32), 4: (np.uint32, np.uint64)}  # item size -> uints


def _upsample2(a: np.ndarray) -> np.ndarray:
    """Nearest-neighbour 2x upsampling: (N, C, OH, OW) -> (N, C, 2 OH, 2 OW), each value copied to a 2 x 2 block.

    Columns: for items of 1, 2 or 4 bytes the bit pattern u of each item is written twice side by side as
    one unsigned integer of twice the width, u * (2^bits + 1), and the result is viewed back in a's dtype
    (one multiply; np.repeat's item-by-item copy takes 3x as long: 0.2 vs 0.6 ms on (64, 32, 16, 16)
    float32). Other item sizes use np.repeat. Rows: np.repeat, which copies whole rows."""
    a = np.ascontiguousarray(a)
    if a.itemsize in _WIDER:
        narrow, wide = _WIDER[a.itemsize]
        twice = wide(2 ** (8 * a.itemsize) + 1)
        cols = (a.view(narrow).astype(wide) * twice).view(a.dtype)  # (N, C, OH, 2 OW)
    else:
        cols = np.repeat(a, 2, axis=3)  # (N, C, OH, 2 OW)
    return np.repeat(cols, 2, axis=2)  # (N, C, 2 OH, 2 OW)


@lru_cache(maxsize=64)
def _positions_2x2(h: int, w: int, dtype) -> np.ndarray:
    """position[h, w] = 2 (h mod 2) + (w mod 2): each pixel's row-major place in its 2x2 window (H, W)."""
    return (2 * (np.arange(h)[:, None] % 2) + np.arange(w) % 2).astype(dtype)


def _route_2x2(dy: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """`_route` for 2x2 windows with stride 2 that cover the input exactly (H = 2 OH, W = 2 OW):
    dx = upsample(dy) * [upsample(argmax) == the window position of each pixel], position
    2 (h mod 2) + (w mod 2). The same products as `_route` (dy * 1 or dy * 0), in contiguous passes
    instead of four stride-2 writes; where dy holds inf or NaN, the non-winners are then set to 0 (dy * 0
    would be NaN there; checking costs 0.07 ms on (64, 32, 16, 16) float32)."""
    h, w = 2 * dy.shape[2], 2 * dy.shape[3]
    dx = _upsample2(dy)  # (N, C, H, W)
    mask = _upsample2(argmax) == _positions_2x2(h, w, argmax.dtype)
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN: zeroed below
        dx *= mask
    if not np.isfinite(dy).all():
        dx[~mask] = 0
    return dx


def _by_images(fn: Callable[[int, int], None], n: int, per_image: int) -> None:
    """fn(lo, hi) over blocks of images of about BLOCK_VALUES values, large jobs in MINICNN_WORKERS parts
    side by side (`minicnn.threads.split_blocks`, `large_parts`): max pooling forward makes several passes
    over its input, and on a cache-sized block the later ones read it from cache."""
    split_blocks(fn, n, per_image, BLOCK_VALUES, large_parts(n * per_image))


def _check_path(path: str, who: str) -> None:
    if path not in ("auto", "general"):
        raise ValueError(f"{who}: expected path 'auto' or 'general', got {path!r}")


# ---- max pooling ------------------------------------------------------------------------------


def _taps_2x2(x: np.ndarray) -> list[np.ndarray]:
    """The four entries of every 2x2 window (stride 2; H, W even) as contiguous arrays, in one copy:
    taps[2 i + j] = x[:, :, i::2, j::2] (B, C, OH, OW). Every later pass then runs over contiguous memory
    instead of stride-2 views (NumPy's loops over 16-value rows with a stride pay per row, not per value)."""
    b, c, h, w = x.shape
    taps = np.empty((2, 2, b, c, h // 2, w // 2), x.dtype)  # (i, j, B, C, OH, OW)
    np.copyto(taps, x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(3, 5, 0, 1, 2, 4))
    return list(taps.reshape(4, b, c, h // 2, w // 2))


def _first_maximum(taps: list[np.ndarray], y: np.ndarray, argmax: np.ndarray) -> None:
    """argmax = the number of leading taps (window entries in row-major order) strictly below their
    maximum y, i.e. the position of the first maximum, written in place.

    NaN counts as larger than every number, as in np.max / np.argmax: y is then NaN (np.maximum makes it
    so), and "below" means "not NaN" (only checked when y has a NaN; finding out costs one reduction)."""
    has_nan = y.size > 0 and bool(np.isnan(y.max()))  # max is NaN iff y holds a NaN

    def below(t: np.ndarray, out: np.ndarray) -> np.ndarray:
        if has_nan:  # t < y, or y is NaN and t is not
            np.not_equal(t, y, out=out)
            out &= t == t
        else:
            np.less(t, y, out=out)
        return out

    still = below(taps[0], np.empty(y.shape, bool))  # no maximum seen yet after entry 0
    np.copyto(argmax, still)
    step = np.empty_like(still)
    for t in taps[1:-1]:
        still &= below(t, step)
        argmax += still


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "max_pool2d"
               ) -> tuple[np.ndarray, np.ndarray]:
    """y = max over each window; returns (y (N, C, OH, OW), argmax (N, C, OH, OW) small ints).

    argmax is the row-major position inside the window (0 .. KH*KW-1) of the FIRST maximum, i.e. the
    number of leading window entries strictly below the max. NaN counts as the largest value (y is NaN,
    argmax the first NaN: np.argmax's rule; the gradient goes to the value that made y). Padding is -inf;
    a window of padding and -inf only therefore picks its first entry, which may be padding (its gradient
    is then dropped). stride defaults to kernel_size.

    Loops over the KH*KW window offsets; each step is one vectorised strided slice, and no window copy is
    made (measured 0.4 ms for 2x2 on (64, 6, 28, 28) float32 vs 6.9 ms for a windows-copy + np.argmax,
    `python -m timeit`, shared 2-core machine). 2x2 windows with stride 2 first copy the four offsets into
    contiguous arrays (`_taps_2x2`). Runs over cache-sized blocks of images, split
    over MINICNN_WORKERS threads when large (`_by_images`).
    """
    g = _geometry(x, kernel_size, stride, padding, who)
    n, c, h, w = x.shape
    y = np.empty((n, c, g.OH, g.OW), x.dtype)
    argmax = np.empty(y.shape, np.uint8 if g.KH * g.KW <= 256 else np.int32)

    def block(lo: int, hi: int) -> None:  # images lo .. hi-1
        if g.fast and (g.KH, g.KW) == (2, 2):  # an odd last row or column belongs to no window
            taps = _taps_2x2(x[lo:hi, :, :2 * g.OH, :2 * g.OW])
        else:
            xp = _pad(x[lo:hi], g, -np.inf)
            taps = [_tap(xp, g, i, j) for _, i, j in _offsets(g)]  # KH*KW views (B, C, OH, OW)
        np.maximum(taps[0], taps[-1], out=y[lo:hi])  # (a single entry: its own maximum)
        for t in taps[1:-1]:
            np.maximum(y[lo:hi], t, out=y[lo:hi])
        _first_maximum(taps, y[lo:hi], argmax[lo:hi])

    _by_images(block, n, c * h * w)
    return y, argmax


def max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                        stride=None, padding=0, path: str = "auto") -> np.ndarray:
    """dx: each dy[n, c, oh, ow] goes to the input position that won its window (the argmax), and only
    there (inf or NaN in dy included); values that won several overlapping windows receive the sum.
    dy, argmax (N, C, OH, OW). path="general" forces the accumulate-into-padded-buffer path even when
    windows tile (for tests). One pass over the whole batch: neither cache-sized blocks nor a split over
    MINICNN_WORKERS made it faster (see the module docstring)."""
    _check_path(path, "max_pool2d_backward")
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "max_pool2d_backward")
    check_grad(argmax, np.shape(dy), "max_pool2d_backward (argmax)")
    tiles_2x2 = g.fast and (g.KH, g.KW) == (2, 2) and tuple(x_shape[2:]) == (2 * g.OH, 2 * g.OW)
    if path == "auto" and tiles_2x2:
        return _route_2x2(dy, argmax)
    return _route(dy, argmax, x_shape, g, g.fast and path == "auto")


def max_pool2d_backward_reference(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...],
                                  kernel_size, stride=None, padding=0) -> np.ndarray:
    """The direct loop (reference, slow): for every output, dx[winner] += dy. Loops per pixel.
    A winner in the padding (a window of -inf and padding only) is not part of dx: its dy is dropped."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "max_pool2d_backward_reference")
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    i, j = divmod(int(argmax[n, c, oh, ow]), g.KW)
                    h, w = oh * g.SH + i - g.PH, ow * g.SW + j - g.PW
                    if 0 <= h < H and 0 <= w < W:  # a padding winner (only -inf in the window) gets nothing
                        dx[n, c, h, w] += dy[n, c, oh, ow]
    return dx


def pool2d_reference(x: np.ndarray, kernel_size, stride=None, padding=0, mode: str = "max"
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """The direct loop (reference, slow): one Python iteration per output value, as the equation reads.

    mode: "max" (also returns the first-maximum index), "avg", "sum", "soft". Returns (y, argmax|None).
    """
    g = PoolGeometry(x.shape, kernel_size, stride, padding, "pool2d_reference")
    reducers: dict[str, Callable[[np.ndarray], float]] = {
        "max": np.max, "avg": np.mean, "sum": np.sum,
        "soft": lambda v: float(np.sum(np.exp(v - v.max()) * v) / np.sum(np.exp(v - v.max()))),
    }
    xp = _pad(x, g, -np.inf if mode == "max" else 0.0)
    N, C = x.shape[:2]
    y = np.zeros((N, C, g.OH, g.OW), dtype=x.dtype)
    argmax = np.zeros((N, C, g.OH, g.OW), dtype=np.int64) if mode == "max" else None
    for n in range(N):
        for c in range(C):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    window = xp[n, c, oh * g.SH:oh * g.SH + g.KH, ow * g.SW:ow * g.SW + g.KW]
                    y[n, c, oh, ow] = reducers[mode](window)
                    if argmax is not None:
                        best = 0
                        for k, v in enumerate(window.ravel()):  # strict '>' keeps the first maximum
                            top = window.ravel()[best]
                            if v > top or (np.isnan(v) and not np.isnan(top)):  # NaN beats numbers
                                best = k
                        argmax[n, c, oh, ow] = best
    return y, argmax


# ---- sum and average pooling ------------------------------------------------------------------


def _window_sum(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """sum over each window (zero padding): one strided slice per window offset, no window copy."""
    xp = _pad(x, g, 0.0)
    taps = [_tap(xp, g, i, j) for _, i, j in _offsets(g)]
    y = taps[0].copy()
    for t in taps[1:]:
        y += t
    return y


def _spread(dy: np.ndarray, x_shape: tuple[int, ...], g: PoolGeometry, fast: bool) -> np.ndarray:
    """Adjoint of the window sum: every window position receives dy of its window."""
    return _scatter_taps(lambda k: dy, x_shape, g, dy.dtype, fast)


def sum_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "sum_pool2d") -> np.ndarray:
    """y = sum over each window (zero padding). The lecture's "sum-pooling"."""
    return _window_sum(x, _geometry(x, kernel_size, stride, padding, who))


def sum_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None, padding=0,
                        path: str = "auto") -> np.ndarray:
    """dx[p] = sum of dy over the windows containing p. path="general" disables the tiling fast path."""
    _check_path(path, "sum_pool2d_backward")
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "sum_pool2d_backward")
    return _spread(dy, x_shape, g, g.fast and path == "auto")


def avg_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "avg_pool2d") -> np.ndarray:
    """y = (1 / (KH*KW)) * sum over each window; padded zeros count (PyTorch count_include_pad=True)."""
    g = _geometry(x, kernel_size, stride, padding, who)
    y = _window_sum(x, g)
    y *= 1.0 / (g.KH * g.KW)
    return y


def avg_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None, padding=0,
                        path: str = "auto") -> np.ndarray:
    """dx[p] = sum over the windows containing p of dy / (KH*KW). path="general" disables the fast path."""
    _check_path(path, "avg_pool2d_backward")
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "avg_pool2d_backward")
    return _spread(dy * (1.0 / (g.KH * g.KW)), x_shape, g, g.fast and path == "auto")


def global_avg_pool2d(x: np.ndarray, keepdims: bool = False, who: str = "global_avg_pool2d") -> np.ndarray:
    """y[n, c] = mean over (H, W) of x[n, c]. (N, C, H, W) -> (N, C), or (N, C, 1, 1) with keepdims."""
    check_array(x, who, 4, _LAYOUT)
    return x.mean(axis=(2, 3), keepdims=keepdims)


def global_avg_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """dx[n, c, h, w] = dy[n, c] / (H*W). dy (N, C), or (N, C, 1, 1) from keepdims=True."""
    N, C, H, W = x_shape
    check_grad(dy, (N, C, 1, 1) if np.ndim(dy) == 4 else (N, C), "global_avg_pool2d_backward")
    return np.broadcast_to(dy.reshape(N, C, 1, 1) / (H * W), x_shape).copy()


# ---- SoftPool (Stergiou et al., 2021) ---------------------------------------------------------


def soft_pool2d(x: np.ndarray, kernel_size, stride=None, who: str = "soft_pool2d") -> tuple[np.ndarray, np.ndarray]:
    """SoftPool: y = sum_k e^{x_k} x_k / sum_k e^{x_k} over each window (a softmax-weighted mean).

    Stable form: the weights p = softmax(x - max(window)) are unchanged by the shift. Returns
    (y (N, C, OH, OW), coef (N, C, OH, OW, KH*KW)) where coef = dy/dx_k = p_k (1 + x_k - y) is what
    backward needs.
    """
    g = _geometry(x, kernel_size, stride, 0, who)
    cols = _windows(x, g)  # (N, C, OH, OW, K)
    e = np.exp(cols - cols.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    y = np.einsum("...k,...k->...", p, cols)
    coef = p * (1.0 + cols - y[..., None])
    return y, coef


def soft_pool2d_backward(dy: np.ndarray, coef: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                         stride=None) -> np.ndarray:
    """dx_k = sum over windows containing k of dy * p_k (1 + x_k - y)."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, 0, "soft_pool2d_backward")
    return _scatter(dy[..., None] * coef, x_shape, g)


# ---- mixed pooling (Yu et al., 2014) ----------------------------------------------------------


def mixed_pool2d(x: np.ndarray, alpha: float, kernel_size, stride=None, padding=0, who: str = "mixed_pool2d"):
    """y = alpha * maxpool(x) + (1 - alpha) * avgpool(x). Returns (y, y_max, y_avg, argmax)."""
    y_max, argmax = max_pool2d(x, kernel_size, stride, padding, who)
    y_avg = avg_pool2d(x, kernel_size, stride, padding, who)
    return alpha * y_max + (1.0 - alpha) * y_avg, y_max, y_avg, argmax


def mixed_pool2d_backward(dy: np.ndarray, alpha: float, y_max: np.ndarray, y_avg: np.ndarray,
                          argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None,
                          padding=0) -> tuple[np.ndarray, float]:
    """Returns (dx, dalpha): dx = alpha * maxpool'(dy) + (1 - alpha) * avgpool'(dy);
    dalpha = sum dy * (y_max - y_avg)."""
    check_grad(dy, y_max.shape, "mixed_pool2d_backward")
    dx = max_pool2d_backward(dy * alpha, argmax, x_shape, kernel_size, stride, padding)
    dx += avg_pool2d_backward(dy * (1.0 - alpha), x_shape, kernel_size, stride, padding)
    return dx, float(np.sum(dy * (y_max - y_avg)))


# ---- stochastic pooling (Zeiler & Fergus, 2013) -----------------------------------------------


def _nonnegative_windows(x: np.ndarray, kernel_size, stride, who: str):
    g = _geometry(x, kernel_size, stride, 0, who)
    if x.size and x.min() < 0:
        raise ValueError(f"{who}: expected non-negative activations (e.g. after ReLU), got minimum "
                         f"{x.min()} in input of shape {x.shape}")
    return g, _windows(x, g)


def stochastic_pool2d(x: np.ndarray, kernel_size, stride=None, generator: np.random.Generator | None = None,
                      who: str = "stochastic_pool2d") -> tuple[np.ndarray, np.ndarray]:
    """Training-time stochastic pooling: in each window pick position k with probability
    p_k = x_k / sum(x) (x >= 0) and output x_k. An all-zero window outputs 0 (position 0).

    Sampling: u ~ U[0, 1) per window, k = number of cumulative sums <= u * sum(x) (inverse CDF).
    Returns (y, index (N, C, OH, OW)); backward routes dy to `index` exactly like max pooling.
    """
    g, cols = _nonnegative_windows(x, kernel_size, stride, who)
    generator = np.random.default_rng() if generator is None else generator
    cum = np.cumsum(cols, axis=-1)  # (N, C, OH, OW, K)
    total = cum[..., -1]
    # u < total strictly (rounding of u * total could reach it): the first k with cum_k > u then
    # exists and has x_k > 0, so a zero activation is never drawn
    u = np.minimum(generator.random(total.shape) * total, np.nextafter(total, 0))
    index = (cum <= u[..., None]).sum(axis=-1)
    index[total == 0] = 0
    y = np.take_along_axis(cols, index[..., None], axis=-1)[..., 0]
    return y, index


def stochastic_pool2d_backward(dy: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                               stride=None) -> np.ndarray:
    """dx: dy goes to the sampled position of each window (sum over overlapping windows)."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, 0, "stochastic_pool2d_backward")
    return _route(dy, index, x_shape, g)


def stochastic_pool2d_eval(x: np.ndarray, kernel_size, stride=None, who: str = "stochastic_pool2d_eval"
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Test-time stochastic pooling: the probability-weighted average
    y = sum_k p_k x_k = sum(x^2) / sum(x)  (0 for an all-zero window).
    Returns (y, coef) with coef = dy/dx_k = (2 x_k - y) / sum(x)."""
    _, cols = _nonnegative_windows(x, kernel_size, stride, who)
    s = cols.sum(axis=-1)
    safe = np.where(s > 0, s, 1.0)
    y = np.where(s > 0, np.einsum("...k,...k->...", cols, cols) / safe, 0.0).astype(x.dtype, copy=False)
    coef = np.where(s[..., None] > 0, (2.0 * cols - y[..., None]) / safe[..., None], 0.0)
    return y, coef.astype(x.dtype, copy=False)


def stochastic_pool2d_eval_backward(dy: np.ndarray, coef: np.ndarray, x_shape: tuple[int, ...],
                                    kernel_size, stride=None) -> np.ndarray:
    """dx_k = sum over windows containing k of dy * (2 x_k - y) / sum(x)."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, 0, "stochastic_pool2d_eval_backward")
    return _scatter(dy[..., None] * coef, x_shape, g)


# ---- subsampling ------------------------------------------------------------------------------


def subsample2d(x: np.ndarray, stride, who: str = "subsample2d") -> np.ndarray:
    """Keep every s-th value: y[n, c, oh, ow] = x[n, c, oh*SH, ow*SW]; OH = floor((H - 1) / SH) + 1."""
    check_array(x, who, 4, _LAYOUT)
    sh, sw = positive_pair(stride, who, "stride")
    return x[:, :, ::sh, ::sw].copy()


def subsample2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], stride) -> np.ndarray:
    """dx is dy at the kept positions and 0 elsewhere."""
    sh, sw = positive_pair(stride, "subsample2d_backward", "stride")
    n, c, h, w = x_shape
    check_grad(dy, (n, c, -(-h // sh), -(-w // sw)), "subsample2d_backward")  # OH = ceil(H / SH)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, :, ::sh, ::sw] = dy
    return dx


# ---- jitter invariance (lecture: "max-pooling and jitter-invariance") -------------------------


def shift_image(x: np.ndarray, dy: int = 0, dx: int = 1) -> np.ndarray:
    """x (N, C, H, W) moved down by dy and right by dx pixels (may be negative); uncovered pixels are 0."""
    out = np.zeros_like(x)
    H, W = x.shape[2:]
    src_h = slice(max(0, -dy), H - max(0, dy))
    dst_h = slice(max(0, dy), H - max(0, -dy))
    src_w = slice(max(0, -dx), W - max(0, dx))
    dst_w = slice(max(0, dx), W - max(0, -dx))
    out[:, :, dst_h, dst_w] = x[:, :, src_h, src_w]
    return out


def jitter_invariance(x: np.ndarray, kernel_size: int = 2, shift: tuple[int, int] = (0, 1),
                      levels: int = 1) -> dict[str, float]:
    """How often is the pooled map unchanged when the input moves by `shift` = (down, right) pixels?

    Compares `levels` stacked k x k max poolings (stride k) with `levels` plain subsamplings
    (stride k), on the same input. Returns the fraction of output values that are exactly equal
    before and after the shift, counted over the "active" outputs only (where either map is non-zero),
    so a black background does not count as invariance:
        {"max_pool": ..., "subsample": ..., "active_outputs": count}
    """
    check_array(x, "jitter_invariance", 4, _LAYOUT)
    moved = shift_image(x, *shift)
    result: dict[str, float] = {}
    active_count = 0
    for name in ("max_pool", "subsample"):
        a, b = x, moved
        for _ in range(levels):
            if name == "max_pool":
                a, b = max_pool2d(a, kernel_size)[0], max_pool2d(b, kernel_size)[0]
            else:
                a, b = subsample2d(a, kernel_size), subsample2d(b, kernel_size)
        active = (a != 0) | (b != 0)
        result[name] = float(np.mean(a[active] == b[active])) if active.any() else 1.0
        active_count = max(active_count, int(active.sum()))
    result["active_outputs"] = float(active_count)
    return result
