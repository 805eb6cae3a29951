"""Reading and writing the engine's files: checked `.npz` / `.npy` reading and atomic `.npz` saving.

    read_npz(path, what, keys, max_bytes, exact)   every array of an .npz, checked (no pickles, the CRC
                                                   and every header checked before anything is allocated)
    read_npy(path, what)                           one .npy array, checked the same way
    safe_target(path, overwrite)                   may a file be written there? (the rule below)
    write_atomic(path, write, overwrite=)          write(tmp) fills a temporary file, fsync, then link/rename
    save_npz_atomic(path, arrays, overwrite=)      np.savez through write_atomic
    next_free(path, taken)                         path, or the first free NAME-2.EXT, NAME-3.EXT, ...
    remove_unfinished(path)                        delete the temporaries a killed save left behind
    FileFormatError                                what every damaged-file error is (a ValueError)

Every `.npz` the engine reads goes through `read_npz`: layer states (`Layer.load`), training checkpoints
(`minicnn.app.checkpoint`), model files (`minicnn.app.load_model`), compressed models, datasets.

Every file minicnn writes follows one rule (`safe_target`): onto a path that does not exist, a regular
file this process wrote, or one the user said to replace (--overwrite, `overwrite=True`); never onto a
folder, device, FIFO, socket or symbolic link.

An `.npz` file is a PKZIP archive with one `.npy` member per array; a `.npy` stream is a magic string,
a header (a Python dict literal: dtype, fortran_order, shape) and the raw bytes.
"""

from __future__ import annotations

import glob
import os
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np


class FileFormatError(ValueError):
    """A file cannot be read as what it should be: missing, unreadable, damaged or of another format.
    The message names the file and what is wrong."""



TMP_SUFFIX = ".tmp"
FILE_MODE = 0o666  # the usual permissions of a new file, before the umask
MAX_FILE_BYTES = 2 << 30  # 2 GiB: the most array data one file may hold (all of CIFAR-10 as float32: 0.6 GB)
_WRITTEN: set[tuple] = set()  # `_identity` of every file this process wrote (and of its temporary files)


class TargetError(ValueError):
    """A path minicnn was asked to write is not a place for a file: a folder, a device, a FIFO, a socket,
    a symbolic link, or a name in a folder that does not exist."""


def _identity(path: Path, st: os.stat_result) -> tuple:
    """What tells a file this process wrote from another one later put under its name (the inode number of
    a deleted file is soon reused): absolute path, device, inode, size and modification time."""
    return os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")]
    return next((word for test, word in kinds if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def safe_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """`path` as a Path if minicnn may write a file there, else an error with one clear line.

    The rule for every file minicnn writes: the path does not exist, or it is a regular file that this
    process wrote (a checkpoint replaced every epoch), or a regular file the user said to replace
    (`overwrite`, the commands' --overwrite). Raises TargetError (a ValueError) for a folder, device,
    FIFO, socket or symbolic link, whatever `overwrite` says, and for a missing folder; FileExistsError
    for any other existing file without `overwrite`.
    """
    path = Path(path)
    if not os.fspath(path).strip() or path.name in ("", ".", ".."):
        raise TargetError(f"{os.fspath(path)!r} is not a file name; give the path of a file")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise TargetError(f"{path}: the folder {path.parent} does not exist") from None
        return path
    kind = _kind(st.st_mode)
    if kind is not None:
        raise TargetError(f"{path} is {kind}, not a regular file; refusing to write it")
    if not overwrite and _identity(path, st) not in _WRITTEN:
        raise FileExistsError(f"{path} exists; choose another name, or pass overwrite=True to replace it")
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object], *, overwrite: bool = False) -> Path:
    """Write a file by the rule of `safe_target`, atomically: `write(tmp)` fills a new temporary file
    beside `path` (a Path that exists, empty, made by this process), which is fsync'ed and then linked
    onto `path` (a new file: fails if one appeared meanwhile) or renamed onto it (a file it may replace).

    A crash leaves the previous file intact: the rename is the only step that touches it (a killed
    process can leave the temporary file behind: `remove_unfinished` deletes those). -> the Path written.
    Raises what `safe_target` raises, and FileExistsError if a file appeared at `path` during the write.
    """
    path = safe_target(path, overwrite)
    tmp = None
    try:
        # The name is known BEFORE the file exists, so that a Ctrl-C or SIGTERM raised at any step
        # finds the file it must delete (tempfile.mkstemp made the file a few Python steps before it
        # returned the name: a SIGTERM there left the file behind, seen in CI).
        while True:
            tmp = _temporary_name(path)
            try:  # a new empty file, with the permissions of any new file (FILE_MODE less the umask)
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
                break
            except FileExistsError:  # another file has that name (1 chance in 4 billion): draw again
                tmp = None
        _WRITTEN.add(_identity(tmp, os.stat(tmp)))  # `write` may itself write atomically onto tmp
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        safe_target(path, overwrite)  # again, just before: the path may have changed during `write`
        if os.path.lexists(path):
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # FileExistsError if `path` appeared meanwhile: never replaces a file unseen
            os.unlink(tmp)
        _WRITTEN.add(_identity(path, os.stat(path)))
    except BaseException:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return path


def _temporary_name(path: Path) -> Path:
    """A name `PATH.xxxxxxxx.tmp` beside `path` for `write_atomic`'s temporary file."""
    return path.with_name(f"{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def next_free(path: str | os.PathLike, taken: Callable[[Path], bool] = os.path.lexists) -> Path:
    """`path`, or the first of NAME-2.EXT, NAME-3.EXT, ... beside it for which `taken(candidate)` is False
    (default: nothing is there, not even a broken link). How a command's default output name moves on
    instead of replacing an earlier run's file (then it says so in a note)."""
    path = Path(path)
    candidate, k = path, 2
    while taken(candidate):
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate


def save_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray], *, overwrite: bool = False) -> None:
    """np.savez of `arrays` onto `path` by `write_atomic` (the folder is made if missing): a new file,
    or one this process wrote, or (`overwrite`) any regular file; never a device, FIFO, folder or link."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def savez(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays)

    write_atomic(path, savez, overwrite=overwrite)


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
    Before anything is inflated, the members' names must be unique (a duplicate is refused, not "the
    last wins") and their uncompressed sizes, as the zip directory states them, must add up to at most
    `max_bytes` (default MAX_FILE_BYTES, 2 GiB: a small file holding gigabytes of zeros is refused
    unread); before anything is allocated, each member's `.npy` header is checked against the member's
    size (so a crafted header cannot ask for more memory than the archive holds, nor zipfile read
    more); every member is read to its end so the zip CRC check runs (a flipped bit is found, never
    loaded). `keys`: names that must be present; `exact`: and no others.

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
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    arrays: dict[str, np.ndarray] = {}
    total = 0
    try:
        with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:  # the file is opened once
            _check_contiguous(archive, raw, bad)
            _check_members(archive, limit, bad)
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
                    if total > limit:
                        raise bad(f"arrays exceed the limit of {limit:,} bytes")
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
    size and ask for at most MAX_FILE_BYTES before anything is allocated.
    Raises FileFormatError "PATH: not a readable WHAT (reason)"."""
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
            if nbytes > MAX_FILE_BYTES:
                raise bad(f"header promises {shape} {dtype} ({nbytes:,} bytes), more than the limit of "
                          f"{MAX_FILE_BYTES:,} bytes")
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


def _check_members(archive: zipfile.ZipFile, limit: int, bad) -> None:
    """Unique member names, and uncompressed sizes (from the zip directory) adding up to at most `limit`
    bytes: checked before any member is inflated."""
    names = [info.filename for info in archive.infolist()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise bad(f"member(s) {twice} appear more than once")
    size = sum(info.file_size for info in archive.infolist())
    if size > limit:
        raise bad(f"its members inflate to {size:,} bytes: they exceed the limit of {limit:,} bytes")


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

