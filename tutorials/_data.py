"""Real pictures for the tutorials: MNIST / CIFAR-10 test images when they are on this machine.

`digits(n)` returns the first n MNIST test digits (N, 1, 28, 28) in [0, 1] through the engine's own
loader (`minicnn.data.load_dataset`, never downloading). When MNIST is not available it draws n
simple stroke pictures instead and says so, so that every chapter still runs offline.
"""

from __future__ import annotations

import numpy as np


def digits(n: int) -> tuple[np.ndarray, str]:
    from minicnn.data import DatasetError, load_dataset

    try:
        ds = load_dataset("mnist", download=False)
        return ds.x_test[:n].astype(np.float64), f"the first {n} MNIST test digits"
    except DatasetError:
        return strokes(n), f"{n} drawn stroke pictures (MNIST not found: set MINICNN_DATA to see real digits)"


def strokes(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """n pictures of two thick random line segments each, (n, 1, size, size) in [0, 1], quantised to
    8-bit levels stored exactly (like real image files), as float64."""
    rng = np.random.default_rng(seed)
    i, j = np.indices((size, size))
    out = np.zeros((n, 1, size, size))
    for k in range(n):
        for _ in range(2):
            (r0, c0), (r1, c1) = rng.uniform(4, size - 4, (2, 2))
            t = np.clip(((i - r0) * (r1 - r0) + (j - c0) * (c1 - c0)) / ((r1 - r0) ** 2 + (c1 - c0) ** 2 + 1e-9), 0, 1)
            dist = np.hypot(i - (r0 + t * (r1 - r0)), j - (c0 + t * (c1 - c0)))
            out[k, 0] = np.maximum(out[k, 0], np.clip(2.0 - dist, 0, 1))
    return (np.round(out * 255) / 255).astype(np.float32).astype(np.float64)
