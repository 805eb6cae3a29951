"""Max and average pooling, fast: the same numbers as `minicnn.functional.pool`, in fewer, cheaper passes.

What the plain functions do is in `minicnn.functional.pool` (a loop over the KH*KW window offsets, each
one strided slice). The kernels here change how, never what:
- the argument checks are memoised (`_geometry`): a training loop pools the same shapes every step, and
  the checks would otherwise be most of a small call's cost;
- max pooling forward keeps the running maximum in place (np.maximum with out=) and finds the first
  maximum afterwards by counting the leading window entries strictly below it (`_first_maximum`), which
  needs no np.where per offset; NaN is looked for only when y holds one;
- 2x2 windows with stride 2 first copy the four offsets into contiguous arrays (`_taps_2x2`): NumPy runs
  a stride-2 view as 16-value rows and pays per row;
- forward runs over cache-sized blocks of images (BLOCK_VALUES), split over MINICNN_WORKERS threads when
  large (`_by_images`, `minicnn.threads.split_blocks`): its later passes read the block from cache;
- when the windows tile the input (kernel == stride, no padding) backward *assigns* each offset's piece
  into a (N, C, OH, KH, OW, KW) view of dx: no zero fill, no accumulation, no padded buffer;
- max pooling backward multiplies dy by [argmax == k] when dy is finite (10x faster than np.where:
  1.1 vs 0.1 ms on (64, 32, 16, 16) float32) and, for 2x2 windows covering the input, computes
  dx = upsample(dy) * [upsample(argmax) == position in the window] in contiguous passes (`_route_2x2`),
  with the upsampling done by widening each item's bit pattern to twice its width (`_upsample2`);
- NaN and inf give the plain functions' numbers (overlapping windows add inf and -inf into NaN), computed
  without RuntimeWarnings (np.errstate around those sums only).

Measured, cifar_net's MaxPool2D(2) forward on (64, 32, 32, 32) / (64, 64, 16, 16) float32, the stride-2
slices of the 4 offsets -> the contiguous taps, 2-core machine shared with other jobs (load average
0.4-1.5): alone, 21 alternating rounds, 1 thread: 2.21 -> 1.84 / 1.18 -> 0.97 ms; inside a training step
(`benchmarks/profile_step.py`, medians of 5 alternating runs of 30 steps): 1 thread 5.3 -> 3.0 / 1.65 ->
1.43 ms, MINICNN_WORKERS=2 3.8 -> 2.0 / 1.44 -> 1.16 ms. Backward stays one pass over the whole batch:
cache-sized blocks, and a split over 2 workers, measured no faster (its passes are memory-bound; on this
machine even a plain 8 MB copy takes as long on 2 threads as on 1); checking dy for inf/NaN costs it
0.07 ms (1.5 -> 1.6 ms).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from minicnn import threads
from minicnn.functional import pool as plain
from minicnn.functional.checks import check_array, check_grad
from minicnn.functional.pool import PoolGeometry

SUPPORT = ("pool_candidates",)  # the planner's side (what max_pool2d hands it), not a kernel
BLOCK_VALUES = 2**18  # input values per block of images in max pooling (1 MB of float32, cache-sized)
GEOMETRY_MEMO = 512  # pooling geometries remembered (a net has a few; every step asks for the same ones)
_WIDER = {1: (np.uint8, np.uint16), 2: (np.uint16, np.uint32), 4: (np.uint32, np.uint64)}  # item size -> uints
_LAYOUT = "(N, C, H, W)"


@lru_cache(maxsize=GEOMETRY_MEMO)
def _cached_geometry(x_shape, kernel_size, stride, padding, who: str) -> PoolGeometry:
    return PoolGeometry(x_shape, kernel_size, stride, padding, who)


def _geometry(x_shape: tuple[int, ...], kernel_size, stride=None, padding=0, who: str = "pool2d") -> PoolGeometry:
    """`PoolGeometry`, memoised on its (hashable) arguments. Invalid arguments raise every time
    (exceptions are not cached); an unhashable argument (a list) is checked afresh."""
    try:
        return _cached_geometry(tuple(x_shape), kernel_size, stride, padding, who)
    except TypeError:  # unhashable argument, e.g. kernel_size given as a list
        return PoolGeometry(x_shape, kernel_size, stride, padding, who)


def _tiles(g: PoolGeometry) -> bool:
    """The windows tile the input (up to dropped trailing rows/columns): kernel == stride, no padding, so
    each input value is in at most one window and backward can assign instead of accumulating."""
    return (g.KH, g.KW) == (g.SH, g.SW) and g.PH == 0 and g.PW == 0


def _scatter_taps(piece: Callable[[int], np.ndarray], x_shape: tuple[int, ...], g: PoolGeometry, dtype
                  ) -> np.ndarray:
    """dx = sum over window offsets k of piece(k) (N, C, OH, OW), put back where offset k reads.

    Windows that tile: each piece is *assigned* into a (N, C, OH, KH, OW, KW) buffer (no zero fill, no
    accumulation, no padding). Otherwise the pieces are added (+=) into a zeroed, padded buffer whose
    border is then cut off, as in `minicnn.functional.pool`."""
    N, C, H, W = x_shape
    if _tiles(g):
        dx6 = np.empty((N, C, g.OH, g.KH, g.OW, g.KW), dtype=dtype)  # (N, C, OH, KH, OW, KW)
        for k, i, j in g.offsets():
            dx6[:, :, :, i, :, j] = piece(k)
        dx = dx6.reshape(N, C, g.OH * g.KH, g.OW * g.KW)
        if dx.shape[2:] != (H, W):  # trailing rows/columns that no window covered get 0
            dx = np.pad(dx, ((0, 0), (0, 0), (0, H - dx.shape[2]), (0, W - dx.shape[3])))
        return dx
    dxp = np.zeros((N, C, H + 2 * g.PH, W + 2 * g.PW), dtype=dtype)
    with np.errstate(invalid="ignore"):  # overlapping windows: inf + (-inf) = NaN, as the plain sum gives
        for k, i, j in g.offsets():
            plain._tap(dxp, g, i, j)[...] += piece(k)
    return dxp[:, :, g.PH:g.PH + H, g.PW:g.PW + W]


def _route(dy: np.ndarray, index: np.ndarray, x_shape: tuple[int, ...], g: PoolGeometry) -> np.ndarray:
    """Send each dy[n, c, oh, ow] to window position index[n, c, oh, ow]; everything else gets 0.

    Offset k's piece is dy * [index == k]; when dy holds inf or NaN (dy * 0 = NaN would land on every
    position of the window) it is np.where(index == k, dy, 0) instead, as in the plain function."""
    finite = bool(np.isfinite(dy).all())
    zero = np.zeros((), dy.dtype)

    def piece(k: int) -> np.ndarray:
        return dy * (index == k) if finite else np.where(index == k, dy, zero)

    return _scatter_taps(piece, x_shape, g, dy.dtype)


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


def _by_images(fn: Callable[[int, int], None], n: int, per_image: int, block_values: int = BLOCK_VALUES,
               parts: int | None = None) -> None:
    """fn(lo, hi) over blocks of images of about `block_values` values, large jobs in MINICNN_WORKERS parts
    side by side (`minicnn.threads.split_blocks`, `large_parts`, read at each call), or in `parts` parts."""
    parts = threads.large_parts(n * per_image) if parts is None else parts
    threads.split_blocks(fn, n, per_image, block_values, parts)


def _taps_2x2(x: np.ndarray) -> list[np.ndarray]:
    """The four entries of every 2x2 window (stride 2; H, W even) as contiguous arrays, in one copy:
    taps[2 i + j] = x[:, :, i::2, j::2] (B, C, OH, OW)."""
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


@lru_cache(maxsize=GEOMETRY_MEMO)
def pool_candidates(x_shape: tuple[int, ...], itemsize: int, workers: int) -> tuple[tuple[str, tuple], ...]:
    """((name, (block values, parts or None)), ...): max pooling's planner candidates, "default" first
    (BLOCK_VALUES, the workers split as `large_parts` says), then blocks of L2/2, L2 and 2*L2 (this
    machine's caches), a block size giving the same images per block as one before being dropped, then,
    with several workers, the other side of the split rule ("whole" / "split")."""
    from .conv import block_sizes

    n, c, h, w = x_shape
    per_image = c * h * w
    specs: dict[str, tuple] = {"default": (None, None)}  # None: BLOCK_VALUES and large_parts, read at the call
    seen = {max(1, BLOCK_VALUES // per_image)}
    for name, entries in block_sizes(itemsize).items():
        values = entries  # values of this item size that fit in that cache size
        if max(1, values // per_image) not in seen:
            seen.add(max(1, values // per_image))
            specs[f"block {name}"] = (values, None)
    if workers > 1:
        split = n * per_image >= threads.SPLIT_MIN_VALUES
        specs["whole" if split else "split"] = (None, 1 if split else workers)
    return tuple(specs.items())


@lru_cache(maxsize=GEOMETRY_MEMO)
def _pool_key(x_shape: tuple[int, ...], dtype: str, kernel: tuple, stride: tuple, padding: tuple, workers: int) -> str:
    from .conv import batch_class
    from .planner import op_key

    n, c, h, w = x_shape
    window = np.empty((c, *kernel), np.dtype(dtype))  # op_key reads only its shape and dtype
    return op_key("max_pool2d", window, batch=batch_class(n), image=f"{c}x{h}x{w}", stride=stride,
                  padding=padding)


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "max_pool2d"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.pool.max_pool2d`: the same y and argmax (argmax as uint8 when the
    window has at most 256 entries, else int32), over blocks of images, split over workers when large.

    Planned (`minicnn.kernels.planner`): the block size and the split are chosen by measuring
    (`pool_candidates`); every candidate computes the same numbers (blocks of whole images)."""
    from .planner import planner

    check_array(x, who, 4, _LAYOUT)
    g = _geometry(x.shape, kernel_size, stride, padding, who)
    workers = threads.configured_workers()
    specs = pool_candidates(x.shape, x.itemsize, workers)
    key = _pool_key(x.shape, x.dtype.str, (g.KH, g.KW), (g.SH, g.SW), (g.PH, g.PW), workers)
    candidates = {name: functools.partial(_max_pool_blocks, x, g, *spec) for name, spec in specs}
    return planner().run(key, candidates, (workers, threads.configured_threads()))


def _max_pool_blocks(x: np.ndarray, g: PoolGeometry, block_values: int | None, parts: int | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax) over blocks of about `block_values` input values (None: BLOCK_VALUES), in `parts` parts
    (None: `large_parts`)."""
    n, c, h, w = x.shape
    block_values = BLOCK_VALUES if block_values is None else block_values
    y = np.empty((n, c, g.OH, g.OW), x.dtype)
    argmax = np.empty(y.shape, np.uint8 if g.KH * g.KW <= 256 else np.int32)

    def block(lo: int, hi: int) -> None:  # images lo .. hi-1
        if _tiles(g) and (g.KH, g.KW) == (2, 2):  # an odd last row or column belongs to no window
            taps = _taps_2x2(x[lo:hi, :, :2 * g.OH, :2 * g.OW])
        else:
            xp = plain._pad(x[lo:hi], g, -np.inf)
            taps = [plain._tap(xp, g, i, j) for _, i, j in g.offsets()]  # KH*KW views (B, C, OH, OW)
        np.maximum(taps[0], taps[-1], out=y[lo:hi])  # (a single entry: its own maximum)
        for t in taps[1:-1]:
            np.maximum(y[lo:hi], t, out=y[lo:hi])
        _first_maximum(taps, y[lo:hi], argmax[lo:hi])

    _by_images(block, n, c * h * w, block_values, parts)
    return y, argmax


def max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                        stride=None, padding=0) -> np.ndarray:
    """Fast twin of `minicnn.functional.pool.max_pool2d_backward`: 2x2 windows covering the input take
    `_route_2x2`, tiling windows assign, others add dy * [argmax == k] (np.where when dy is not finite).
    One pass over the whole batch (neither blocks nor workers made it faster)."""
    g = _geometry(x_shape, kernel_size, stride, padding, "max_pool2d_backward")
    check_grad(dy, (*x_shape[:2], g.OH, g.OW), "max_pool2d_backward")
    check_grad(argmax, np.shape(dy), "max_pool2d_backward (argmax)")
    if _tiles(g) and (g.KH, g.KW) == (2, 2) and tuple(x_shape[2:]) == (2 * g.OH, 2 * g.OW):
        return _route_2x2(dy, argmax)
    return _route(dy, argmax, x_shape, g)


def avg_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None,
                        padding=0) -> np.ndarray:
    """Fast twin of `minicnn.functional.pool.avg_pool2d_backward`: when the windows tile the input, each
    offset's dy / (KH*KW) is assigned into a (N, C, OH, KH, OW, KW) view (no zeroed, padded buffer);
    otherwise the plain function."""
    g = _geometry(x_shape, kernel_size, stride, padding, "avg_pool2d_backward")
    if not _tiles(g):
        return plain.avg_pool2d_backward(dy, x_shape, kernel_size, stride, padding)
    check_grad(dy, (*x_shape[:2], g.OH, g.OW), "avg_pool2d_backward")
    share = dy / (g.KH * g.KW)
    return _scatter_taps(lambda k: share, x_shape, g, dy.dtype)
