"""Batch normalisation as pure functions (Ioffe & Szegedy, 2015).

Normalise over every axis except the feature axis 1:
    mu = mean(x),  var = mean((x - mu)^2)          (biased, used to normalise)
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta
Backward, with M the number of values averaged per feature:
    dbeta  = sum dy
    dgamma = sum dy * x_hat
    dx     = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

`batch_norm_train_reference` / `batch_norm_backward_reference` are these lines as written.
The fast paths compute the same numbers for feature maps (N, C, H, W) with few passes over memory:
- `batch_norm_train_x` / `batch_norm_backward_x` (what BatchNorm2D uses) make no x_hat array: backward
  reads the forward's input x (kept by reference) with its mean and inv_std, x_hat = (x - mu) * inv_std;
- per-(image, channel) sums run over x viewed as rows (N*C, H*W) (`einsum`, no temporary; NumPy's
  reductions over axes (0, 2, 3) of an NCHW array run far below memory speed), added in float64;
- every sum of squares or products is taken over values centred on the mean first (two-pass), so a
  mean far from 0 (1e3 with std 1, say) costs no precision;
- per-channel constants are expanded to (1, C, H, W) arrays (`_per_channel`), which NumPy's loops
  stream at about twice the speed of a (1, C, 1, 1) column.
- with MINICNN_WORKERS > 1, each pass over a large batch runs in parts side by side
  (`minicnn.threads.split_large`); each map is still summed alone and the sums added in image order,
  so the numbers are those of one thread, bit for bit. The passes are bound by memory speed, which the
  second core barely raises here (a max over 8 MB: 0.44 ms on one thread, 0.40 on two): BatchNorm2D +
  ReLU on (64, 32, 32, 32) fwd+bwd 8.0 -> 6.8 ms; cifar_net with 2 workers, these and max pooling split
  or not: 527 vs 485 img/s (in-process A/B, 11 rounds; `minicnn.threads.SPLIT_MIN_VALUES`);
`batch_norm_train` / `batch_norm_backward` (the x_hat form, kept for callers that want x_hat) share
that code. Measured on the shared 2-core machine (load average 0.8-0.9), 1 thread, float32,
BatchNorm2D (64, 32, 32, 32) forward + backward: 3.8-4.0 ms, was 7.1-7.4 ms with x_hat kept and
(1, C, 1, 1) columns; PyTorch 2.13 6.3-6.7 ms (`python benchmarks/bench_vs_torch.py --threads 1
--no-memory`, median of 9 alternating rounds, two runs).
"""

from __future__ import annotations

import numpy as np

from minicnn.threads import split_large

from .checks import check_grad


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _per_feature(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) -> broadcastable against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_train_reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """Returns (y, x_hat, inv_std, batch_mean, batch_var_biased). x (N, C) or (N, C, H, W)."""
    axes = _axes(x)
    mu = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_feature(mu, x)) * _per_feature(inv_std, x)
    y = _per_feature(gamma, x) * x_hat + _per_feature(beta, x)
    return y, x_hat, inv_std, mu, var


def batch_norm_backward_reference(dy, x_hat, inv_std, gamma):
    """Returns (dx, dgamma, dbeta) for the training-mode forward."""
    axes = _axes(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    m = dy.size // dy.shape[1]
    dx = _per_feature(gamma * inv_std, dy) * (
        dy - _per_feature(dbeta / m, dy) - x_hat * _per_feature(dgamma / m, dy)
    )
    return dx, dgamma, dbeta


def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, as y = x * scale + shift per feature.

    For (N, C, H, W) the per-channel scale and shift are (1, C, H, W) arrays (`_per_channel`, faster
    loops, the same values)."""
    scale = gamma / np.sqrt(running_var + eps)
    shift = beta - running_mean * scale
    if x.ndim == 4:
        scale, shift = _per_channel(scale, x, scale.dtype), _per_channel(shift, x, shift.dtype)
    else:
        scale, shift = _per_feature(scale, x), _per_feature(shift, x)
    y = x * scale
    y += shift  # in place: no second temporary the size of x
    return y


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H*W), a view when a is C-contiguous (else a copy); N may be 0."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2] * a.shape[3])


def map_sums(a: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Per-map sums of a (N, C, H, W) (or of a * other) in a's dtype -> (N, C): `einsum` over the rows
    (N*C, H*W), row-wise dot products for a * other, no temporary."""
    if other is None:
        per_map = np.einsum("ij->i", _rows(a))  # (N*C,)
    else:
        per_map = np.einsum("ij,ij->i", _rows(a), _rows(other))  # (N*C,)
    return per_map.reshape(a.shape[0], a.shape[1])


def channel_sums(a: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Sum over images and pixels per channel of a (N, C, H, W) (or of a * other) -> float64 (C,).

    Each map's H*W values are summed in a's dtype (`map_sums`); the N*C map sums are added in float64.
    The reductions over axes (0, 2, 3) of an NCHW array that this replaces ran at a third of its speed.
    Also a convolution's bias gradient (`conv_im2col.bias_grad`)."""
    return map_sums(a, other).sum(axis=0, dtype=np.float64)


def _sums_over_images(fn, x: np.ndarray) -> np.ndarray:
    """fn(lo, hi) -> the map sums (Nb, ...) of images lo..hi-1, for the parts of x's batch side by side
    (`minicnn.threads.split_large`), stacked in image order -> (N, ...). The same numbers as one part:
    each map is summed alone."""
    return np.concatenate(split_large(fn, x.shape[0], x.size))


def _per_channel(v: np.ndarray, x: np.ndarray, dtype=None) -> np.ndarray:
    """(C,) -> (1, C, H, W) in dtype (default x's): each channel's value repeated over its H x W map.

    Broadcast against x (N, C, H, W) this is one contiguous operand over C*H*W values per image; NumPy's
    loops run about twice as fast on it as on a (1, C, 1, 1) column, which they visit map by map with
    a stride-0 scalar (0.20 vs 0.39 ms for x *= v on (64, 32, 32, 32) float32, 1 thread, timeit)."""
    c, h, w = x.shape[1:]
    column = np.asarray(v, dtype=x.dtype if dtype is None else dtype).reshape(1, c, 1, 1)
    return np.ascontiguousarray(np.broadcast_to(column, (1, c, h, w)))


def batch_norm_train_x(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode forward that keeps nothing the size of x but y: (y, mean, inv_std, biased var).

    The backward partner `batch_norm_backward_x` reads the input x itself (the caller keeps a reference)
    instead of x_hat, so no x_hat array is made. For (N, C, H, W): mean, inv_std and var are float64 (C,)
    whatever x's dtype (backward needs the exact mean, see `_backward`), and the work is five passes
    over memory, with s = mu rounded to x's dtype and d = mu - s (tiny; float64):
        mu  = per-channel sum of x / M
        y   = x - s                                 (centred, into the output)
        var = per-channel sum of y * y / M - d^2    (two-pass: no cancellation, whatever the mean)
        y  *= k;  y += beta - d k                   (k = gamma * inv_std)
    Other ranks, e.g. (N, C), go through the reference lines (statistics in x's dtype).
    """
    if x.ndim != 4:
        y, _, inv_std, mu, var = batch_norm_train_reference(x, gamma, beta, eps)
        return y, mu, inv_std, var
    m = x.size // x.shape[1]
    x = np.ascontiguousarray(x)
    mu = _sums_over_images(lambda lo, hi: map_sums(x[lo:hi]), x).sum(axis=0, dtype=np.float64) / m
    shift = _per_channel(mu, x)  # mu rounded to x's dtype (s), per pixel
    d = mu - mu.astype(x.dtype)
    y = np.empty_like(x)  # (N, C, H, W), centred; scaled in place below

    def centre(lo: int, hi: int) -> np.ndarray:
        np.subtract(x[lo:hi], shift, out=y[lo:hi])
        return map_sums(y[lo:hi], y[lo:hi])

    var = _sums_over_images(centre, x).sum(axis=0, dtype=np.float64) / m - d**2
    inv_std = 1.0 / np.sqrt(var + eps)
    k = gamma * inv_std
    scale, offset = _per_channel(k, x), _per_channel(beta - d * k, x)

    def affine(lo: int, hi: int) -> None:
        y[lo:hi] *= scale
        y[lo:hi] += offset

    split_large(affine, x.shape[0], x.size)
    return y, mu, inv_std, var


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
        return np.stack([map_sums(dy[lo:hi]), map_sums(dy[lo:hi], t[lo:hi])], axis=1)  # (Nb, 2, C)

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

    split_large(finish, dy.shape[0], dy.size)
    return t, dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def batch_norm_backward_x(dy: np.ndarray, x: np.ndarray, mu: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) from the forward's input x, mean and inv_std (see `batch_norm_train_x`).

    For (N, C, H, W): one new array (dx), nothing else the size of x."""
    check_grad(dy, x.shape, "batch_norm_backward_x")
    if dy.ndim != 4:
        x_hat = (x - _per_feature(mu, x)) * _per_feature(inv_std, x)
        return batch_norm_backward_reference(dy, x_hat, inv_std, gamma)
    return _backward(dy, x, mu, inv_std, gamma * inv_std)


def batch_norm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """`batch_norm_train_reference`, fast for (N, C, H, W): (y, x_hat, inv_std, mean, biased var).

    `batch_norm_train_x`, then x_hat = (x - mean) * inv_std."""
    if x.ndim != 4:
        return batch_norm_train_reference(x, gamma, beta, eps)
    y, mu, inv_std, var = batch_norm_train_x(x, gamma, beta, eps)
    x_hat = (x - _per_channel(mu, x)) * _per_channel(inv_std, x)
    return y, x_hat, inv_std.astype(x.dtype), mu.astype(x.dtype), var.astype(x.dtype)


def batch_norm_backward(dy, x_hat, inv_std, gamma):
    """`batch_norm_backward_reference`, fast for (N, C, H, W): (dx, dgamma, dbeta) from x_hat."""
    check_grad(dy, x_hat.shape, "batch_norm_backward")
    if dy.ndim != 4:
        return batch_norm_backward_reference(dy, x_hat, inv_std, gamma)
    c = dy.shape[1]
    return _backward(dy, x_hat, np.zeros(c), np.ones(c), gamma * inv_std)
