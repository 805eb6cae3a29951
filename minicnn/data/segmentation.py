"""Segmentation tasks made offline, deterministically, from the real MNIST, Fashion-MNIST and CIFAR-10 files.

    ds = load_segmentation("fashion-on-cifar-seg")      # or "mnist-seg"
    ds.x_train (N, C, S, S) float32 in [0, 1];  ds.y_train (N, S, S) int64, a class per pixel

Two tasks (rules in full in `datasets/README.md`; every random choice comes from one seeded generator,
`numpy.random.default_rng([seed, split])`, split 0 = train, 1 = test):

"fashion-on-cifar-seg" (binary, one object on a cluttered real background, the Carvana kind):
    background  a crop S x S of a CIFAR-10 image (RGB)
    object      a Fashion-MNIST item (grey value v) at a random offset, cut out of another CIFAR-10
                image (the texture, same crop), shaded by the item:
                canvas = texture * (SHADE_FLOOR + (1 - SHADE_FLOOR) v)  where v > ITEM_LEVEL,
                         background                                     elsewhere
    mask        1 where v > ITEM_LEVEL, else 0 (classes: background, object)
    The object's colours are real photo colours, like the background's, so no threshold on intensity
    or colour separates them (tests/test_segmentation_data.py measures the best one).

"mnist-seg" (multi-class, the "M2NIST" layout: several digits on one grey canvas):
    1 to `objects` MNIST digits (uniform count), each at a random offset in an S x S canvas of zeros,
    composited by the maximum (canvas = max over digits of their grey values);
    label       0 background; d + 1 for digit d where the digit that gives the pixel its value (the
                maximum; the later digit on a tie) has v > DIGIT_LEVEL. Digits may overlap; where they
                do, the brighter stroke owns the pixel.

Test canvases use only the official test splits (MNIST/Fashion-MNIST t10k, CIFAR-10 test_batch),
train canvases only the training splits. The photos are the first 4,000 CIFAR-10 training and first 1,000
test images (what the partial copy holds), so the task is the same with the official files or the partial
copy; backgrounds and textures repeat across canvases, but never cross the train/test line.
Nothing is cached: making the default sets takes a few seconds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

import numpy as np

from .datasets import CIFAR_ARCHIVE, Dataset, find_file, load_dataset, register_generated
from .readers import CIFAR_FOLDER

ITEM_LEVEL = 0.1  # a Fashion-MNIST grey value (in [0, 1]) above this is object (dark garments stay whole)
DIGIT_LEVEL = 0.5  # an MNIST grey value above this is digit (the stroke, not its soft rim)
SHADE_FLOOR = 0.5  # the object's texture is scaled by SHADE_FLOOR + (1 - SHADE_FLOOR) v: the item's folds show
ITEM_SIDE = 28  # MNIST and Fashion-MNIST images are 28 x 28
CIFAR_SIDE = 32
TRAIN_SPLIT, TEST_SPLIT = 0, 1  # the second word of the generator's seed
CIFAR_PARTIAL = "cifar10_partial.npz"
CIFAR_TRAIN_PHOTOS, CIFAR_TEST_PHOTOS = 4000, 1000  # the partial copy's photos: the first ones in official order


@dataclass(frozen=True)
class SegmentationConfig:
    """Sizes and counts of a generated task: canvas side S, canvases per split, generator seed, and the most
    objects per canvas (the binary task always places one)."""

    canvas: int
    train: int
    test: int
    seed: int = 0
    objects: int = 1


TASKS: dict[str, SegmentationConfig] = {
    "fashion-on-cifar-seg": SegmentationConfig(canvas=32, train=4000, test=1000),
    "mnist-seg": SegmentationConfig(canvas=64, train=6000, test=1000, objects=3),
}
CLASS_NAMES = {
    "fashion-on-cifar-seg": ["background", "object"],
    "mnist-seg": ["background"] + [f"digit {d}" for d in range(10)],
}


def _check_config(name: str, config: SegmentationConfig) -> None:
    for field in ("canvas", "train", "test", "objects"):
        value = getattr(config, field)
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"load_segmentation({name}): expected {field} as an int >= 1, got {value!r}")
    top = CIFAR_SIDE if name == "fashion-on-cifar-seg" else None
    if config.canvas < ITEM_SIDE or (top is not None and config.canvas > top):
        upper = f" and <= {top} (a crop of a CIFAR-10 image)" if top else ""
        raise ValueError(f"load_segmentation({name}): expected canvas >= {ITEM_SIDE} (an item's side){upper}, "
                         f"got {config.canvas}")
    if name == "fashion-on-cifar-seg" and config.objects != 1:
        raise ValueError(f"load_segmentation({name}): expected objects = 1 (one object per canvas), "
                         f"got {config.objects}")


def _cifar(data_dir, download: bool) -> Dataset:
    """The CIFAR-10 photos the task draws from: the first CIFAR_TRAIN_PHOTOS training and CIFAR_TEST_PHOTOS
    test images in official order, which is exactly the partial copy `cifar10_partial.npz`. So the task
    is the same whichever of the two is installed: the official files (or archive) when present, else
    the partial copy, else `load_dataset("cifar10")` (which downloads, or says what is missing)."""
    official = find_file("cifar10", CIFAR_FOLDER, data_dir) or find_file("cifar10", CIFAR_ARCHIVE, data_dir)
    partial = find_file("cifar10", CIFAR_PARTIAL, data_dir)
    if official is None and partial is not None:
        photos = load_dataset(partial)
    else:
        photos = load_dataset("cifar10", data_dir, download=download)
    return photos.subset(train=CIFAR_TRAIN_PHOTOS, test=CIFAR_TEST_PHOTOS)


def fashion_on_cifar(items: np.ndarray, photos: np.ndarray, count: int, canvas: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` canvases (count, 3, S, S) float32 and masks (count, S, S) int64 from Fashion-MNIST `items`
    (M, 1, 28, 28) and CIFAR-10 `photos` (P, 3, 32, 32), both in [0, 1]; P >= 2 (background != texture)."""
    x = np.empty((count, 3, canvas, canvas), np.float32)
    y = np.zeros((count, canvas, canvas), np.int64)
    for i in range(count):
        item = items[rng.integers(len(items)), 0]  # (28, 28)
        back, texture = rng.choice(len(photos), size=2, replace=False)
        cy, cx = rng.integers(0, CIFAR_SIDE - canvas + 1, size=2)  # the crop of both photos
        oy, ox = rng.integers(0, canvas - ITEM_SIDE + 1, size=2)  # the item's top-left corner
        image = photos[back, :, cy:cy + canvas, cx:cx + canvas].copy()  # (3, S, S)
        grey = np.zeros((canvas, canvas), np.float32)
        grey[oy:oy + ITEM_SIDE, ox:ox + ITEM_SIDE] = item
        inside = grey > ITEM_LEVEL  # (S, S) the mask
        shaded = photos[texture, :, cy:cy + canvas, cx:cx + canvas] * (SHADE_FLOOR + (1 - SHADE_FLOOR) * grey)
        x[i] = np.where(inside, shaded, image)
        y[i] = inside
    return x, y


def digits_on_canvas(digits: np.ndarray, labels: np.ndarray, count: int, canvas: int, objects: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` canvases (count, 1, S, S) float32 and label maps (count, S, S) int64 (0 background, d + 1
    digit d) from MNIST `digits` (M, 1, 28, 28) in [0, 1] with their `labels` (M,)."""
    x = np.zeros((count, 1, canvas, canvas), np.float32)
    y = np.zeros((count, canvas, canvas), np.int64)
    for i in range(count):
        owner = np.zeros((canvas, canvas), np.int64)  # class of the digit that set each pixel's value
        for _ in range(rng.integers(1, objects + 1)):
            k = rng.integers(len(digits))
            oy, ox = rng.integers(0, canvas - ITEM_SIDE + 1, size=2)
            window = (0, slice(oy, oy + ITEM_SIDE), slice(ox, ox + ITEM_SIDE))
            wins = digits[k, 0] >= x[i][window]  # ties go to the later digit
            x[i][window] = np.where(wins, digits[k, 0], x[i][window])
            owner[window[1:]] = np.where(wins, labels[k] + 1, owner[window[1:]])
        y[i] = np.where(x[i, 0] > DIGIT_LEVEL, owner, 0)
    return x, y


def _split(ds: Dataset, split: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the training (TRAIN_SPLIT) or test split."""
    return (ds.x_train, ds.y_train) if split == TRAIN_SPLIT else (ds.x_test, ds.y_test)


def load_segmentation(name: str, config: SegmentationConfig | None = None,
                      data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """The generated task `name` ("fashion-on-cifar-seg" or "mnist-seg") with sizes `config` (default
    TASKS[name]), from the source datasets found as `load_dataset` finds them. The `Dataset`'s labels
    are per pixel: y_train (N, S, S) int64; class_names name the pixel classes."""
    if name not in TASKS:
        raise ValueError(f"load_segmentation: unknown task {name!r}; expected one of {sorted(TASKS)}")
    config = TASKS[name] if config is None else config
    _check_config(name, config)
    if name == "fashion-on-cifar-seg":
        items, photos = load_dataset("fashion-mnist", data_dir, download), _cifar(data_dir, download)
    else:
        digits = load_dataset("mnist", data_dir, download)
    splits = []
    for split, count in ((TRAIN_SPLIT, config.train), (TEST_SPLIT, config.test)):
        rng = np.random.default_rng([config.seed, split])
        if name == "fashion-on-cifar-seg":
            (item_x, _), (photo_x, _) = _split(items, split), _split(photos, split)
            splits.append(fashion_on_cifar(item_x, photo_x, count, config.canvas, rng))
        else:
            digit_x, digit_y = _split(digits, split)
            splits.append(digits_on_canvas(digit_x, digit_y, count, config.canvas, config.objects, rng))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset(name, x_train, y_train, x_test, y_test, list(CLASS_NAMES[name]))


def with_sizes(name: str, **sizes: int) -> SegmentationConfig:
    """TASKS[name] with some fields changed, e.g. `with_sizes("mnist-seg", train=64, test=16)`."""
    if name not in TASKS:
        raise ValueError(f"with_sizes: unknown task {name!r}; expected one of {sorted(TASKS)}")
    return replace(TASKS[name], **sizes)


def digest(ds: Dataset) -> str:
    """SHA-256 (hex) of x_train, y_train, x_test, y_test: each array's dtype, shape and bytes, in that order."""
    h = hashlib.sha256()
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


for _name in TASKS:
    register_generated(_name, load_segmentation)
