"""Issue 26, files: one rule for every file minicnn writes, and inputs bounded before they are read.

Each test below failed on the code before the fix (named in its docstring) and passes after it.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import warnings
import zipfile

import numpy as np
import pytest

from minicnn import files
from minicnn.app.checkpoint import save_checkpoint
from minicnn.app.loading import ModelFileError, check_config, load_model
from minicnn.cli import main
from minicnn.core import Sequential
from minicnn.data import readers
from minicnn.files import FileFormatError, TargetError, read_npz, safe_target, save_npz_atomic, write_atomic
from minicnn.layers import Linear
from minicnn.models import build

ARRAYS = {"a": np.arange(3.0)}


# -- the write rule ----------------------------------------------------------------------------------

def test_save_npz_atomic_refuses_a_fifo_and_leaves_it_a_fifo(tmp_path):
    """Before: os.replace turned the FIFO (as it did /dev/null, run as root) into a regular file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(TargetError, match="FIFO"):
        save_npz_atomic(fifo, ARRAYS, overwrite=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left behind


def test_save_npz_atomic_refuses_a_device_whatever_overwrite_says(tmp_path):
    """Before: a device node was replaced by a regular file (`compress --out /dev/null` as root)."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e}); the FIFO test covers the same check")
    with pytest.raises(TargetError, match="a device"):
        save_npz_atomic(device, ARRAYS, overwrite=True)
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_save_npz_atomic_refuses_a_symlink_and_a_folder(tmp_path):
    """Before: the link itself was replaced by a regular file; a folder gave a raw IsADirectoryError."""
    target = tmp_path / "real.npz"
    target.write_bytes(b"precious")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    with pytest.raises(TargetError, match="symbolic link"):
        save_npz_atomic(link, ARRAYS, overwrite=True)
    assert link.is_symlink() and target.read_bytes() == b"precious"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x").write_text("x")
    with pytest.raises(TargetError, match="a folder"):
        save_npz_atomic(tmp_path / "folder", ARRAYS, overwrite=True)


def test_an_existing_file_is_replaced_only_if_this_process_wrote_it_or_overwrite(tmp_path):
    """Before: save_npz_atomic replaced any existing file without a word."""
    other = tmp_path / "other.npz"
    other.write_bytes(b"another run's checkpoint")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_npz_atomic(other, ARRAYS)
    assert other.read_bytes() == b"another run's checkpoint"
    save_npz_atomic(other, ARRAYS, overwrite=True)
    np.testing.assert_array_equal(read_npz(other)["a"], ARRAYS["a"])
    ours = tmp_path / "ours.npz"
    for value in range(3):  # a run replaces its own file every epoch, without overwrite
        save_npz_atomic(ours, {"a": np.full(2, float(value))})
    assert read_npz(ours)["a"].tolist() == [2.0, 2.0]


def test_our_file_replaced_by_someone_else_is_no_longer_ours(tmp_path):
    path = tmp_path / "c.npz"
    save_npz_atomic(path, ARRAYS)
    path.unlink()
    path.write_bytes(b"someone else's")  # a new file (new inode) under the same name
    with pytest.raises(FileExistsError):
        save_npz_atomic(path, ARRAYS)
    assert path.read_bytes() == b"someone else's"


def test_a_file_that_appears_during_the_write_is_never_replaced(tmp_path):
    path = tmp_path / "late.bin"

    def write(tmp):
        tmp.write_bytes(b"ours")
        path.write_bytes(b"appeared meanwhile")

    with pytest.raises(FileExistsError):
        write_atomic(path, write)
    assert path.read_bytes() == b"appeared meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.bin"]


def test_write_atomic_cleans_up_when_the_writer_fails(tmp_path):
    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "x.png", write)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_interrupted_at_any_line_leaves_no_temporary_file(tmp_path):
    """A Ctrl-C or SIGTERM (both raise in the main thread) at each line of write_atomic in turn: no
    temporary file is left, and the target is either absent or whole. Before: the file was made by
    tempfile.mkstemp before its name reached the clean-up (a SIGTERM there left it behind, in CI)."""
    import sys

    def interrupted_at(n: int) -> bool:
        lines = [0]

        def local(frame, event, arg):
            if event == "line":
                lines[0] += 1
                if lines[0] == n:
                    raise KeyboardInterrupt
            return local

        def tracer(frame, event, arg):
            return local if frame.f_code is write_atomic.__code__ else None

        sys.settrace(tracer)
        try:
            write_atomic(tmp_path / "x.bin", lambda tmp: tmp.write_bytes(b"whole"), overwrite=True)
        except KeyboardInterrupt:
            return True
        finally:
            sys.settrace(None)
        return False

    n = 1
    while interrupted_at(n):
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names in ([], ["x.bin"]), (n, names)
        if names:
            assert (tmp_path / "x.bin").read_bytes() == b"whole"
        n += 1
    assert n > 10  # the interruption reached every line up to the end, not only the first
    assert (tmp_path / "x.bin").read_bytes() == b"whole"


@pytest.mark.parametrize("name, words", [("", "not a file name"), (".", "not a file name"),
                                         ("missing/x.npz", "does not exist")])
def test_safe_target_refuses_non_names_and_missing_folders(tmp_path, name, words):
    with pytest.raises(TargetError, match=words):
        safe_target(tmp_path / name if "/" in name else name)


def test_layer_save_follows_the_rule(tmp_path):
    net = Sequential(Linear(2, 2))
    path = tmp_path / "state.npz"
    path.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        net.save(path)
    net.save(path, overwrite=True)
    assert set(read_npz(path)) == set(net.state_dict())


def test_save_checkpoint_refuses_a_fifo(tmp_path):
    """Before: checkpoints went through the same unconditional os.replace."""
    fifo = tmp_path / "checkpoint.npz"
    os.mkfifo(fifo)
    with pytest.raises(TargetError):
        save_checkpoint(fifo, Sequential(Linear(2, 2)), None, {"model": "x"})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- compress --out ----------------------------------------------------------------------------------

@pytest.fixture
def lenet_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, build("lenet5"), None, {"model": "lenet5", "model_config": {}})
    return path


def test_compress_refuses_an_existing_out_unless_overwrite(lenet_checkpoint, tmp_path, capsys):
    """Before: --out silently replaced another run's checkpoint (and compress had no --overwrite)."""
    other = tmp_path / "other.npz"
    other.write_bytes(b"another run's checkpoint")
    assert main(["compress", str(lenet_checkpoint), "--out", str(other)]) == 2
    assert "add --overwrite" in capsys.readouterr().err
    assert other.read_bytes() == b"another run's checkpoint"
    assert main(["compress", str(lenet_checkpoint), "--out", str(other), "--overwrite"]) == 0
    assert load_model(other).kind == "compressed"


def test_compress_refuses_a_fifo_or_a_link_even_with_overwrite(lenet_checkpoint, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["compress", str(lenet_checkpoint), "--out", str(fifo), "--overwrite"]) == 2
    assert "FIFO" in capsys.readouterr().err and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "link.fr.npz"
    link.symlink_to(tmp_path / "elsewhere.fr.npz")
    assert main(["compress", str(lenet_checkpoint), "--out", str(link), "--overwrite"]) == 2
    assert "symbolic link" in capsys.readouterr().err and link.is_symlink()
    assert not (tmp_path / "elsewhere.fr.npz").exists()


def test_compress_writes_a_new_out_and_says_its_name(lenet_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.fr.npz"
    assert main(["compress", str(lenet_checkpoint), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert max(len(line) for line in said.splitlines()) <= 80 or str(out) in max(said.splitlines(), key=len)
    assert f"{out}: {out.stat().st_size} bytes on disk" in " ".join(said.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz", "m.fr.npz"]  # no temporary left


# -- bounded reads -----------------------------------------------------------------------------------

def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_small_npz_inflating_beyond_the_cap_is_refused_before_inflating(tmp_path, monkeypatch):
    """Before: every member was inflated completely (a 2.9 MB file of 3 GB zeros took 7.4 GB)."""
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros(1 << 20, np.uint8))  # 1 MiB of zeros in about 1 KiB
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1 << 19)

    def no_inflating(*args, **kwargs):
        raise AssertionError("a member was opened before the size check")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_inflating)
    with pytest.raises(FileFormatError, match="inflate to 1,048,704 bytes: they exceed the limit of 524,288"):
        read_npz(path)


def test_duplicate_zip_members_are_refused(tmp_path):
    """Before: the last member of a name silently won."""
    path = tmp_path / "twice.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name" when writing
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("a.npy", _npy(np.zeros(2)))
            archive.writestr("a.npy", _npy(np.ones(2)))
    with pytest.raises(FileFormatError, match=r"\['a.npy'\] appear more than once"):
        read_npz(path)


def test_a_gzip_idx_bomb_is_refused_after_the_cap(tmp_path, monkeypatch):
    """Before: read_idx inflated the whole .gz before looking at it."""
    path = tmp_path / "images.gz"
    size = 1 << 20
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBBI", 0, readers.IDX_UBYTE, 1, size) + bytes(size))
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 1 << 16)
    with pytest.raises(readers.DataFormatError, match="more than 65,536 bytes"):
        readers.read_idx(path)


def test_a_npy_header_asking_for_more_than_the_cap_is_refused(tmp_path, monkeypatch):
    """Before: only the file's own size bounded it (a 3 GB .npy was read whole)."""
    path = tmp_path / "big.npy"
    np.save(path, np.zeros(1024, np.uint8))
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    with pytest.raises(FileFormatError, match=r"1,024 bytes\), more than the limit of 1,000 bytes"):
        files.read_npy(path)


def _dataset(path, **changes):
    arrays = {"x_train": np.zeros((4, 1, 8, 8), np.uint8), "y_train": np.array([0, 1, 0, 1]),
              "x_test": np.zeros((2, 1, 8, 8), np.uint8), "y_test": np.array([0, 1]), **changes}
    np.savez(path, **arrays)
    return path


def test_a_dataset_with_more_classes_than_the_maximum_is_refused(tmp_path):
    """Before: labels up to 10^9 made a list of 10^9 class names, then a LeNet with 10^9 outputs."""
    path = _dataset(tmp_path / "d.npz", y_test=np.array([0, readers.MAX_CLASSES]))
    with pytest.raises(readers.DataFormatError, match=f"at most {readers.MAX_CLASSES:,} "):
        readers.read_dataset_npz(path)
    top = _dataset(tmp_path / "ok.npz", y_test=np.array([0, readers.MAX_CLASSES - 1]))
    assert len(readers.read_dataset_npz(top)["class_names"]) == readers.MAX_CLASSES


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_dataset_with_an_empty_split_is_refused(tmp_path, split):
    """Before: an empty split reached training ("need at least one array to concatenate")."""
    path = _dataset(tmp_path / "d.npz", **{f"x_{split}": np.zeros((0, 1, 8, 8), np.uint8),
                                           f"y_{split}": np.zeros(0, np.int64)})
    with pytest.raises(readers.DataFormatError, match=f"x_{split} holds no images"):
        readers.read_dataset_npz(path)


# -- library edges -----------------------------------------------------------------------------------

def test_load_state_dict_refuses_complex_arrays():
    """Before: the imaginary part was dropped (a ComplexWarning at most)."""
    net = Sequential(Linear(2, 2))
    state = net.state_dict()
    state["0.weight"] = state["0.weight"] + 1j
    with pytest.raises(ValueError, match=r"'0.weight' expected real numbers, got complex64 \(its imaginary"):
        net.load_state_dict(state)
    state["0.weight"] = np.array([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="expected real numbers, got <U1"):
        net.load_state_dict(state)


def test_load_model_refuses_a_config_without_a_name(lenet_checkpoint):
    """Before: load_model(path, width=0.5) silently ignored the width."""
    with pytest.raises(ModelFileError, match=r"build options \['width'\] were given without the model name"):
        load_model(lenet_checkpoint, width=0.5)
    with pytest.raises(ModelFileError, match=r"do not fit lenet5 \{'width': 0.5\}"):  # with the name it is used
        load_model(lenet_checkpoint, "lenet5", width=0.5)


@pytest.mark.parametrize("width", [0, -1.0, 8.5, 1e6, float("nan"), True, "2"])
def test_build_refuses_a_width_outside_the_range_before_building(width, monkeypatch):
    """Before: build("lenet5", width=8.5) built it (a width outside (0, 8] was checked only by files)."""
    from minicnn.models import _registry

    built = []

    def constructor(width: float = 1.0):
        built.append(width)

    monkeypatch.setitem(_registry.MODELS, "lenet5", constructor)
    with pytest.raises(ValueError, match=r"expected width in \(0, 8\]"):
        build("lenet5", width=width)
    assert built == []


def test_a_file_asking_for_width_zero_is_refused():
    """Before: check_config let width 0 through ([0, 8] instead of the documented (0, 8])."""
    with pytest.raises(ModelFileError, match=r"width=0 is outside \(0, 8\]"):
        check_config("lenet5", {"width": 0}, "f.npz")
    check_config("lenet5", {"width": 8.0}, "f.npz")
