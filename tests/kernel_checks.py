"""Shared by the tests of the fast convolution kernels against the plain math (tests only)."""

from __future__ import annotations

import numpy as np

ONE = (1, 1)  # stride, padding or dilation of 1 on both axes


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, relative to max |b| when that exceeds 1 (an absolute error for small values)."""
    return float(np.max(np.abs(a - b), initial=0.0)) / max(1.0, float(np.max(np.abs(b), initial=0.0)))
