"""The generated segmentation tasks: bit-exact (SHA-256), test canvases from test splits only, the rules of
datasets/README.md, and a threshold does not solve the binary task."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from minicnn.data import load_dataset
from minicnn.data.segmentation import (
    CLASS_NAMES,
    DIGIT_LEVEL,
    ITEM_LEVEL,
    ITEM_SIDE,
    TASKS,
    digest,
    digits_on_canvas,
    load_segmentation,
    with_sizes,
)

# SHA-256 of x_train, y_train, x_test, y_test for 16 train and 8 test canvases, seed 0 (minicnn.data.segmentation.digest)
DIGESTS = {
    "fashion-on-cifar-seg": "edeea8d5b8a1c5794e7e9cbb9836ae97c86290e7bad96b02803b246cc26ce988",
    "mnist-seg": "3dbc8146e45a7a09f9c325f28b8c010c7a1bfb789887ad4d807ed5e93970672d",
}
THRESHOLD_STEPS = 101
MAX_THRESHOLD_DICE = 0.6  # the best single threshold on a colour channel or the grey level stays below this


def _small(name: str, data_dir, **sizes):
    """The task with 16 train and 8 test canvases (or `sizes`), made once per test session."""
    return _made(name, str(data_dir), tuple(sorted({"train": 16, "test": 8, **sizes}.items())))


@functools.cache
def _made(name: str, data_dir: str, sizes: tuple):
    return load_segmentation(name, with_sizes(name, **dict(sizes)), data_dir=data_dir, download=False)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_arrays_are_bit_exact_and_repeatable(name, data_dir):
    assert digest(_small(name, data_dir)) == DIGESTS[name]
    again = load_segmentation(name, with_sizes(name, train=16, test=8), data_dir=data_dir, download=False)
    assert digest(again) == DIGESTS[name]
    assert digest(_small(name, data_dir, seed=1)) != DIGESTS[name]


@pytest.mark.parametrize("name, channels", [("fashion-on-cifar-seg", 3), ("mnist-seg", 1)])
def test_layout_dtypes_and_classes(name, channels, data_dir):
    ds = _small(name, data_dir)
    side = TASKS[name].canvas
    assert ds.x_train.shape == (16, channels, side, side) and ds.x_test.shape == (8, channels, side, side)
    assert ds.y_train.shape == (16, side, side) and ds.y_test.shape == (8, side, side)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.class_names == CLASS_NAMES[name] and 0 <= ds.y_train.min() and ds.y_train.max() < ds.num_classes
    assert (ds.y_train > 0).any() and (ds.y_train == 0).any()


def test_fashion_canvases_come_from_their_own_split(data_dir):
    """Each canvas's background (outside the mask) is a CIFAR-10 image of its own split, never the other's;
    the object's pixels are another image of the same split, shaded by at least SHADE_FLOOR."""
    ds = _small("fashion-on-cifar-seg", data_dir)
    photos = load_dataset(data_dir / "cifar10" / "cifar10_partial.npz")
    for x, y, own, other in ((ds.x_train, ds.y_train, photos.x_train, photos.x_test),
                             (ds.x_test, ds.y_test, photos.x_test, photos.x_train)):
        for canvas, mask in zip(x, y, strict=True):
            outside = mask == 0
            same = np.all(own[:, :, outside] == canvas[:, outside], axis=(1, 2))  # (P,)
            assert same.sum() >= 1
            assert not np.all(other[:, :, outside] == canvas[:, outside], axis=(1, 2)).any()


def test_digit_canvases_come_from_their_own_split(data_dir):
    """With one digit per canvas, the digit's 28x28 window is an MNIST image of the canvas's split."""
    ds = _small("mnist-seg", data_dir, objects=1, train=4, test=4)
    mnist = load_dataset("mnist", data_dir, download=False)
    for x, own, other in ((ds.x_train, mnist.x_train, mnist.x_test), (ds.x_test, mnist.x_test, mnist.x_train)):
        for canvas in x[:, 0]:
            rows, cols = np.nonzero(canvas)
            top, left = min(rows.min(), canvas.shape[0] - ITEM_SIDE), min(cols.min(), canvas.shape[1] - ITEM_SIDE)
            found = []
            for oy in range(max(0, rows.max() - ITEM_SIDE + 1), top + 1):
                for ox in range(max(0, cols.max() - ITEM_SIDE + 1), left + 1):
                    window = canvas[oy:oy + ITEM_SIDE, ox:ox + ITEM_SIDE]
                    if np.count_nonzero(window) == len(rows):  # the whole digit lies in this window
                        found.append(window)
            assert any(np.all(own[:, 0] == w, axis=(1, 2)).any() for w in found)
            assert not any(np.all(other[:, 0] == w, axis=(1, 2)).any() for w in found)


def test_mask_rules(data_dir):
    binary = _small("fashion-on-cifar-seg", data_dir)
    assert set(np.unique(binary.y_train)) == {0, 1}
    digits = _small("mnist-seg", data_dir)
    labelled = digits.y_train > 0
    np.testing.assert_array_equal(labelled, digits.x_train[:, 0] > DIGIT_LEVEL)
    assert 0 < ITEM_LEVEL < DIGIT_LEVEL < 1


class _Scripted:
    """A stand-in generator that returns scripted draws, to place digits by hand."""

    def __init__(self, draws):
        self.draws = list(draws)

    def integers(self, low, high=None, size=None):
        value = self.draws.pop(0)
        return np.array(value) if size is not None else value


def test_overlapping_digits_the_brighter_stroke_owns_the_pixel():
    a = np.zeros((1, ITEM_SIDE, ITEM_SIDE), np.float32)
    b = np.zeros_like(a)
    a[0, 5, 5:8] = [0.9, 0.6, 0.3]
    b[0, 5, 5:8] = [0.7, 0.6, 0.8]
    digits, labels = np.stack([a, b]), np.array([3, 7])
    # one canvas of side 28: two digits, digit index 0 at (0, 0), then digit index 1 at (0, 0)
    x, y = digits_on_canvas(digits, labels, 1, ITEM_SIDE, 2, _Scripted([2, 0, (0, 0), 1, (0, 0)]))
    np.testing.assert_array_equal(x[0, 0, 5, 5:8], np.float32([0.9, 0.6, 0.8]))
    np.testing.assert_array_equal(y[0, 5, 5:8], [3 + 1, 7 + 1, 7 + 1])  # tie at 0.6: the later digit
    assert y.sum() == 4 + 8 + 8


def test_a_threshold_does_not_solve_the_binary_task(data_dir):
    ds = _small("fashion-on-cifar-seg", data_dir, test=200)
    mask = ds.y_test.astype(bool)
    best = 0.0
    for feature in (ds.x_test.mean(axis=1), *np.moveaxis(ds.x_test, 1, 0)):  # grey, R, G, B: (N, S, S)
        for t in np.linspace(0, 1, THRESHOLD_STEPS):
            for guess in (feature > t, feature < t):
                best = max(best, 2 * (guess & mask).sum() / (guess.sum() + mask.sum()))
    assert best < MAX_THRESHOLD_DICE


@pytest.mark.parametrize("name, sizes, message", [
    ("mnist-seg", {"canvas": 20}, r"expected canvas >= 28"),
    ("fashion-on-cifar-seg", {"canvas": 48}, r"expected canvas >= 28 \(an item's side\) and <= 32"),
    ("fashion-on-cifar-seg", {"objects": 2}, r"expected objects = 1"),
    ("mnist-seg", {"train": 0}, r"expected train as an int >= 1, got 0"),
])
def test_bad_sizes(name, sizes, message):
    with pytest.raises(ValueError, match=rf"load_segmentation\({name}\): {message}"):
        load_segmentation(name, with_sizes(name, **sizes))


def test_unknown_task():
    with pytest.raises(ValueError, match=r"load_segmentation: unknown task 'm2nist'; expected one of"):
        load_segmentation("m2nist")
