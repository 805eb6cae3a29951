"""Seeded mini-batches, the validation split and NumPy data augmentation.

Reproducibility without hidden state: the order of epoch `e` is a permutation drawn from a generator
seeded with (seed, e), and the augmentation of batch `b` uses a generator seeded with (seed, e, b).
So the whole data stream is a pure function of (seed, epoch, batch) — a run interrupted anywhere and
resumed from (epoch, batch) sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Indices 0..n-1 in the order epoch `epoch` visits them (a seeded permutation when shuffling)."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches in an epoch of `n` examples: ceil(n / batch_size), or floor with `drop_last`."""
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                    epoch: int = 0, start: int = 0, augment: Augment | None = None,
                    drop_last: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (batch_index, x_batch, y_batch) for one epoch, starting at batch `start`.

    x (N, C, H, W), y (N,). Batch b holds images order[b*B:(b+1)*B] of `epoch_order(N, seed, epoch)`;
    `augment(x_batch, rng)` (if given) gets a generator seeded with (seed, epoch, b).
    """
    if batch_size < 1:
        raise ValueError(f"iterate_batches: expected batch_size >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"iterate_batches: expected as many labels as images, got x {x.shape} and y {y.shape}")
    order = epoch_order(len(x), seed, epoch, shuffle)
    for b in range(start, num_batches(len(x), batch_size, drop_last)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, np.random.default_rng([seed, epoch, b]))
        yield b, xb, yb


def split_validation(x: np.ndarray, y: np.ndarray, size: int,
                     seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out `size` examples for validation -> ((x_train, y_train), (x_val, y_val)).

    The examples are shuffled by a permutation seeded with `seed`; the first `size` of it are held
    out, the rest (in that shuffled order) are kept for training. x (N, ...), y (N,); 0 <= size < N
    (size 0: nothing held out, everything kept). Disjoint, and a pure function of (N, size, seed).
    """
    if len(x) != len(y):
        raise ValueError(f"split_validation: expected as many labels as examples, got x {x.shape} and y {y.shape}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 0 <= size < len(x):
        raise ValueError(f"split_validation: expected size an integer in [0, {len(x)}) (some examples left to "
                         f"train on), got {size!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    held, kept = order[:size], order[size:]
    return (x[kept], y[kept]), (x[held], y[held])


def random_crop(x: np.ndarray, padding: int, rng: np.random.Generator, mode: str = "constant") -> np.ndarray:
    """Pad each image by `padding` on every side (zeros, or `mode="edge"` to repeat the border, which
    keeps a uniform background uniform), then cut a random H x W window (one offset per image): a
    random shift by up to `padding` pixels.

    x (N, C, H, W) -> (N, C, H, W). Vectorised: a sliding-window view of the padded batch, indexed
    with one (dy, dx) per image — no Python loop over images.
    """
    if x.ndim != 4:
        raise ValueError(f"random_crop: expected images (N, C, H, W), got shape {x.shape}")
    n, _, h, w = x.shape
    _check_padding("random_crop", padding, (h, w))
    if padding == 0:
        return x
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode=mode)  # (N, C, H+2p, W+2p)
    windows = np.lib.stride_tricks.sliding_window_view(xp, (h, w), axis=(2, 3))  # (N, C, 2p+1, 2p+1, H, W)
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    return np.ascontiguousarray(windows[np.arange(n), :, dy, dx])  # (N, C, H, W)


def _check_padding(who: str, padding: int, size: tuple[int, int] | None = None) -> None:
    """padding: an int >= 0, and (given the image size) smaller than it: a shift as large as the image
    moves the whole picture out of view."""
    if not isinstance(padding, int | np.integer) or padding < 0:
        raise ValueError(f"{who}: expected padding (pixels) >= 0, got {padding!r}")
    if size is not None and padding >= min(size):
        raise ValueError(f"{who}: expected padding < image size {size[0]}x{size[1]}, got {padding}")


def random_hflip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability p. x (N, C, H, W) -> (N, C, H, W) (a new array)."""
    flip = rng.random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def shift(padding: int = 2) -> Augment:
    """Random translation by up to `padding` pixels, border repeated (for digits, where a flip would
    change the class)."""
    _check_padding("shift", padding)

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(x, padding, rng, mode="edge")

    return augment


def crop_flip(padding: int = 4) -> Augment:
    """The standard CIFAR augmentation: random crop with `padding` zero padding, then a random flip."""
    _check_padding("crop_flip", padding)

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_hflip(random_crop(x, padding, rng), rng)

    return augment


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean[c]) / std[c] per channel. x (N, C, H, W), mean and std (C,) -> float32 (N, C, H, W)."""
    mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return ((x - mean) / std).astype(np.float32, copy=False)
