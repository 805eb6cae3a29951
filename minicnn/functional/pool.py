"""Pooling (lecture: "pooling + subsampling"): max, average, sum, global average, subsampling, as pure
functions, and the jitter-invariance measurement.

A pooling layer slides a KH x KW window over each channel separately, with stride (SH, SW) and
padding (PH, PW), and reduces each window to one number:

    y[n, c, oh, ow] = reduce( x_pad[n, c, oh*SH + i, ow*SW + j]  for 0 <= i < KH, 0 <= j < KW )
    OH = floor((H + 2 PH - KH) / SH) + 1          (the one formula, `conv_output_size`)

    max      reduce = max                      backward: route dy to the argmax (first maximum)
    avg      reduce = mean (padded zeros count, divisor KH*KW, as PyTorch count_include_pad=True)
    sum      reduce = sum                      backward: copy dy to every window position
    (SoftPool, mixed and stochastic pooling, the review's variants: `minicnn.functional.pool_variants`)

Where windows overlap (stride < kernel) an input value belongs to several windows and its gradient is
the SUM over them. Max pooling keeps only the argmax index of each window (0 .. KH*KW-1, row-major
inside the window); ties go to the FIRST maximum in that order (np.argmax's rule). NaN counts as larger
than every number (np.max's and np.argmax's rule): a window with a NaN gives y = NaN and argmax = its
first NaN, so the gradient goes to the value y came from. Backward sends dy to the winner only, inf and
NaN included (it selects with np.where; dy * 0 would be NaN). Max pooling pads with -inf, so padding
never beats a real value (a window of padding and -inf only picks its first entry; if that is padding,
its gradient is dropped); like PyTorch, padding may be at most half the kernel, so every window holds
at least one real value.

How it is computed: max, avg and sum loop over the KH*KW window offsets (i, j) only; offset (i, j) of
every window at once is ONE strided slice of the (padded) input, `_tap`, so there is no per-pixel
Python loop and no copy of the windows. Backward adds pieces back through the same slices of a zeroed,
padded gradient buffer, then cuts the padding off. The same math, fast (2x2 taps, blocks of images,
workers): `minicnn.kernels.pool`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, check_grad, conv_output_size, pair, positive_pair

_LAYOUT = "(N, C, H, W)"


class PoolGeometry:
    """Kernel (KH, KW), stride (SH, SW), padding (PH, PW) and output size (OH, OW) of one pooling call,
    checked: stride defaults to the kernel, 0 <= padding <= kernel / 2, the window fits the padded input."""

    __slots__ = ("KH", "KW", "SH", "SW", "PH", "PW", "OH", "OW")

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

    def offsets(self) -> list[tuple[int, int, int]]:
        """(k, i, j) for every window offset, k = i*KW + j (row-major inside the window)."""
        return [(i * self.KW + j, i, j) for i in range(self.KH) for j in range(self.KW)]


def _geometry(x: np.ndarray, kernel_size, stride, padding, who: str) -> PoolGeometry:
    check_array(x, who, 4, _LAYOUT)
    return PoolGeometry(x.shape, kernel_size, stride, padding, who)


def _geometry_dy(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride, padding, who: str) -> PoolGeometry:
    """A backward rule's geometry, with dy checked to be the output's shape (N, C, OH, OW)."""
    g = PoolGeometry(x_shape, kernel_size, stride, padding, who)
    check_grad(dy, (*x_shape[:2], g.OH, g.OW), who)
    return g


def _pad(x: np.ndarray, g: PoolGeometry, value: float) -> np.ndarray:
    """x with PH rows and PW columns of `value` on each side (x itself when there is no padding)."""
    if g.PH == 0 and g.PW == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)), constant_values=value)


def _tap(xp: np.ndarray, g: PoolGeometry, i: int, j: int) -> np.ndarray:
    """Entry (i, j) of every window at once: the strided view xp[:, :, oh*SH + i, ow*SW + j] (N, C, OH, OW)."""
    return xp[:, :, i:i + g.SH * (g.OH - 1) + 1:g.SH, j:j + g.SW * (g.OW - 1) + 1:g.SW]


# ---- max pooling ------------------------------------------------------------------------------


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "max_pool2d"
               ) -> tuple[np.ndarray, np.ndarray]:
    """y = max over each window; returns (y (N, C, OH, OW), argmax (N, C, OH, OW) int64).

    argmax is the row-major position k = i*KW + j inside the window of the FIRST maximum: offset k
    replaces the running maximum only when it is strictly larger (or NaN, which counts as the largest
    value, while the maximum so far is not: np.argmax's rule; y is then NaN). Padding is -inf; a window
    of padding and -inf only therefore keeps its first entry, which may be padding (its gradient is then
    dropped). stride defaults to kernel_size.
    """
    g = _geometry(x, kernel_size, stride, padding, who)
    xp = _pad(x, g, -np.inf)
    y = _tap(xp, g, 0, 0).copy()  # the maximum so far (N, C, OH, OW)
    argmax = np.zeros(y.shape, dtype=np.int64)
    for k, i, j in g.offsets()[1:]:
        t = _tap(xp, g, i, j)  # entry (i, j) of every window
        wins = (t > y) | (np.isnan(t) & ~np.isnan(y))
        y = np.where(wins, t, y)
        argmax = np.where(wins, k, argmax)
    return y, argmax


def max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                        stride=None, padding=0) -> np.ndarray:
    """dx: each dy[n, c, oh, ow] goes to the input position that won its window (the argmax), and only
    there (inf or NaN in dy included: np.where selects); values that won several overlapping windows
    receive the sum. dy, argmax (N, C, OH, OW). A winner in the padding gets cut off with the border."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "max_pool2d_backward")
    check_grad(argmax, np.shape(dy), "max_pool2d_backward (argmax)")
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + 2 * g.PH, W + 2 * g.PW), dtype=dy.dtype)
    with np.errstate(invalid="ignore"):  # overlapping windows: inf + (-inf) = NaN, IEEE's sum
        for k, i, j in g.offsets():  # dy where offset (i, j) won, else 0:
            _tap(dxp, g, i, j)[...] += np.where(argmax == k, dy, 0)
    return dxp[:, :, g.PH:g.PH + H, g.PW:g.PW + W]


# ---- sum and average pooling ------------------------------------------------------------------


def sum_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "sum_pool2d") -> np.ndarray:
    """y = sum over each window (zero padding): the lecture's "sum-pooling". One strided slice per window
    offset (i, j), added up; no window copy."""
    g = _geometry(x, kernel_size, stride, padding, who)
    xp = _pad(x, g, 0.0)
    y = np.zeros((x.shape[0], x.shape[1], g.OH, g.OW), dtype=x.dtype)
    for _, i, j in g.offsets():
        y += _tap(xp, g, i, j)
    return y


def sum_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None,
                        padding=0) -> np.ndarray:
    """dx[p] = sum of dy over the windows containing p: every offset (i, j) of every window receives its
    window's dy, added into a zeroed, padded buffer through the same strided slice forward read; the
    padding border (whose gradient belongs to no input) is then cut off."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "sum_pool2d_backward")
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + 2 * g.PH, W + 2 * g.PW), dtype=dy.dtype)
    with np.errstate(invalid="ignore"):  # overlapping windows: inf + (-inf) = NaN, IEEE's sum
        for _, i, j in g.offsets():
            _tap(dxp, g, i, j)[...] += dy
    return dxp[:, :, g.PH:g.PH + H, g.PW:g.PW + W]


def avg_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, who: str = "avg_pool2d") -> np.ndarray:
    """y = (1 / (KH*KW)) * sum over each window; padded zeros count (PyTorch count_include_pad=True)."""
    g = _geometry(x, kernel_size, stride, padding, who)
    return sum_pool2d(x, kernel_size, stride, padding, who) / (g.KH * g.KW)


def avg_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None,
                        padding=0) -> np.ndarray:
    """dx[p] = sum over the windows containing p of dy / (KH*KW): the sum-pool backward of dy / (KH*KW).
    Padded positions count in the divisor (forward's count_include_pad) but their gradient is dropped."""
    g = _geometry_dy(dy, x_shape, kernel_size, stride, padding, "avg_pool2d_backward")
    return sum_pool2d_backward(dy / (g.KH * g.KW), x_shape, kernel_size, stride, padding)


def global_avg_pool2d(x: np.ndarray, keepdims: bool = False, who: str = "global_avg_pool2d") -> np.ndarray:
    """y[n, c] = mean over (H, W) of x[n, c]. (N, C, H, W) -> (N, C), or (N, C, 1, 1) with keepdims."""
    check_array(x, who, 4, _LAYOUT)
    return x.mean(axis=(2, 3), keepdims=keepdims)


def global_avg_pool2d_backward(dy: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """dx[n, c, h, w] = dy[n, c] / (H*W). dy (N, C), or (N, C, 1, 1) from keepdims=True."""
    N, C, H, W = x_shape
    check_grad(dy, (N, C, 1, 1) if np.ndim(dy) == 4 else (N, C), "global_avg_pool2d_backward")
    return np.broadcast_to(dy.reshape(N, C, 1, 1) / (H * W), x_shape).copy()


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
