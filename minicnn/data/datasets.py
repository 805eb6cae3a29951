"""Finding, verifying, downloading and loading datasets.

    ds = load_dataset("mnist")                       # or "fashion-mnist", "cifar10", "path/to/file.npz",
                                                     # "photos/" (a folder of class folders: data/folder.py)
    ds.x_train (N, C, H, W) float32 in [0, 1];  ds.y_train (N,) int64;  ds.class_names

Normalisation: images are only scaled to [0, 1] (uint8 / 255). Per-channel standardisation
(x - mean) / std is left to the caller — `Dataset.channel_stats()` gives the training-set mean and
std, and `minicnn train` applies it and stores it in the checkpoint so `predict` can do the same.

Where files are looked for, in order: the `data_dir` argument (`--data-dir`), the folder named by the
environment variable MINICNN_DATA, then the cache `cache_dir()` (`datasets/` of this checkout, or
~/.cache/minicnn/datasets for an installed package). Inside a folder a file is looked for under the
dataset's sub-folder (`mnist/`, `fashion-mnist/`, `cifar10/`) and then directly in the folder.
A missing file is downloaded into the cache from the official source when `download=True` and the
machine is online; otherwise `DatasetError` says what is missing, where it looked and how to get it.
Every official file is checked against `checksums.txt` (size, MD5, SHA-256) before it is read; a
corrupt or truncated file raises `ChecksumError` and is never used.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.files import FileFormatError

from .folder import FolderError, read_image_folder
from .readers import (
    CIFAR_FOLDER,
    CIFAR_META,
    CIFAR_TEST_BATCH,
    CIFAR_TRAIN_BATCHES,
    DataFormatError,
    read_cifar10,
    read_dataset_npz,
    read_idx,
    to_unit_float,
)

CHECKSUMS_FILE = Path(__file__).with_name("checksums.txt")
ENV_VAR = "MINICNN_DATA"
DOWNLOAD_TIMEOUT_S = 30
CHUNK_BYTES = 1 << 20
STATS_BLOCK = 1000  # images per block in Dataset.channel_stats (8 MB of float64 for MNIST)

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

# name -> (sub-folder, files, download mirrors tried in order, class names)
SOURCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], list[str]]] = {
    "mnist": ("mnist", MNIST_FILES,
              ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
              [str(i) for i in range(10)]),
    "fashion-mnist": ("fashion-mnist", MNIST_FILES,
                      ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                      FASHION_CLASSES),
    "cifar10": ("cifar10", (CIFAR_ARCHIVE,), ("https://www.cs.toronto.edu/~kriz/",), CIFAR_CLASSES),
}
ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
           "cifar_10": "cifar10"}


class DatasetError(RuntimeError):
    """A dataset cannot be provided: missing offline, failed download, wrong format. The message says
    what to do; command-line tools print it without a traceback."""


class DatasetFormatError(DatasetError, DataFormatError):
    """A dataset file is there but damaged or of the wrong structure. Both a DatasetError (what command-line
    tools catch) and a ValueError (`minicnn.files.FileFormatError`, what every damaged-file error is)."""


class ChecksumError(DatasetError, FileFormatError):
    """A file's size or digest differs from checksums.txt: corrupt, truncated or not the official file."""


@dataclass
class Dataset:
    """Train/test split of an image-classification dataset.

    x_train (N, C, H, W) float32 in [0, 1], y_train (N,) int64, x_test, y_test likewise;
    class_names[k] names label k; `extra` holds any other arrays of a user's .npz (e.g. y_train_all).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x_train.shape[1:])

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of the training images, each (C,) float32.

        Two passes over blocks of STATS_BLOCK images, summing in float64 (the same numbers as
        `x.mean` / `x.std` over axes (0, 2, 3)): no float64 copy of the whole set is made (for
        MNIST that copy alone would be 376 MB)."""
        x = self.x_train
        count = x.shape[0] * x.shape[2] * x.shape[3]  # values per channel
        total = np.zeros(x.shape[1], np.float64)
        for lo in range(0, len(x), STATS_BLOCK):
            total += x[lo:lo + STATS_BLOCK].sum(axis=(0, 2, 3), dtype=np.float64)
        mean = total / count
        squares = np.zeros(x.shape[1], np.float64)
        for lo in range(0, len(x), STATS_BLOCK):
            centred = x[lo:lo + STATS_BLOCK].astype(np.float64) - mean[None, :, None, None]  # (B, C, H, W)
            squares += np.einsum("nchw,nchw->c", centred, centred)
        std = np.sqrt(squares / count)
        return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)

    def subset(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The first `train` training and first `test` test images (None = all); arrays are views.
        A count must lie in 1..available: a negative one would silently mean "all but the last"."""
        for split, n, available in (("train", train, len(self.x_train)), ("test", test, len(self.x_test))):
            if n is not None and not (isinstance(n, int | np.integer) and 1 <= n <= available):
                raise ValueError(f"Dataset.subset: expected {split} between 1 and {available} "
                                 f"({self.name} has {available} {split} images), got {n!r}")
        return Dataset(self.name, self.x_train[:train], self.y_train[:train], self.x_test[:test],
                       self.y_test[:test], list(self.class_names), dict(self.extra))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train {self.x_train.shape}, test {self.x_test.shape}, "
                f"{self.num_classes} classes)")


# ---- checksums ---------------------------------------------------------------------------------


def read_checksums(path: Path = CHECKSUMS_FILE) -> dict[str, tuple[int, str | None, str | None]]:
    """checksums.txt -> {relative path: (size, md5 or None, sha256 or None)}."""
    table = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rel, size, md5, sha = line.split()
        table[rel] = (int(size), None if md5 == "-" else md5, None if sha == "-" else sha)
    return table


_VERIFIED: set[tuple[str, int, int]] = set()


def verify_file(path: Path, rel: str) -> None:
    """Raise ChecksumError unless `path` has the size and digests listed for `rel` in checksums.txt."""
    size, md5, sha256 = read_checksums()[rel]
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    fix = "Delete it and run again to download a fresh copy, or replace it with the official file."
    if stat.st_size != size:
        kind = "truncated" if stat.st_size < size else "too long"
        raise ChecksumError(f"{path} is {kind}: {stat.st_size:,} bytes, the official file has {size:,}. {fix}")
    digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            for h in digests.values():
                h.update(chunk)
    for algo, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and digests[algo].hexdigest() != expected:
            raise ChecksumError(f"{path} is corrupt: {algo} {digests[algo].hexdigest()}, expected {expected}. {fix}")
    _VERIFIED.add(key)


# ---- where files are -------------------------------------------------------------------------


def cache_dir() -> Path:
    """The download cache: `datasets/` beside the package in a source checkout, else ~/.cache/minicnn/datasets."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "datasets"
    return Path.home() / ".cache" / "minicnn" / "datasets"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """The folders searched, in order, each with where it came from."""
    roots = []
    if data_dir is not None:
        roots.append((Path(data_dir), "--data-dir"))
    if os.environ.get(ENV_VAR):
        roots.append((Path(os.environ[ENV_VAR]), ENV_VAR))
    roots.append((cache_dir(), "cache"))
    return roots


def find_file(folder: str, filename: str, data_dir=None) -> Path | None:
    """First existing `root/folder/filename` or `root/filename` over `search_roots(data_dir)`."""
    for root, _ in search_roots(data_dir):
        for candidate in (root / folder / filename, root / filename):
            if candidate.exists():
                return candidate
    return None


def _looked_in(folder: str, data_dir) -> str:
    return "; ".join(f"{root / folder} ({origin})" for root, origin in search_roots(data_dir))


# ---- downloading -------------------------------------------------------------------------------


def download(url: str, dest: Path, rel: str) -> None:
    """Fetch `url` to `dest` with a progress bar, verify it against checksums.txt, then move it into
    place (a failed or corrupt download never replaces anything)."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, file=sys.stderr) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        verify_file(tmp, rel)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch(name: str, filename: str, data_dir=None, allow_download: bool = True) -> Path:
    """Path of a verified official file of dataset `name`, downloading it into the cache if needed."""
    folder, _, mirrors, _ = SOURCES[name]
    rel = f"{folder}/{filename}"
    path = find_file(folder, filename, data_dir)
    if path is not None:
        verify_file(path, rel)
        return path
    problems = []
    if allow_download:
        dest = cache_dir() / folder / filename
        for mirror in mirrors:
            try:
                download(mirror + filename, dest, rel)
                return dest
            except (urllib.error.URLError, OSError, ChecksumError) as e:
                problems.append(f"{mirror + filename}: {getattr(e, 'reason', e)}")
    how = (f"To provide it, download {mirrors[0] + filename} (or copy the official file) into "
           f"{cache_dir() / folder}/, or name a data folder that holds {rel} (data_dir, or {ENV_VAR}).")
    tried = f" Download failed ({'; '.join(problems)})." if problems else " Downloading was not allowed."
    raise DatasetError(f"{name}: missing file {filename}. Looked in: {_looked_in(folder, data_dir)}.{tried} {how}")


# ---- loading -----------------------------------------------------------------------------------


def _load_idx_dataset(name: str, data_dir, allow_download: bool) -> Dataset:
    paths = [fetch(name, f, data_dir, allow_download) for f in MNIST_FILES]
    try:
        x_train, y_train, x_test, y_test = (read_idx(p) for p in paths)
    except DataFormatError as e:
        raise DatasetFormatError(str(e)) from e
    return Dataset(name, to_unit_float(x_train[:, None], name), y_train.astype(np.int64),  # (N, 1, 28, 28)
                   to_unit_float(x_test[:, None], name), y_test.astype(np.int64), list(SOURCES[name][3]))


def _load_cifar10(data_dir, allow_download: bool) -> Dataset:
    folder = SOURCES["cifar10"][0]
    extracted = find_file(folder, CIFAR_FOLDER, data_dir)
    if extracted is not None and extracted.is_dir():
        for f in (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH, CIFAR_META):
            if not (extracted / f).is_file():
                raise DatasetError(f"cifar10: {extracted} lacks {f}; expected the complete {CIFAR_FOLDER}/ folder")
            verify_file(extracted / f, f"{folder}/{CIFAR_FOLDER}/{f}")
        source = extracted
    else:
        try:
            source = fetch("cifar10", CIFAR_ARCHIVE, data_dir, allow_download)
        except DatasetError as e:
            partial = find_file(folder, "cifar10_partial.npz", data_dir)
            hint = (f" A partial copy exists at {partial}: give its path as the dataset to train on it."
                    if partial is not None else "")
            raise DatasetError(f"{e}{hint}") from e
    try:
        arrays = read_cifar10(source)
    except DataFormatError as e:
        raise DatasetFormatError(str(e)) from e
    return Dataset("cifar10", to_unit_float(arrays["x_train"], "cifar10"), arrays["y_train"],
                   to_unit_float(arrays["x_test"], "cifar10"), arrays["y_test"],
                   arrays["class_names"] or list(CIFAR_CLASSES))


def load_image_folder(path: str | os.PathLike, **options) -> Dataset:
    """A folder of class folders as a Dataset named after the folder (`minicnn.data.folder.read_image_folder`:
    the rules, `options` seed, test_fraction, log). Raises FolderError for a folder that cannot be one."""
    root = Path(path)
    arrays = read_image_folder(root, **options)
    return Dataset(root.name or root.resolve().name, arrays["x_train"], arrays["y_train"], arrays["x_test"],
                   arrays["y_test"], arrays["class_names"])


GENERATED: dict[str, Callable[..., Dataset]] = {}  # name -> loader(name, data_dir=, download=) of datasets
#   built from the ones above; `minicnn.data.segmentation` registers its tasks here (it imports this module,
#   so this module cannot import it: `register_generated` keeps the dependency one way)


def register_generated(name: str, loader: Callable[..., Dataset]) -> None:
    """Make `load_dataset(name)` call `loader(name, data_dir=..., download=...)`."""
    GENERATED[name] = loader


def load_dataset(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 download: bool = True) -> Dataset:
    """Load "mnist", "fashion-mnist", "cifar10" (official files, verified), a segmentation task built
    from them ("mnist-seg", "fashion-on-cifar-seg": y is then (N, H, W), a label per pixel; see
    `minicnn.data.segmentation`), a user's ".npz", or a folder of class folders ("photos/": see
    `minicnn.data.folder`, torchvision's ImageFolder layout; a registered name wins over a folder of the
    same name, so write "./mnist" for a folder called mnist).

    `data_dir` is searched first, then $MINICNN_DATA, then `cache_dir()`. With `download=False` a
    missing file raises `DatasetError` at once instead of trying the official source.
    Raises DatasetError (ChecksumError for a corrupt file) with a message meant for the user.
    """
    text = str(name_or_path)
    key = ALIASES.get(text.lower(), text.lower())
    if key in SOURCES:
        if key == "cifar10":
            return _load_cifar10(data_dir, download)
        return _load_idx_dataset(key, data_dir, download)
    if key in GENERATED:
        return GENERATED[key](key, data_dir=data_dir, download=download)
    path = Path(text)
    if path.is_dir():
        try:
            return load_image_folder(path)
        except FolderError as e:
            raise DatasetFormatError(str(e)) from e
    if path.suffix == ".npz":
        if not path.is_file():
            raise DatasetError(f"{path}: no such .npz file")
        try:
            arrays = read_dataset_npz(path)
        except DataFormatError as e:
            raise DatasetFormatError(str(e)) from e
        return Dataset(path.stem, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                       arrays["class_names"], arrays["extra"])
    raise DatasetError(f"unknown dataset {text!r}: expected one of {sorted(SOURCES) + sorted(GENERATED)}, a path "
                       "to a .npz file with x_train, y_train, x_test, y_test, or a folder of class folders")
