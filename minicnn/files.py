"""Reading and writing the engine's files: checked `.npz` / `.npy` reading and atomic `.npz` saving.

    read_npz(path, what, keys, max_bytes, exact)   every array of an .npz, checked (no pickles, the CRC
                                                   and every header checked before anything is allocated)
    read_npy(path, what)                           one .npy array, checked the same way
    save_npz_atomic(path, arrays)                  np.savez to a temporary file, fsync, then rename
    remove_unfinished(path)                        delete the temporaries a killed save left behind
    FileFormatError                                what every damaged-file error is (a ValueError)

Every `.npz` the engine reads goes through `read_npz`: layer states (`Layer.load`), training checkpoints
(`minicnn.app.checkpoint`), model files (`minicnn.app.load_model`), compressed models, datasets.

An `.npz` file is a PKZIP archive with one `.npy` member per array; a `.npy` stream is a magic string,
a header (a Python dict literal: dtype, fortran_order, shape) and the raw bytes.
"""

from __future__ import annotations

import glob
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np


class FileFormatError(ValueError):
    """A file cannot be read as what it should be: missing, unreadable, damaged or of another format.
    The message names the file and what is wrong."""



TMP_SUFFIX = ".tmp"


def save_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temporary file in the same folder, fsync, then os.replace onto `path`.

    A crash mid-write leaves the previous file intact: the rename is the only step that touches it.
    (A killed process can leave its temporary file behind: `remove_unfinished` deletes those.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_unfinished(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files `save_npz_atomic(path, ...)` leaves when the process dies mid-write
    (`PATH.xxxxxxxx.tmp` beside `path`); return what was deleted. Call it only where no other process
    is writing `path` at the same moment (e.g. when a run starts in its own folder)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*{TMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink()
            removed.append(tmp)
    return removed


NPY_SUFFIX = ".npy"


def read_npz(path: str | os.PathLike, what: str = ".npz file", keys: Iterable[str] = (),
             max_bytes: int | None = None, exact: bool = False) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` archive into memory, checking it completely on the way.

    The one reader for `.npz` files the user hands us (datasets, layer states; checkpoints and
    compressed models build on it). Never unpickles: arrays of Python objects are refused.
    Before anything is allocated, each member's `.npy` header is checked against the member's size
    (so a crafted header cannot ask for more memory than the archive holds), and the total against
    `max_bytes` when given; every member is read to its end so the zip CRC check runs (a flipped
    bit is found, never loaded). `keys`: names that must be present; `exact`: and no others.

    Raises FileFormatError "PATH: not a readable WHAT (reason)" for a missing, unreadable,
    truncated, bit-flipped or foreign file, "PATH: WHAT lacks ..." for missing keys, or (exact)
    "PATH: WHAT holds ... besides ..." for others.
    """
    path = Path(path)

    def bad(reason: str) -> FileFormatError:
        return FileFormatError(f"{path}: not a readable {what} ({reason})")

    if not path.exists():
        raise bad("no such file")
    if not path.is_file():
        raise bad("not a regular file")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    try:
        with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:  # the file is opened once
            _check_contiguous(archive, raw, bad)
            for info in archive.infolist():
                name = info.filename
                if not name.endswith(NPY_SUFFIX):
                    raise bad(f"member '{name}' is not a .npy array")
                with archive.open(info) as f:
                    header, shape, dtype, fortran = _npy_header(f, name)
                    if dtype.hasobject:
                        raise bad(f"'{name}' holds Python objects ({dtype}); only plain arrays are accepted")
                    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if header + nbytes != info.file_size:
                        raise bad(f"'{name}' promises {shape} {dtype} ({nbytes:,} bytes) but holds "
                                  f"{info.file_size - header:,} bytes")
                    total += nbytes
                    if max_bytes is not None and total > max_bytes:
                        raise bad(f"arrays exceed the limit of {max_bytes:,} bytes")
                    raw = bytearray(nbytes)  # writable, so the array below is not a copy
                    if f.readinto(raw) != nbytes or f.read(1):  # reading to the end runs the CRC check
                        raise bad(f"'{name}' is truncated")
                flat = np.frombuffer(raw, dtype) if nbytes else np.zeros(0, dtype)
                arrays[name[: -len(NPY_SUFFIX)]] = flat.reshape(shape, order="F" if fortran else "C")
    except FileFormatError:
        raise
    except zipfile.BadZipFile as e:
        raise bad(f"damaged or not a zip archive: {e}") from e
    except (OSError, EOFError, ValueError, zlib.error, struct.error, NotImplementedError, RuntimeError,
            OverflowError, MemoryError) as e:
        raise bad(f"{type(e).__name__}: {e}") from e
    keys = list(keys)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise FileFormatError(f"{path}: {what} lacks {missing}; it holds {sorted(arrays)}")
    others = sorted(set(arrays) - set(keys))
    if exact and others:
        raise FileFormatError(f"{path}: {what} holds {others} besides {keys}")
    return arrays


def read_npy(path: str | os.PathLike, what: str = ".npy file") -> np.ndarray:
    """Read one `.npy` array, checked like `read_npz`: no pickles, the header must match the file's
    size before anything is allocated. Raises FileFormatError "PATH: not a readable WHAT (reason)"."""
    path = Path(path)

    def bad(reason: str) -> FileFormatError:
        return FileFormatError(f"{path}: not a readable {what} ({reason})")

    if not path.is_file():
        raise bad("no such file" if not path.exists() else "not a regular file")
    try:
        with open(path, "rb") as f:
            header, shape, dtype, fortran = _npy_header(f, path.name)
            if dtype.hasobject:
                raise bad(f"holds Python objects ({dtype}); only plain arrays are accepted")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            size = path.stat().st_size
            if header + nbytes != size:
                raise bad(f"header promises {shape} {dtype} ({nbytes:,} bytes) but the file holds "
                          f"{size - header:,} bytes after it")
            raw = bytearray(nbytes)
            f.readinto(raw)
    except FileFormatError:
        raise
    except (OSError, EOFError, ValueError, struct.error, OverflowError, MemoryError) as e:
        raise bad(f"{type(e).__name__}: {e}") from e
    flat = np.frombuffer(raw, dtype) if nbytes else np.zeros(0, dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


ZIP_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # PKZIP local file header, 30 bytes
ZIP_DESCRIPTOR_SIZES = (12, 16, 20, 24)  # optional data descriptor after a member: (zip64,) (signature,)
ZIP_HAS_DESCRIPTOR = 0x08


def _check_contiguous(archive: zipfile.ZipFile, raw: BinaryIO, bad) -> None:
    """Members must tile the file `raw` (that `archive` reads) from byte 0 up to the central directory,
    as np.savez writes them. A damaged directory that loses a member leaves a gap, which is refused
    instead of silently returning fewer arrays. (Run before any member is opened: it moves `raw`.)"""
    expected, previous_has_descriptor = 0, False
    for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
        gap = info.header_offset - expected
        if gap and not (previous_has_descriptor and gap in ZIP_DESCRIPTOR_SIZES):
            raise bad(f"{gap:+,} bytes before member '{info.filename}': the zip directory is damaged")
        raw.seek(info.header_offset)
        fields = ZIP_LOCAL_HEADER.unpack(raw.read(ZIP_LOCAL_HEADER.size))
        name_len, extra_len = fields[10], fields[11]
        expected = info.header_offset + ZIP_LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        previous_has_descriptor = bool(info.flag_bits & ZIP_HAS_DESCRIPTOR)
    end_gap = archive.start_dir - expected
    if end_gap and not (expected and previous_has_descriptor and end_gap in ZIP_DESCRIPTOR_SIZES):
        raise bad(f"{end_gap:+,} bytes between the last member and the zip directory: the directory is damaged")


def _npy_header(f, name: str) -> tuple[int, tuple[int, ...], np.dtype, bool]:
    """(header length in bytes, shape, dtype, fortran_order) of the `.npy` stream `f`."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"'{name}' uses .npy format version {version}; versions 1.0 and 2.0 are read")
    return f.tell(), tuple(shape), dtype, fortran


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
