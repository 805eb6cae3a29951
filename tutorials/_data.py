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


def small_dataset(name: str, n_train: int | None, n_test: int | None):
    """The first n_train training and n_test test images of a real dataset, standardised with the
    training subset's per-channel mean and std (as `minicnn train` does), as a `minicnn.data.Dataset`
    that owns its arrays: the full dataset is released, so a chapter stays small in memory.
    Raises `Unavailable` (the chapter says what is missing) when the dataset is not on this machine."""
    from minicnn.data import DatasetError, load_dataset, standardize

    from ._runner import Unavailable

    try:
        full = load_dataset(name, download=False)
    except DatasetError as e:
        raise Unavailable(f"{name} is not on this machine (set MINICNN_DATA): {str(e).split('. ')[0]}") from e
    ds = full.subset(train=n_train, test=n_test)
    mean, std = ds.channel_stats()
    ds.x_train, ds.x_test = standardize(ds.x_train, mean, std), standardize(ds.x_test, mean, std)
    if ds.x_train.base is not None or ds.x_test.base is not None:  # standardize may return a view: own it
        ds.x_train, ds.x_test = ds.x_train.copy(), ds.x_test.copy()
    ds.y_train, ds.y_test = ds.y_train.copy(), ds.y_test.copy()  # views would keep the full arrays alive
    ds.extra = {}
    return ds
