"""Batch normalisation, fast: the numbers of `minicnn.functional.norm` for feature maps (N, C, H, W) in
few passes over memory. Other ranks (BatchNorm1D's (N, C)) run the plain functions.

What changes (never the math):
- no x_hat array: with keep_x_hat=False, forward returns x_hat = None and backward reads the forward's
  input x (the caller keeps a reference) with its mean, x_hat = (x - mu) * inv_std, folded into the
  passes;
- per-(image, channel) sums run over x viewed as rows (N*C, H*W) (`_map_sums`: `einsum`, no temporary;
  NumPy's reductions over axes (0, 2, 3) of an NCHW array run far below memory speed), added in float64;
- every sum of squares or products is taken over values centred on the mean first (two-pass), with the
  mean rounded to x's dtype (s) and its float64 remainder d = mu - s corrected for afterwards, so a
  mean far from 0 (1e3 with std 1, say) costs no precision, in float32 too; the statistics (C,) are
  float64 whatever x's dtype;
- per-channel constants are expanded to (1, C, H, W) arrays (`_per_channel`), which NumPy's loops
  stream at about twice the speed of a (1, C, 1, 1) column;
- with MINICNN_WORKERS > 1, each pass over a large batch runs in parts side by side
  (`minicnn.threads.split_large`, read at each call); each map is still summed alone and the sums added
  in image order, so the numbers are those of one thread, bit for bit. The passes are bound by memory
  speed, which the second core barely raises here (a max over 8 MB: 0.44 ms on one thread, 0.40 on two):
  BatchNorm2D + ReLU on (64, 32, 32, 32) fwd+bwd 8.0 -> 6.8 ms; cifar_net with 2 workers, these and max
  pooling split or not: 527 vs 485 img/s (in-process A/B, 11 rounds; `minicnn.threads.SPLIT_MIN_VALUES`).
Measured on the shared 2-core machine (load average 0.8-0.9), 1 thread, float32, BatchNorm2D
(64, 32, 32, 32) forward + backward: 3.8-4.0 ms, was 7.1-7.4 ms with x_hat kept and (1, C, 1, 1)
columns; PyTorch 2.13 6.3-6.7 ms (`python benchmarks/bench_vs_torch.py --threads 1 --no-memory`, median
of 9 alternating rounds, two runs).
"""

from __future__ import annotations

import numpy as np

from minicnn import threads
from minicnn.functional import norm as plain
from minicnn.functional.checks import check_grad

MAP_RANK = 4  # the fast passes are for feature maps (N, C, H, W)


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H*W), a view when a is C-contiguous (else a copy); N may be 0."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2] * a.shape[3])


def _map_sums(a: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Per-map sums of a (N, C, H, W) (or of a * other) in a's dtype -> (N, C): `einsum` over the rows
    (N*C, H*W), row-wise dot products for a * other, no temporary."""
    if other is None:
        per_map = np.einsum("ij->i", _rows(a))  # (N*C,)
    else:
        per_map = np.einsum("ij,ij->i", _rows(a), _rows(other))  # (N*C,)
    return per_map.reshape(a.shape[0], a.shape[1])


def channel_sums(a: np.ndarray) -> np.ndarray:
    """Fast twin of `minicnn.functional.norm.channel_sums`: float64 (C,) per-channel sums of a (N, C, H, W).

    Each map's H*W values are summed in a's dtype (`_map_sums`); the N*C map sums are added in float64.
    NumPy's reduction over axes (0, 2, 3) of an NCHW array runs at a third of this speed. The convolution
    kernels' bias gradient."""
    return _map_sums(a).sum(axis=0, dtype=np.float64)


def _sums_over_images(fn, x: np.ndarray) -> np.ndarray:
    """fn(lo, hi) -> the map sums (Nb, ...) of images lo..hi-1, for the parts of x's batch side by side
    (`minicnn.threads.split_large`), stacked in image order -> (N, ...). The same numbers as one part:
    each map is summed alone."""
    return np.concatenate(threads.split_large(fn, x.shape[0], x.size))


def _per_channel(v: np.ndarray, x: np.ndarray, dtype=None) -> np.ndarray:
    """(C,) -> (1, C, H, W) in dtype (default x's): each channel's value repeated over its H x W map.

    Broadcast against x (N, C, H, W) this is one contiguous operand over C*H*W values per image; NumPy's
    loops run about twice as fast on it as on a (1, C, 1, 1) column, which they visit map by map with
    a stride-0 scalar (0.20 vs 0.39 ms for x *= v on (64, 32, 32, 32) float32, 1 thread, timeit)."""
    c, h, w = x.shape[1:]
    column = np.asarray(v, dtype=x.dtype if dtype is None else dtype).reshape(1, c, 1, 1)
    return np.ascontiguousarray(np.broadcast_to(column, (1, c, h, w)))


def _train_maps(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """(y, mu, inv_std, var) for x (N, C, H, W), statistics float64 (C,), in five passes over memory,
    with s = mu rounded to x's dtype and d = mu - s (tiny; float64):
        mu  = per-channel sum of x / M
        y   = x - s                                 (centred, into the output)
        var = per-channel sum of y * y / M - d^2    (two-pass: no cancellation, whatever the mean)
        y  *= k;  y += beta - d k                   (k = gamma * inv_std)"""
    m = x.size // x.shape[1]
    x = np.ascontiguousarray(x)
    mu = _sums_over_images(lambda lo, hi: _map_sums(x[lo:hi]), x).sum(axis=0, dtype=np.float64) / m
    shift = _per_channel(mu, x)  # mu rounded to x's dtype (s), per pixel
    d = mu - mu.astype(x.dtype)
    y = np.empty_like(x)  # (N, C, H, W), centred; scaled in place below

    def centre(lo: int, hi: int) -> np.ndarray:
        np.subtract(x[lo:hi], shift, out=y[lo:hi])
        return _map_sums(y[lo:hi], y[lo:hi])

    var = _sums_over_images(centre, x).sum(axis=0, dtype=np.float64) / m - d**2
    inv_std = 1.0 / np.sqrt(var + eps)
    k = gamma * inv_std
    scale, offset = _per_channel(k, x), _per_channel(beta - d * k, x)

    def affine(lo: int, hi: int) -> None:
        y[lo:hi] *= scale
        y[lo:hi] += offset

    threads.split_large(affine, x.shape[0], x.size)
    return y, mu, inv_std, var


def batch_norm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, *, keep_x_hat: bool = True
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.norm.batch_norm_train`: (y, x_hat, inv_std, mu, var).

    For (N, C, H, W), inv_std, mu and var are float64 (C,) whatever x's dtype (the x-based backward needs
    the exact mean). keep_x_hat=False returns x_hat = None and keeps nothing the size of x but y: pass x
    itself and mu to `batch_norm_backward` then (what BatchNorm2D does)."""
    if x.ndim != MAP_RANK:
        y, x_hat, inv_std, mu, var = plain.batch_norm_train(x, gamma, beta, eps)
        return y, x_hat if keep_x_hat else None, inv_std, mu, var
    y, mu, inv_std, var = _train_maps(x, gamma, beta, eps)
    x_hat = (x - _per_channel(mu, x)) * _per_channel(inv_std, x) if keep_x_hat else None
    return y, x_hat, inv_std, mu, var


def _backward(dy: np.ndarray, z: np.ndarray, mu: np.ndarray, scale: np.ndarray, k: np.ndarray):
    """dx, dgamma, dbeta for (N, C, H, W), with x_hat = (z - mu) * scale per channel, k = gamma / sigma.

    With s = mu rounded to dy's dtype and d = mu - s (tiny; float64):
        dbeta  = sum dy
        t      = z - s                     (centred first: no cancellation in the next sum)
        dgamma = scale * (sum dy * t - d * dbeta)
        dx     = k * (dy - dbeta / M - x_hat * dgamma / M)
               = k * (t * a + dy - b),  a = -scale * dgamma / M,  b = dbeta / M + d * a     (in place in t)
    Seven passes over memory; one new array, dx."""
    m = dy.size // dy.shape[1]
    dy = np.ascontiguousarray(dy)
    shift = _per_channel(mu, dy)  # mu rounded to dy's dtype (s), per pixel
    d = mu - np.asarray(mu).astype(dy.dtype)
    t = np.empty_like(dy)  # (N, C, H, W), becomes dx

    def centre(lo: int, hi: int) -> np.ndarray:
        np.subtract(z[lo:hi], shift, out=t[lo:hi], dtype=dy.dtype)
        return np.stack([_map_sums(dy[lo:hi]), _map_sums(dy[lo:hi], t[lo:hi])], axis=1)  # (Nb, 2, C)

    sums = _sums_over_images(centre, dy)  # (N, 2, C)
    dbeta, dy_t = sums.sum(axis=0, dtype=np.float64)
    dgamma = scale * (dy_t - d * dbeta)
    a = -scale * dgamma / m
    ta, tb, tk = _per_channel(a, dy), _per_channel(dbeta / m + d * a, dy), _per_channel(k, dy)

    def finish(lo: int, hi: int) -> None:
        part = t[lo:hi]
        part *= ta
        part += dy[lo:hi]
        part -= tb
        part *= tk

    threads.split_large(finish, dy.shape[0], dy.size)
    return t, dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def batch_norm_backward(dy: np.ndarray, x_hat: np.ndarray | None, inv_std: np.ndarray, gamma: np.ndarray, *,
                        x: np.ndarray | None = None, mean: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.norm.batch_norm_backward`: (dx, dgamma, dbeta).

    Give x_hat, or x_hat=None with the forward's input x and its mean (from keep_x_hat=False): x_hat is
    then never made. For (N, C, H, W): one new array (dx), nothing else the size of x."""
    if (x_hat is None) == (x is None) or (x is not None and mean is None):
        raise ValueError("batch_norm_backward: expected x_hat, or x_hat=None with x and mean, got "
                         f"x_hat {'None' if x_hat is None else 'given'}, x {'None' if x is None else 'given'}, "
                         f"mean {'None' if mean is None else 'given'}")
    check_grad(dy, (x_hat if x is None else x).shape, "batch_norm_backward")
    if dy.ndim != MAP_RANK:
        if x is not None:
            x_hat = (x - plain._per_feature(mean, x)) * plain._per_feature(inv_std, x)
        return plain.batch_norm_backward(dy, x_hat, inv_std, gamma)
    if x is not None:
        return _backward(dy, x, mean, inv_std, gamma * inv_std)
    c = dy.shape[1]
    return _backward(dy, x_hat, np.zeros(c), np.ones(c), gamma * inv_std)


def batch_norm_eval(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                    running_var: np.ndarray, eps: float) -> np.ndarray:
    """Fast twin of `minicnn.functional.norm.batch_norm_eval`: y = x * scale + shift, scale = gamma /
    sqrt(running_var + eps), shift = beta - running_mean * scale, as (1, C, H, W) constants (`_per_channel`)
    for (N, C, H, W); the plain function for other ranks."""
    if x.ndim != MAP_RANK:
        return plain.batch_norm_eval(x, gamma, beta, running_mean, running_var, eps)
    scale = gamma / np.sqrt(running_var + eps)
    shift = beta - running_mean * scale
    y = x * _per_channel(scale, x, scale.dtype)
    y += _per_channel(shift, x, shift.dtype)  # in place: no second temporary the size of x
    return y
