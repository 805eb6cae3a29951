"""Readers for the original file formats. They parse bytes into arrays and check the structure;
checksums are verified before they are called (see `minicnn.data.datasets`).

    read_idx(path)             MNIST / Fashion-MNIST IDX file (.gz or raw) -> uint8 array
    read_cifar10(path)         CIFAR-10 "python version" (tar.gz or extracted folder) -> arrays
    read_dataset_npz(path)     a user's own x_train, y_train, x_test, y_test -> arrays

All images come out NCHW float32 scaled to [0, 1] (`to_unit_float`); labels int64.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from minicnn.files import MAX_FILE_BYTES, FileFormatError, read_npz

IDX_UBYTE = 0x08
CIFAR_SIDE = 32
CIFAR_CHANNELS = 3
CIFAR_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_BATCH = "test_batch"
CIFAR_META = "batches.meta"
CIFAR_FOLDER = "cifar-10-batches-py"
UINT8_MAX = 255.0


class DataFormatError(FileFormatError):
    """A data file exists but does not have the structure its format promises."""


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (gzip-compressed when the name ends in .gz) into a uint8 array.

    Format (big-endian): two zero bytes, a type byte (0x08 = unsigned byte), a byte `ndim`,
    then `ndim` 32-bit sizes, then the data in row-major order. Images: (N, 28, 28); labels: (N,).
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # a small .gz of gigabytes of zeros stops here, not at the end
    except (OSError, EOFError, zlib.error) as e:
        raise DataFormatError(f"{path}: not a readable IDX{' .gz' if path.suffix == '.gz' else ''} file ({e})") from e
    if len(raw) > MAX_FILE_BYTES:
        raise DataFormatError(f"{path}: holds more than {MAX_FILE_BYTES:,} bytes, the limit of one data file")
    if len(raw) < 4:
        raise DataFormatError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != IDX_UBYTE or ndim < 1:
        raise DataFormatError(f"{path}: bad IDX magic (zero={zero}, type=0x{dtype:02x}, ndim={ndim}); "
                              f"expected 0x0000 0x08 ndim>=1")
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataFormatError(f"{path}: IDX header promises shape {dims} ({expected} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


CIFAR_MAX_FILE_BYTES = 64 << 20  # one official batch is 31,035,999 bytes at most; a bigger one is not CIFAR
CIFAR_MAX_IMAGES = 60_000  # per batch file (the official batches hold 10,000)
CIFAR_MAX_ITEMSIZE = 16  # bytes per array element: plain numbers only (no huge void/str dtypes)


_NP_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's own _reconstruct, wherever this version keeps it
_NP_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar(dtype, bytes)


def _reconstruct_empty(subtype, shape, dtype):
    """NumPy pickles an array as `_reconstruct(ndarray, (0,), b'b')` followed by its state (shape, dtype,
    raw bytes, checked against each other by NumPy). Only that empty start is allowed: a crafted shape
    here would allocate memory before any check."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise DataFormatError(f"the pickle builds an array of type {getattr(subtype, '__name__', subtype)} "
                              f"and shape {shape!r}; NumPy's own pickles start from an empty ndarray")
    return _NP_RECONSTRUCT(subtype, shape, dtype)


def _plain_dtype(*args):
    """np.dtype(...) for plain numbers only: no Python objects, no record or oversized element types."""
    dtype = np.dtype(*args)
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf" or dtype.itemsize > CIFAR_MAX_ITEMSIZE:
        raise DataFormatError(f"the pickle uses dtype {dtype!r}; only plain numeric arrays are allowed")
    return dtype


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch dicts (lists, bytes, numpy arrays) and refuses any other global,
    so a malicious file cannot run code. Array construction is guarded so a crafted pickle cannot
    make the reader allocate much more than the bytes it contains (`_reconstruct_empty`, `_plain_dtype`)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct_empty,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct_empty,
        ("numpy.core.multiarray", "scalar"): _NP_SCALAR,
        ("numpy._core.multiarray", "scalar"): _NP_SCALAR,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):  # how Python 3 writes bytes into a protocol-2 pickle
            return super().find_class(module, name)
        if (module, name) not in self.ALLOWED:
            raise DataFormatError(f"the pickle refers to {module}.{name}; only numpy arrays are allowed")
        return self.ALLOWED[module, name]


def _unpickle(blob: bytes, where: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except DataFormatError as e:
        raise DataFormatError(f"{where}: {e}") from e
    except Exception as e:
        raise DataFormatError(f"{where}: not a CIFAR-10 python pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch dict {data: (n, 3072) uint8 R,G,B planes row-major, labels: n ints} -> (x NCHW uint8, y)."""
    d = _unpickle(blob, where)
    if "data" not in d or "labels" not in d:
        raise DataFormatError(f"{where}: expected keys 'data' and 'labels', got {sorted(map(str, d))}")
    data, labels = d["data"], d["labels"]
    per_image = CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE
    # Type checks before any conversion: np.asarray of nested lists that share one another (pickle
    # memo references) could otherwise build an array far larger than the file.
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != per_image:
        got = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(f"{where}: expected data (n, {per_image}) uint8, got {got}")
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data) or len(labels) > CIFAR_MAX_IMAGES:
        got = f"{len(labels)} labels" if isinstance(labels, list | np.ndarray) else type(labels).__name__
        raise DataFormatError(f"{where}: expected {len(data)} labels (at most {CIFAR_MAX_IMAGES}), got {got}")
    if isinstance(labels, list) and not all(isinstance(v, int) for v in labels):
        raise DataFormatError(f"{where}: expected integer labels")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise DataFormatError(f"{where}: expected non-negative integer labels, got {labels.dtype} {labels.shape}")
    return data.reshape(-1, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE), labels.astype(np.int64)  # (n, 3, 32, 32)


def _read_capped(f, size: int, where: str) -> bytes:
    if size > CIFAR_MAX_FILE_BYTES:
        raise DataFormatError(f"{where}: {size:,} bytes, larger than any CIFAR-10 batch "
                              f"({CIFAR_MAX_FILE_BYTES:,} bytes at most)")
    blob = f.read(CIFAR_MAX_FILE_BYTES + 1)
    if len(blob) != size:
        raise DataFormatError(f"{where}: expected {size:,} bytes, read {len(blob):,}")
    return blob


def read_cifar10(path: str | Path) -> dict[str, np.ndarray | list[str]]:
    """Read CIFAR-10's "python version": `cifar-10-python.tar.gz` or the extracted `cifar-10-batches-py/`.

    Five training batches `data_batch_1..5` (10,000 images each) and `test_batch`, each a pickled dict
    whose `data` row holds the R, G and B planes of a 32x32 image one after another; `batches.meta`
    holds `label_names`. Returns x_train, y_train, x_test, y_test (uint8 NCHW, int64) and class_names.
    """
    path = Path(path)
    wanted = [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH, CIFAR_META]
    blobs: dict[str, bytes] = {}
    if path.is_dir():
        for name in wanted:
            f = path / name
            if not f.is_file():
                raise DataFormatError(f"{path}: missing {name} (expected {', '.join(wanted)})")
            with open(f, "rb") as fh:
                blobs[name] = _read_capped(fh, f.stat().st_size, f"{path}:{name}")
    else:
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and name in wanted:
                        blobs[name] = _read_capped(tar.extractfile(member), member.size, f"{path}:{name}")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataFormatError(f"{path}: not a readable tar.gz archive ({e})") from e
        missing = [n for n in wanted if n not in blobs]
        if missing:
            raise DataFormatError(f"{path}: archive lacks {', '.join(missing)}")
    train = [_cifar_batch(blobs[n], f"{path}:{n}") for n in CIFAR_TRAIN_BATCHES]
    x_test, y_test = _cifar_batch(blobs[CIFAR_TEST_BATCH], f"{path}:{CIFAR_TEST_BATCH}")
    meta = _unpickle(blobs[CIFAR_META], f"{path}:{CIFAR_META}")
    names = meta.get("label_names", [])
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataFormatError(f"{path}:{CIFAR_META}: expected label_names as a list of strings")
    names = [n.decode(errors="replace") if isinstance(n, bytes) else n for n in names]
    return {
        "x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test, "y_test": y_test, "class_names": names,
    }


def to_unit_float(x: np.ndarray, where: str) -> np.ndarray:
    """Images to float32 in [0, 1]: uint8 is divided by 255; floats already in [0, 1] are kept;
    floats holding whole numbers in [0, 255] are divided by 255; anything else is refused."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(UINT8_MAX)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataFormatError(f"{where}: expected uint8 or floating images, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataFormatError(f"{where}: images contain NaN or infinity")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x.astype(np.float32)
    if lo >= 0.0 and hi <= UINT8_MAX and np.all(x == np.round(x)):
        return (x / UINT8_MAX).astype(np.float32)
    raise DataFormatError(f"{where}: floating images must lie in [0, 1] (or be whole numbers 0..255), "
                          f"got values in [{lo:g}, {hi:g}]")


IMAGE_CHANNELS = (1, 3, 4)


def to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, H, W, C) with C in 1/3/4 -> (N, C, H, W); (N, C, H, W) kept.

    The layout is decided from which axis is a plausible channel count; when both axis 1 and axis 3
    could be channels (e.g. 3x3x3 images) it is ambiguous and refused.
    """
    if x.ndim == 3:
        return x[:, None]  # (N, 1, H, W)
    if x.ndim != 4:
        raise DataFormatError(f"{where}: expected images (N, H, W), (N, H, W, C) or (N, C, H, W), got {x.shape}")
    chw, hwc = x.shape[1] in IMAGE_CHANNELS, x.shape[3] in IMAGE_CHANNELS
    if chw and not hwc:
        return x
    if hwc and not chw:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
    raise DataFormatError(f"{where}: cannot tell whether {x.shape} is NCHW or NHWC "
                          f"(channels must be one of {IMAGE_CHANNELS}); save it as (N, C, H, W) with H, W > 4")


def check_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """Labels (n,) integers in 0..MAX_CLASSES-1 (integral floats are accepted) -> int64.

    Every check runs on the values as given, before any cast: a float label 1e30, NaN or inf, or a
    uint64 beyond int64, is refused by name instead of wrapping round in the cast to int64."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataFormatError(f"{where}: expected labels of shape ({n},) (class indices, not one-hot), got {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y)
        if bad.any():
            raise DataFormatError(f"{where}: expected finite integer class labels, got {y[bad][0]} "
                                  f"({int(bad.sum()):,} of {n:,} labels are NaN or infinite)")
        fractional = y != np.round(y)
        if fractional.any():
            raise DataFormatError(f"{where}: expected integer class labels, got {y[fractional][0].item()!r} "
                                  f"({int(fractional.sum()):,} of {n:,} labels are not whole numbers)")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataFormatError(f"{where}: expected integer class labels, got dtype {y.dtype}")
    if n and y.min() < 0:
        raise DataFormatError(f"{where}: labels must be >= 0, got minimum {y.min()}")
    highest = int(y.max()) if n else 0  # a Python int: exact for every integer and whole float
    if highest >= MAX_CLASSES:
        raise DataFormatError(f"{where}: labels up to {highest:,} would make {highest + 1:,} classes; at most "
                              f"{MAX_CLASSES:,} (labels are class indices 0..K-1, not ids)")
    return y.astype(np.int64)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 4096  # a label beyond this is a mistake (ids, not class indices); = app.loading.MAX_SIZE_OPTION,
#                    so every model trained on a dataset file can be opened again


def read_dataset_npz(path: str | Path) -> dict[str, np.ndarray | list[str]]:
    """A user's `.npz` with x_train, y_train, x_test, y_test (optional class_names; other arrays kept
    under "extra"). Images HWC or CHW (or HW), uint8 or float; converted to NCHW float32 in [0, 1].

    Refused with DataFormatError naming the file: a damaged file (truncated, a flipped bit), missing
    arrays, an empty train or test split, negative labels, more than MAX_CLASSES classes (labels up to
    10^9 would build a 10^9-way classifier), and test labels beyond the classes. The classes are
    0..len(class_names)-1 when class_names is given, else 0..max(y_train): a class that never occurs in
    training cannot be learned, so a test label beyond them is a mistake in the file."""
    path = Path(path)
    try:
        arrays = read_npz(path, what="dataset .npz file", keys=NPZ_KEYS)
    except FileFormatError as e:
        raise DataFormatError(str(e)) from e
    out: dict = {"extra": {k: v for k, v in arrays.items() if k not in (*NPZ_KEYS, "class_names")}}
    for split in ("train", "test"):
        where = f"{path}:x_{split}"
        if np.ndim(arrays[f"x_{split}"]) == 0 or len(arrays[f"x_{split}"]) == 0:
            raise DataFormatError(f"{path}: x_{split} holds no images; expected at least 1 (shape "
                                  f"{np.shape(arrays[f'x_{split}'])})")
        x = to_unit_float(to_nchw(arrays[f"x_{split}"], where), where)
        out[f"x_{split}"] = x
        out[f"y_{split}"] = check_labels(arrays[f"y_{split}"], len(x), f"{path}:y_{split}")
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise DataFormatError(f"{path}: train images {out['x_train'].shape[1:]} and test images "
                              f"{out['x_test'].shape[1:]} differ in shape")
    highest = int(max(out["y_train"].max(), out["y_test"].max()))  # < MAX_CLASSES (check_labels)
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else []
    for split in ("train", "test") if names else ():
        if out[f"y_{split}"].max() >= len(names):
            raise DataFormatError(f"{path}: y_{split} has labels up to {out[f'y_{split}'].max()}, but the "
                                  f"{len(names)} class_names make the classes 0..{len(names) - 1}")
    out["class_names"] = names or [str(i) for i in range(highest + 1)]
    return out
