"""A folder of class folders as a dataset (the layout of torchvision's `ImageFolder`).

    photos/cat/1.jpg  photos/cat/2.png  photos/dog/a.jpg ...      # one folder per class
    photos/train/cat/...  photos/test/cat/...                      # or a given train/test split
    ds = load_image_folder("photos")        # also load_dataset("photos/"), minicnn train --dataset photos/

Rules, in order:
1. Classes are the sub-folders (sorted by name; the name is the class name); hidden entries (".x") are
   skipped, and so are files outside a class folder. Every file inside a class folder (sub-folders
   included) is an image candidate. With both `train/` and `test/` present they are the split (the test
   classes must be train classes); otherwise each class is split with `numpy.random.default_rng(seed)`:
   round(TEST_FRACTION * n) of its n images (at least 1 when n >= 2) go to the test split.
2. Bounds, checked from the file list and the headers, before any pixel is decoded: at most MAX_IMAGES
   files, MAX_CLASSES classes and MAX_DATASET_BYTES of float32 images.
3. Every file is opened with Pillow (any format it reads: PNG, JPEG, BMP, GIF, TIFF, WebP, ...) and
   decoded by `minicnn.data.images.load_image` (no inversion). A file that cannot be read is listed and
   skipped, with a count; a class left without images (or empty to begin with) is an error.
4. Sizes: every image is resized (bilinear) to the most common size, with a note of how many were.
   Channels: grey (1) if every image's colour channels are equal, else RGB (3; grey images copied).
5. Pixels are stored as 8-bit (value / 255), as MNIST and CIFAR-10 are.
6. Cache: `FOLDER/.minicnn/dataset.npz` beside `manifest.json` (every file's name, size and mtime, and
   the split settings). A later call whose file list matches the manifest reads the checked .npz
   (`minicnn.files.read_npz`: CRC of every member) and decodes nothing; any change (a file added,
   removed, edited or touched) rebuilds it. A folder that cannot be written is used without a cache.
Notes go to `log` (stderr by default); names from the disk are printed with `printable`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from minicnn.files import FileFormatError, read_npz, save_npz_atomic, write_atomic

from .images import ImageError, load_image

MAX_IMAGES = 100_000
MAX_CLASSES = 1_000
MAX_DATASET_BYTES = 2 << 30  # float32 images held in memory (2 GiB: e.g. 40,000 RGB images of 64x64)
TEST_FRACTION = 0.2
SPLIT_SEED = 0
CACHE_FOLDER = ".minicnn"
CACHE_NPZ, MANIFEST = "dataset.npz", "manifest.json"
MANIFEST_FORMAT = 1
LISTED_PROBLEMS = 10  # unreadable files named one by one; the rest are counted
UINT8_MAX = 255.0
RGB = 3
COLUMNS = 80


class FolderError(ValueError):
    """A folder that cannot be made into a dataset; the message says what to change."""


def printable(name: str) -> str:
    """`name` with control and other non-printing characters escaped (a folder name cannot move the cursor)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def _class_line(names: list[str]) -> str:
    """"N classes: a, b, c" within COLUMNS, the names that do not fit counted."""
    line = f"{len(names)} classes:"
    for i, name in enumerate(names):
        rest = f" ... ({len(names) - i} more)"
        piece = f" {printable(name)}" + ("," if i < len(names) - 1 else "")
        if len(line) + len(piece) + (len(rest) if i < len(names) - 1 else 0) > COLUMNS:
            return line + rest
        line += piece
    return line


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _visible(entries) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith("."))


def _class_files(root: Path, who: str) -> dict[str, list[Path]]:
    """{class name: sorted image candidates} of the class folders in `root`; an empty class is an error."""
    classes = {d.name: d for d in _visible(root.iterdir()) if d.is_dir()}
    if not classes:
        raise FolderError(f"{who}: {root} has no class folders; expected {root}/CLASS/IMAGE files "
                          f"(one folder per class)")
    if len(classes) > MAX_CLASSES:
        raise FolderError(f"{who}: {root} has {len(classes):,} class folders, more than {MAX_CLASSES:,}")
    files = {}
    for name, folder in classes.items():
        found = [p for p in _visible(folder.rglob("*")) if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
        if not found:
            raise FolderError(f"{who}: class folder {printable(str(folder))} is empty; add images or remove it")
        files[name] = found
    return files


def _split(root: Path, seed: int, test_fraction: float, who: str) -> tuple[list[str], list, list]:
    """(class names, [(path, label)] train, [(path, label)] test) by rule 1 of the module docstring."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_files, test_files = _class_files(root / "train", who), _class_files(root / "test", who)
        unknown = sorted(set(test_files) - set(train_files))
        if unknown:
            raise FolderError(f"{who}: {root / 'test'} has classes that train/ lacks: "
                              f"{', '.join(printable(n) for n in unknown)}")
        names = sorted(train_files)
        label = {n: k for k, n in enumerate(names)}
        return (names, [(p, label[n]) for n in names for p in train_files[n]],
                [(p, label[n]) for n in sorted(test_files) for p in test_files[n]])
    files = _class_files(root, who)
    names = sorted(files)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k, name in enumerate(names):
        order = rng.permutation(len(files[name]))
        n_test = max(round(test_fraction * len(order)), 1 if len(order) >= 2 else 0)
        test += [(files[name][i], k) for i in order[:n_test]]
        train += [(files[name][i], k) for i in order[n_test:]]
    if not test:
        raise FolderError(f"{who}: every class of {root} has a single image, so none is left for testing; "
                          f"add images or give train/ and test/ folders")
    return names, train, test


def _manifest(root: Path, names: list[str], train: list, test: list, seed: int, test_fraction: float) -> dict:
    files = [[str(p.relative_to(root)), st.st_size, st.st_mtime_ns]
             for p, _ in train + test for st in (p.stat(),)]
    return {"format": MANIFEST_FORMAT, "seed": seed, "test_fraction": test_fraction, "classes": names,
            "files": sorted(files)}


def _digest(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _read_cache(cache: Path, manifest: dict) -> dict[str, np.ndarray] | None:
    """The cached arrays if the manifest on disk is `manifest` and the .npz was built from it, else None."""
    try:
        if json.loads((cache / MANIFEST).read_text()) != manifest:
            return None
        arrays = read_npz(cache / CACHE_NPZ, what="cached image-folder dataset",
                          keys=("x_train", "y_train", "x_test", "y_test", "class_names", "manifest_sha256",
                                "notes"))
    except (OSError, ValueError, FileFormatError):
        return None
    return arrays if str(arrays["manifest_sha256"]) == _digest(manifest) else None


def _header(path: Path) -> tuple[int, int] | str:
    """(width, height) from the file's header (nothing decoded), or why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        return f"{type(e).__name__}" if isinstance(e, UnidentifiedImageError) else f"{type(e).__name__}: {e}"


def _build(root: Path, names: list[str], train: list, test: list, who: str) -> tuple[dict, list[str]]:
    """Decode every readable image (rules 2-5) -> (arrays for a Dataset, notes)."""
    notes: list[str] = []
    problems: list[str] = []
    sizes: dict[Path, tuple[int, int]] = {}
    for path, _ in train + test:
        size = _header(path)
        if isinstance(size, str):
            problems.append(f"{printable(str(path.relative_to(root)))} ({size})")
        else:
            sizes[path] = size
    if not sizes:
        raise FolderError(f"{who}: none of the {len(train) + len(test)} files in {root} is an image Pillow can read")
    (w, h), _ = Counter(sizes.values()).most_common(1)[0]
    need = len(sizes) * RGB * h * w * np.dtype(np.float32).itemsize
    if need > MAX_DATASET_BYTES:
        raise FolderError(f"{who}: {len(sizes):,} images of {w}x{h} need {need / 2**30:.1f} GiB, more than "
                          f"{MAX_DATASET_BYTES / 2**30:.0f} GiB; use fewer or smaller images")
    splits = {}
    for split, items in (("train", train), ("test", test)):
        images, labels = [], []
        for path, label in items:
            if path not in sizes:
                continue
            try:
                img, _ = load_image(path, shape=(RGB, h, w), invert="no")  # (3, H, W)
            except ImageError as e:
                problems.append(f"{printable(str(path.relative_to(root)))} ({str(e).split(': ', 1)[-1]})")
                continue
            images.append(np.round(img * UINT8_MAX).astype(np.uint8))
            labels.append(label)
        splits[split] = (images, np.array(labels, np.int64))
    if problems:
        notes.append(f"skipped {len(problems)} unreadable file{'s' if len(problems) != 1 else ''}:")
        notes += [f"  {p}" for p in problems[:LISTED_PROBLEMS]]
        if len(problems) > LISTED_PROBLEMS:
            notes.append(f"  ... and {len(problems) - LISTED_PROBLEMS} more")
    for k, name in enumerate(names):
        if not np.any(splits["train"][1] == k):
            skipped = f" ({len(problems)} unreadable files skipped: {'; '.join(problems[:LISTED_PROBLEMS])})"
            raise FolderError(f"{who}: class {printable(name)} has no readable training image"
                              + (skipped if problems else ""))
    if not len(splits["test"][1]):
        raise FolderError(f"{who}: no readable test image in {root}")
    resized = sum(size != (w, h) for size in sizes.values())
    if resized:
        notes.append(f"resized {resized} of {len(sizes)} images to {w}x{h} (width x height, the most common size)")
    grey = [bool(np.all(img[0] == img[1]) and np.all(img[0] == img[2]))  # R = G = B: a grey picture
            for img in splits["train"][0] + splits["test"][0]]
    channels = 1 if all(grey) else RGB
    notes.append("every image is grey: 1 channel" if all(grey) else
                 f"colour: 3 channels ({sum(grey)} grey images copied to R, G and B)" if any(grey) else
                 "colour: 3 channels")
    arrays = {}
    for split, (images, labels) in splits.items():
        x = np.stack(images)[:, :channels]  # (N, C, H, W) uint8
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, labels
    return arrays, notes


def read_image_folder(path: str | os.PathLike, *, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION,
                      log: Callable[[str], None] = _to_stderr) -> dict:
    """A folder of class folders -> {"x_train", "y_train", "x_test", "y_test", "class_names"} (rules in the
    module docstring); `minicnn.data.load_image_folder` makes it a Dataset.

    x (N, C, H, W) float32 in [0, 1] (8-bit steps), y (N,) int64, class_names = the folder names.
    Raises FolderError (a ValueError) for a folder that cannot be a dataset (no classes, an empty class,
    nothing readable, over a bound). Notes (skipped files, resizing, channels, the cache) go to `log`.
    """
    who = "load_image_folder"
    root = Path(path)
    if not root.is_dir():
        raise FolderError(f"{who}: {root} is not a folder")
    if not 0 < test_fraction < 1:
        raise FolderError(f"{who}: expected test_fraction in (0, 1), got {test_fraction!r}")
    names, train, test = _split(root, seed, test_fraction, who)
    if len(train) + len(test) > MAX_IMAGES:
        raise FolderError(f"{who}: {root} holds {len(train) + len(test):,} files, more than {MAX_IMAGES:,}")
    manifest = _manifest(root, names, train, test, seed, test_fraction)
    cache = root / CACHE_FOLDER
    arrays = _read_cache(cache, manifest)
    if arrays is not None:
        notes = [str(n) for n in arrays["notes"]] + [f"read from the cache {cache / CACHE_NPZ} (folder unchanged)"]
    else:
        arrays, notes = _build(root, names, train, test, who)
        arrays.update(class_names=np.array(names), manifest_sha256=np.array(_digest(manifest)),
                      notes=np.array(notes, dtype=str))
        try:
            # the cache is minicnn's own file in its own folder: replacing a stale one is what it is for
            save_npz_atomic(cache / CACHE_NPZ, arrays, overwrite=True)
            text = json.dumps(manifest, indent=1, sort_keys=True)
            write_atomic(cache / MANIFEST, lambda tmp: tmp.write_text(text), overwrite=True)
            notes.append(f"cached as {cache / CACHE_NPZ} (rebuilt when the folder changes)")
        except OSError as e:
            notes.append(f"not cached ({cache} cannot be written: {e.strerror or e})")
    log(f"{printable(str(root))}: {len(arrays['y_train'])} train and {len(arrays['y_test'])} test images")
    log(_class_line(names))
    for note in notes:
        log(note)
    return {"x_train": arrays["x_train"].astype(np.float32) / np.float32(UINT8_MAX),
            "y_train": arrays["y_train"].astype(np.int64),
            "x_test": arrays["x_test"].astype(np.float32) / np.float32(UINT8_MAX),
            "y_test": arrays["y_test"].astype(np.int64), "class_names": list(names)}
