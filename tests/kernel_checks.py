"""Shared by the tests of the fast convolution kernels against the plain math (tests only)."""

from __future__ import annotations

import numpy as np

ONE = (1, 1)  # stride, padding or dilation of 1 on both axes


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, relative to max |b| when that exceeds 1 (an absolute error for small values)."""
    return float(np.max(np.abs(a - b), initial=0.0)) / max(1.0, float(np.max(np.abs(b), initial=0.0)))


def float32_case(x_shape: tuple[int, ...], w_shape: tuple[int, ...], seed: int = 0):
    """Random float32 (x, w) and the plain math's float64 forward of them (no bias, stride, padding and
    dilation 1): the reference a float32 kernel must meet to within rounding."""
    from minicnn.functional import conv_im2col as plain

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    return x, w, plain.conv2d_im2col(x.astype(np.float64), w.astype(np.float64), None, ONE, ONE, ONE, 1), rng
