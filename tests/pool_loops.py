"""The direct loops of pooling (one Python iteration per output value, as the equation reads): the
independent reference the plain `minicnn.functional.pool` functions are tested against. Slow; tests only.
Also `special`: hard input values (ties, signed zeros, +-inf, NaN)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.functional.pool import PoolGeometry

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.inf, -np.inf, np.nan])


def special(rng, shape, dtype=np.float64):
    """Values drawn from a few numbers (many ties) with +-inf and NaN among them."""
    return rng.choice(SPECIAL, shape).astype(dtype)


def _soft(v: np.ndarray) -> float:
    e = np.exp(v - v.max())
    return float(np.sum(e * v) / np.sum(e))


REDUCERS: dict[str, Callable[[np.ndarray], float]] = {"max": np.max, "avg": np.mean, "sum": np.sum, "soft": _soft}


def pool2d_loop(x: np.ndarray, kernel_size, stride=None, padding=0, mode: str = "max"
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """mode "max" (also returns the first-maximum index, NaN beating numbers), "avg", "sum", "soft".
    Returns (y, argmax or None)."""
    g = PoolGeometry(x.shape, kernel_size, stride, padding, "pool2d_loop")
    pad = ((0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW))
    xp = np.pad(x, pad, constant_values=-np.inf if mode == "max" else 0.0)
    N, C = x.shape[:2]
    y = np.zeros((N, C, g.OH, g.OW), dtype=x.dtype)
    argmax = np.zeros((N, C, g.OH, g.OW), dtype=np.int64) if mode == "max" else None
    for n in range(N):
        for c in range(C):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    window = xp[n, c, oh * g.SH:oh * g.SH + g.KH, ow * g.SW:ow * g.SW + g.KW].ravel()
                    y[n, c, oh, ow] = REDUCERS[mode](window)
                    if argmax is not None:
                        best = 0
                        for k, v in enumerate(window):  # strict '>' keeps the first maximum
                            if v > window[best] or (np.isnan(v) and not np.isnan(window[best])):  # NaN beats numbers
                                best = k
                        argmax[n, c, oh, ow] = best
    return y, argmax


def max_pool2d_backward_loop(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size,
                             stride=None, padding=0) -> np.ndarray:
    """For every output, dx[winner] += dy. A winner in the padding (a window of -inf and padding only) is
    not part of dx: its dy is dropped."""
    g = PoolGeometry(x_shape, kernel_size, stride, padding, "max_pool2d_backward_loop")
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(g.OH):
                for ow in range(g.OW):
                    i, j = divmod(int(argmax[n, c, oh, ow]), g.KW)
                    h, w = oh * g.SH + i - g.PH, ow * g.SW + j - g.PW
                    if 0 <= h < H and 0 <= w < W:
                        dx[n, c, h, w] += dy[n, c, oh, ow]
    return dx


def spread_loop(dy: np.ndarray, x_shape: tuple[int, ...], kernel_size, stride=None, padding=0) -> np.ndarray:
    """Sum-pool backward: for every output, every real input position of its window gets += dy."""
    g = PoolGeometry(x_shape, kernel_size, stride, padding, "spread_loop")
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for oh in range(g.OH):
        for ow in range(g.OW):
            for i in range(g.KH):
                for j in range(g.KW):
                    h, w = oh * g.SH + i - g.PH, ow * g.SW + j - g.PW
                    if 0 <= h < H and 0 <= w < W:
                        dx[:, :, h, w] += dy[:, :, oh, ow]
    return dx
