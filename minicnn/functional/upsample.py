"""Interpolation upsampling by integer factors: nearest, bilinear and bicubic (PyTorch semantics).

Bilinear and bicubic are separable: along each axis every output is a fixed weighted sum of a few
inputs, i.e. a matrix A (OUT, IN). The whole upsampling is then

    y[n, c] = A_h @ x[n, c] @ A_w^T          (N, C, H, W) -> (N, C, H*sh, W*sw)
    backward (the adjoint):  dx[n, c] = A_h^T @ dy[n, c] @ A_w

Source coordinate of output index o (align_corners=False, PyTorch's `area_pixel_compute_source_index`):
    src = (o + 0.5) / scale - 0.5
  bilinear: src clamped at 0; i0 = floor(src), i1 = min(i0 + 1, IN - 1), weights (1 - t, t), t = src - i0.
  bicubic:  i0 = floor(src), t = src - i0, taps i0-1 .. i0+2 clamped to [0, IN-1] (border replicate),
            Keys' cubic convolution with A = -0.75 (PyTorch's choice):
              W(d) = (A+2)|d|^3 - (A+3)|d|^2 + 1          for |d| <= 1
              W(d) = A|d|^3 - 5A|d|^2 + 8A|d| - 4A         for 1 < |d| < 2
nearest: y[n, c, o, p] = x[n, c, floor(o / sh), floor(p / sw)]; backward sums dy over each sh x sw block.
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, check_grad, positive_pair

MODES = ("nearest", "bilinear", "bicubic")
CUBIC_A = -0.75  # PyTorch / OpenCV value of Keys' free parameter


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Weights of taps at distances (1 + t, t, 1 - t, 2 - t) from the source point. t (OUT,) -> (OUT, 4)."""
    A = CUBIC_A

    def near(d):  # |d| <= 1
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def interpolation_matrix(in_size: int, scale: int, mode: str) -> np.ndarray:
    """The (in_size*scale, in_size) float64 matrix A of 1-D upsampling by an integer `scale`."""
    out = np.arange(in_size * scale)
    A = np.zeros((in_size * scale, in_size))
    if mode == "nearest":
        A[out, out // scale] = 1.0
        return A
    src = (out + 0.5) / scale - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(np.int64)
        t = src - i0
        i1 = np.minimum(i0 + 1, in_size - 1)
        np.add.at(A, (out, i0), 1.0 - t)
        np.add.at(A, (out, i1), t)
        return A
    if mode == "bicubic":
        i0 = np.floor(src).astype(np.int64)
        w = _cubic_weights(src - i0)  # (OUT, 4)
        for tap in range(4):  # taps i0-1 .. i0+2, clamped at the borders (weights then add up)
            np.add.at(A, (out, np.clip(i0 - 1 + tap, 0, in_size - 1)), w[:, tap])
        return A
    raise ValueError(f"upsample: expected mode in {MODES}, got {mode!r}")


def upsample2d(x: np.ndarray, scale_factor=2, mode: str = "nearest", who: str = "upsample2d") -> np.ndarray:
    """(N, C, H, W) -> (N, C, H*sh, W*sw) by nearest, bilinear or bicubic interpolation."""
    check_array(x, who, 4, "(N, C, H, W)")
    sh, sw = positive_pair(scale_factor, who, "scale_factor")
    if mode not in MODES:
        raise ValueError(f"{who}: expected mode in {MODES}, got {mode!r}")
    if mode == "nearest":
        N, C, H, W = x.shape
        y = np.broadcast_to(x[:, :, :, None, :, None], (N, C, H, sh, W, sw))  # (N, C, H, sh, W, sw)
        return y.reshape(N, C, H * sh, W * sw)
    a_h = interpolation_matrix(x.shape[2], sh, mode).astype(x.dtype)
    a_w = interpolation_matrix(x.shape[3], sw, mode).astype(x.dtype)
    return a_h @ (x @ a_w.T)  # (OH, H) @ (N, C, H, OW)


def upsample2d_backward(dy: np.ndarray, x_shape: tuple[int, ...], scale_factor=2, mode: str = "nearest"
                        ) -> np.ndarray:
    """dx = A_h^T dy A_w (nearest: sum of dy over each sh x sw block)."""
    sh, sw = positive_pair(scale_factor, "upsample2d_backward", "scale_factor")
    N, C, H, W = x_shape
    check_grad(dy, (N, C, H * sh, W * sw), "upsample2d_backward")
    if mode == "nearest":
        return dy.reshape(N, C, H, sh, W, sw).sum(axis=(3, 5))
    a_h = interpolation_matrix(H, sh, mode).astype(dy.dtype)
    a_w = interpolation_matrix(W, sw, mode).astype(dy.dtype)
    return a_h.T @ (dy @ a_w)  # (H, OH) @ (N, C, OH, W)
